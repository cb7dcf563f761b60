"""Small ONNX models built with onnx.helper for the import tests (seeded random weights).

- :func:`mlp`: Gemm(tanh) - Gemm(leaky relu) - MatMul + Add - Softmax.
- :func:`cnn`: a CNN whose layout matters: 3-channel 7x5 input (not square),
  3x2 and 2x3 kernels, asymmetric padding, BatchNormalization, a Flatten of
  an NCHW tensor straight into a Gemm, Softmax.
- :func:`cnn_nhwc`: the same kind of network as a TensorFlow converter
  writes it: NHWC input, Transposes around the NCHW convolution, a Reshape
  of the NHWC tensor into a MatMul.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _save(nodes: list[Any], inits: dict[str, np.ndarray[Any, Any]], x_shape: list[Any],
          n_out: int, path: Path) -> Path:  # fmt: skip
    graph = helper.make_graph(
        nodes,
        path.stem,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", n_out])],
        [
            numpy_helper.from_array(v if v.dtype == np.int64 else v.astype(np.float32), k)
            for k, v in inits.items()
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def mlp(path: Path, seed: int = 0) -> Path:
    """6 inputs -> 8 (tanh) -> 8 (leaky relu 0.1) -> 4 (softmax)."""
    rng = np.random.default_rng(seed)
    inits = {
        "W1": rng.normal(0, 0.6, (8, 6)),
        "B1": rng.normal(0, 0.1, 8),
        "W2": rng.normal(0, 0.5, (8, 8)),
        "B2": rng.normal(0, 0.1, 8),
        "W3": rng.normal(0, 0.5, (8, 4)),
        "B3": rng.normal(0, 0.1, 4),
    }
    nodes = [
        helper.make_node("Gemm", ["x", "W1", "B1"], ["g1"], name="dense1", transB=1),
        helper.make_node("Tanh", ["g1"], ["t1"], name="tanh1"),
        helper.make_node("Gemm", ["t1", "W2", "B2"], ["g2"], name="dense2", transB=1),
        helper.make_node("LeakyRelu", ["g2"], ["l2"], name="leaky2", alpha=0.1),
        helper.make_node("MatMul", ["l2", "W3"], ["m3"], name="dense3"),
        helper.make_node("Add", ["m3", "B3"], ["a3"], name="dense3_bias"),
        helper.make_node("Softmax", ["a3"], ["y"], name="softmax", axis=-1),
    ]
    return _save(nodes, inits, ["N", 6], 4, path)


CNN_INPUT = (3, 7, 5)  # C, H, W


def cnn(path: Path, seed: int = 0, *, softmax: bool = True, batchnorm: bool = True) -> Path:
    """(3, 7, 5) -> Conv 4@3x2 pads (1,0,1,1) + BN + relu -> MaxPool 2x2 -> Conv 6@2x3
    stride (1, 2) pads (0,1,0,1) + relu -> Flatten (NCHW) -> Gemm 5 -> Softmax.

    Without ``softmax`` the Gemm's logits are the output; without
    ``batchnorm`` the first Conv feeds the Relu directly.
    """
    rng = np.random.default_rng(seed)
    c, h, w = CNN_INPUT
    # conv1: out (7 + 2 - 3 + 1, 5 + 1 - 2 + 1) = (7, 5); pool: (3, 2);
    # conv2: ((3 - 2) + 1, (2 + 2 - 3) // 2 + 1) = (2, 1)
    n_flat = 6 * 2 * 1
    inits = {
        "W1": rng.normal(0, 0.5, (4, c, 3, 2)),
        "B1": rng.normal(0, 0.1, 4),
        "gamma": rng.uniform(0.5, 1.5, 4),
        "beta": rng.normal(0, 0.2, 4),
        "mean": rng.normal(0, 0.2, 4),
        "var": rng.uniform(0.5, 2.0, 4),
        "W2": rng.normal(0, 0.4, (6, 4, 2, 3)),
        "B2": rng.normal(0, 0.1, 6),
        "W3": rng.normal(0, 0.5, (5, n_flat)),
        "B3": rng.normal(0, 0.1, 5),
    }
    nodes = [
        helper.make_node("Conv", ["x", "W1", "B1"], ["c1"], name="conv1", kernel_shape=[3, 2],
                         pads=[1, 0, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "gamma", "beta", "mean", "var"], ["n1"],
                         name="bn1"),
        helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Conv", ["p1", "W2", "B2"], ["c2"], name="conv2", kernel_shape=[2, 3],
                         strides=[1, 2], pads=[0, 1, 0, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Flatten", ["r2"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "W3", "B3"], ["g"], name="dense", transB=1),
        helper.make_node("Softmax", ["g"], ["y"], name="softmax", axis=-1),
    ]  # fmt: skip
    if not batchnorm:
        nodes[2] = helper.make_node("Relu", ["c1"], ["r1"], name="relu1")
        del nodes[1]
    if not softmax:
        nodes[-2].output[0] = "y"
        del nodes[-1]
    return _save(nodes, inits, ["N", c, h, w], 5, path)


def cnn_nhwc(path: Path, seed: int = 1) -> Path:
    """NHWC (7, 5, 3) -> Transpose -> Conv 4@3x3 SAME_UPPER + relu -> AveragePool 2x2
    -> Transpose back -> Reshape [-1, 24] (HWC order) -> MatMul + Add -> Softmax."""
    rng = np.random.default_rng(seed)
    c, h, w = CNN_INPUT
    inits = {
        "W1": rng.normal(0, 0.5, (4, c, 3, 3)),
        "B1": rng.normal(0, 0.1, 4),
        "W2": rng.normal(0, 0.5, (3 * 2 * 4, 5)),
        "B2": rng.normal(0, 0.1, 5),
        "shape": np.array([-1, 24], np.int64),
    }
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], name="to_nchw", perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["xt", "W1", "B1"], ["c1"], name="conv", kernel_shape=[3, 3],
                         auto_pad="SAME_UPPER"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu"),
        helper.make_node("AveragePool", ["r1"], ["p1"], name="pool", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Transpose", ["p1"], ["pt"], name="to_nhwc", perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["pt", "shape"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "W2"], ["m"], name="dense"),
        helper.make_node("Add", ["m", "B2"], ["a"], name="dense_bias"),
        helper.make_node("Softmax", ["a"], ["y"], name="softmax", axis=-1),
    ]  # fmt: skip
    return _save(nodes, inits, ["N", h, w, c], 5, path)


def with_unsupported_op(path: Path) -> Path:
    """A Gemm followed by a HardSwish (not in the IR)."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Gemm", ["x", "W", "B"], ["g"], name="dense", transB=1),
        helper.make_node("HardSwish", ["g"], ["y"], name="swish_1"),
    ]
    inits = {"W": rng.normal(0, 0.5, (3, 4)), "B": np.zeros(3)}
    return _save(nodes, inits, ["N", 4], 3, path)
