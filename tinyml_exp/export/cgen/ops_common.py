"""Shared helpers of the per-operator lowering functions (`ops_int8.py`, `ops_f32.py`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyml_exp.export.cgen import qmath
from tinyml_exp.export.cgen.errors import UnsupportedOperatorError
from tinyml_exp.export.cgen.geometry import (  # noqa: F401  (re-exported for the lowerings)
    PADDING_SAME,
    PADDING_VALID,
    conv_geometry,
    option,
    unsupported,
)
from tinyml_exp.export.cgen.program import ConstArray, Params
from tinyml_exp.tflite_graph import Graph, Operator, Tensor


@dataclass
class LowerContext:
    graph: Graph
    reference: str  # "tflm" or "tflite": which int8 reference to match where the two differ
    op_index: int = 0  # operator being lowered: C names of its constants start with op<index>_
    weights: str = "dense"  # export.weights: dense | sparse | clustered | auto (encodings.py)
    encodings: dict[str, tuple[str, str]] = field(default_factory=dict)  # layer -> (encoding, reason)
    float16: dict[int, np.ndarray] = field(default_factory=dict)  # folded tensor -> its float16 values
    _used: set[str] = field(default_factory=set)

    def record(self, op: Operator, encoding: str, reason: str) -> None:
        self.encodings[f"op{op.index}_{op.opcode}"] = (encoding, reason)

    def name(self, suffix: str) -> str:
        name = f"op{self.op_index}_{suffix}"
        n = 1
        while name in self._used:
            name = f"op{self.op_index}_{suffix}{n}"
            n += 1
        self._used.add(name)
        return name

    def const(self, prefix: str, ctype: str, values) -> ConstArray:
        if isinstance(values, np.ndarray):
            values = tuple(v.item() for v in values.reshape(-1))
        return ConstArray(self.name(prefix), ctype, tuple(values))

    def params(self, ctype: str, fields: dict, double_fields: frozenset[str] = frozenset()) -> Params:
        return Params(self.name("params"), ctype, tuple(fields.items()), double_fields)

    def tensor(self, index: int) -> Tensor | None:
        return None if index < 0 else self.graph.tensor(index)


def nhwc(op: Operator, t: Tensor, role: str) -> tuple[int, int, int]:
    """(H, W, C) of a batch-1 4-D tensor."""
    if len(t.shape) != 4 or t.shape[0] != 1:
        raise unsupported(op, f"with {role} shape {list(t.shape)} (expected [1, H, W, C])")
    return t.shape[1], t.shape[2], t.shape[3]


def scale_zp(op: Operator, t: Tensor, role: str) -> tuple[float, int]:
    """Per-tensor (scale, zero point) of an activation tensor."""
    q = t.quantization
    if q is None or q.scale.size != 1:
        raise unsupported(op, f"with {'per-channel' if q is not None else 'missing'} {role} quantization")
    return float(q.scale[0]), int(q.zero_point[0])


def fused_activation(op: Operator) -> int:
    act = int(option(op, "fusedActivationFunction", 0) or 0)
    if act not in (qmath.ACT_NONE, qmath.ACT_RELU, qmath.ACT_RELU6, qmath.ACT_RELU_N1_TO_1):
        raise unsupported(op, f"with fused activation {qmath.ACTIVATION_NAMES.get(act, act)}")
    return act


def pool_geometry(op: Operator, x: Tensor, y: Tensor) -> dict[str, int]:
    """The window fields every pooling kernel's parameter struct starts with (int8 and float32)."""
    in_h, in_w, ch = nhwc(op, x, "input")
    out_h, out_w, _ = nhwc(op, y, "output")
    f = (int(option(op, "filterHeight")), int(option(op, "filterWidth")))
    stride, _, pad = conv_geometry(op, (in_h, in_w), f, (out_h, out_w))
    return {
        "in_h": in_h, "in_w": in_w, "ch": ch, "out_h": out_h, "out_w": out_w, "f_h": f[0], "f_w": f[1],
        "stride_h": stride[0], "stride_w": stride[1], "pad_h": pad[0], "pad_w": pad[1],
        "is_avg": int(op.opcode == "AVERAGE_POOL_2D"),
    }  # fmt: skip


def fc_shapes(
    ctx: LowerContext, op: Operator, weight_types: tuple[str, ...] | None = None
) -> tuple[Tensor, Tensor, Tensor, int, int]:
    """Input, weights and output of a FULLY_CONNECTED on one sample, and (out_n, in_n)."""
    g = ctx.graph
    x, w, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.tensor(op.outputs[0])
    if weight_types is not None:
        check_type(op, w, weight_types, "weights")
    if len(w.shape) != 2:
        raise unsupported(op, f"with weights shape {list(w.shape)}")
    out_n, in_n = w.shape
    if x.num_elements != in_n or y.num_elements != out_n:
        raise unsupported(op, f"with batched input {list(x.shape)}")
    return x, w, y, out_n, in_n


def check_type(op: Operator, t: Tensor | None, allowed: tuple[str, ...], role: str) -> None:
    if t is not None and t.type_name not in allowed:
        raise UnsupportedOperatorError(
            f"{op.opcode} (op {op.index}) with {t.type_name} {role} is not supported by the C generator; "
            f"supported {role} types: {', '.join(allowed)}"
        )
