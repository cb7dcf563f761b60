"""Comparison metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from simcore.compare import (
    argmax_agreement,
    class_metrics,
    error_metrics,
    first_mismatches,
    predictions,
)


def test_error_metrics_by_hand() -> None:
    m = error_metrics([1.0, 2.0, 4.0], [1.0, 2.0, 2.0])
    assert m.max_abs == 2.0
    assert m.mae == pytest.approx(2 / 3)
    assert m.rmse == pytest.approx(np.sqrt(4 / 3))
    assert m.relative_l2 == pytest.approx(2 / 3)  # |(0,0,2)| / |(1,2,2)| = 2/3
    assert m.cosine == pytest.approx(13 / (np.sqrt(21) * 3))
    assert error_metrics([1, 2], [1, 2]).max_abs == 0.0


def test_error_metrics_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="shape"):
        error_metrics([1, 2], [1, 2, 3])


def test_predictions_sigmoid_and_softmax() -> None:
    assert predictions([[0.2], [0.7], [0.5]]).tolist() == [0, 1, 0]
    assert predictions([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]]).tolist() == [1, 0]


def test_class_metrics_by_hand() -> None:
    labels = [0, 0, 1, 1, 2, 2]
    pred = [0, 1, 1, 1, 2, 0]
    m = class_metrics(pred, labels)
    assert m.accuracy == pytest.approx(4 / 6)
    assert m.confusion.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m.precision.tolist() == pytest.approx([0.5, 2 / 3, 1.0])
    assert m.recall.tolist() == pytest.approx([0.5, 1.0, 0.5])
    assert m.f1[1] == pytest.approx(0.8)


def test_class_never_predicted_has_zero_precision() -> None:
    m = class_metrics([0, 0], [0, 1], n_classes=2)
    assert m.precision.tolist() == [0.5, 0.0] and m.recall.tolist() == [1.0, 0.0]


def test_argmax_agreement_and_mismatches() -> None:
    got = np.array([[0.1, 0.9], [0.8, 0.2], [0.4, 0.6]])
    want = np.array([[0.2, 0.8], [0.3, 0.7], [0.4, 0.6]])
    assert argmax_agreement(got, want) == pytest.approx(2 / 3)
    bad = first_mismatches(got, want, atol=0.05)
    assert [i for i, _, _ in bad] == [0, 1]
    assert bad[1][1] == [0.8, 0.2]
