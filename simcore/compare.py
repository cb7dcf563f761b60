"""Compare firmware outputs with golden outputs: error metrics and classification metrics.

Pure NumPy. The metric set is the one DESIGN.md names (and the AI-ANNE
paper reports): max abs error, MAE, RMSE, relative L2, cosine similarity,
argmax agreement, accuracy against labels, confusion matrix, and per-class
precision, recall and F1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ErrorMetrics:
    """How far ``got`` is from ``want`` (both flattened per sample)."""

    max_abs: float
    mae: float
    rmse: float
    relative_l2: float
    cosine: float
    n_values: int

    def as_dict(self) -> dict[str, float | int]:
        return {k: (round(v, 9) if isinstance(v, float) else v) for k, v in vars(self).items()}


@dataclass(frozen=True)
class ClassMetrics:
    """Classification quality of predictions against labels."""

    accuracy: float
    confusion: npt.NDArray[np.int64]  # rows: true class, columns: predicted class
    precision: FloatArray
    recall: FloatArray
    f1: FloatArray

    def as_dict(self) -> dict[str, Any]:
        return {
            "accuracy": round(self.accuracy, 6),
            "confusion": self.confusion.tolist(),
            "precision": [round(float(v), 6) for v in self.precision],
            "recall": [round(float(v), 6) for v in self.recall],
            "f1": [round(float(v), 6) for v in self.f1],
        }


def error_metrics(got: npt.ArrayLike, want: npt.ArrayLike) -> ErrorMetrics:
    """Error metrics of ``got`` against the reference ``want`` (same shape)."""
    g = np.asarray(got, dtype=np.float64).reshape(-1)
    w = np.asarray(want, dtype=np.float64).reshape(-1)
    if g.shape != w.shape:
        raise ValueError(f"shape mismatch: {g.shape} vs {w.shape}")
    if g.size == 0:
        return ErrorMetrics(0.0, 0.0, 0.0, 0.0, 1.0, 0)
    diff = g - w
    norm_w = float(np.linalg.norm(w))
    norm_g = float(np.linalg.norm(g))
    rel = float(np.linalg.norm(diff)) / norm_w if norm_w else float(np.linalg.norm(diff))
    if norm_w and norm_g:
        cosine = float(np.dot(g, w) / (norm_g * norm_w))
    else:
        cosine = 1.0 if norm_w == norm_g else 0.0
    return ErrorMetrics(
        max_abs=float(np.max(np.abs(diff))),
        mae=float(np.mean(np.abs(diff))),
        rmse=float(np.sqrt(np.mean(diff * diff))),
        relative_l2=rel,
        cosine=cosine,
        n_values=int(g.size),
    )


def predictions(outputs: npt.ArrayLike, threshold: float = 0.5) -> npt.NDArray[np.int64]:
    """Class per sample: argmax, or ``output > threshold`` for a single (sigmoid) output."""
    out = np.asarray(outputs, dtype=np.float64)
    out = out.reshape(out.shape[0], -1)
    if out.shape[1] == 1:
        return np.asarray(out[:, 0] > threshold, dtype=np.int64)
    return np.asarray(np.argmax(out, axis=1), dtype=np.int64)


def class_metrics(
    predicted: npt.ArrayLike, labels: npt.ArrayLike, n_classes: int | None = None
) -> ClassMetrics:
    """Accuracy, confusion matrix and per-class precision/recall/F1 (0 where undefined)."""
    p = np.asarray(predicted, dtype=np.int64).reshape(-1)
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    if p.shape != y.shape:
        raise ValueError(f"{p.size} predictions for {y.size} labels")
    k = n_classes or int(max(p.max(initial=0), y.max(initial=0)) + 1)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y, p), 1)
    tp = np.diag(confusion).astype(np.float64)
    predicted_n = confusion.sum(axis=0).astype(np.float64)
    actual_n = confusion.sum(axis=1).astype(np.float64)
    precision = np.divide(tp, predicted_n, out=np.zeros(k), where=predicted_n > 0)
    recall = np.divide(tp, actual_n, out=np.zeros(k), where=actual_n > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    accuracy = float(tp.sum() / y.size) if y.size else 0.0
    return ClassMetrics(accuracy, confusion, precision, recall, f1)


def argmax_agreement(got: npt.ArrayLike, want: npt.ArrayLike) -> float:
    """Fraction of samples whose predicted class equals the reference's."""
    a, b = predictions(got), predictions(want)
    return float(np.mean(a == b)) if a.size else 1.0


def first_mismatches(
    got: npt.ArrayLike, want: npt.ArrayLike, *, atol: float = 0.0, limit: int = 5
) -> list[tuple[int, list[float], list[float]]]:
    """The first ``limit`` samples (index, got, want) that differ by more than ``atol``."""
    g = np.asarray(got, dtype=np.float64)
    w = np.asarray(want, dtype=np.float64)
    g2, w2 = g.reshape(g.shape[0], -1), w.reshape(w.shape[0], -1)
    bad = np.nonzero(np.any(np.abs(g2 - w2) > atol, axis=1))[0][:limit]
    return [(int(i), g2[i].tolist(), w2[i].tolist()) for i in bad]
