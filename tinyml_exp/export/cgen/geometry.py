"""Operator options and conv geometry, shared by the lowerings and the planner's overlap offer
(`program.Program.plan_buffers`); a leaf of the generator, so the planner needs no lowering code."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinyml_exp.export.cgen import qmath
from tinyml_exp.export.cgen.errors import UnsupportedOperatorError

if TYPE_CHECKING:
    from tinyml_exp.tflite_graph import Operator

PADDING_SAME, PADDING_VALID = 0, 1


def unsupported(op: Operator, what: str) -> UnsupportedOperatorError:
    return UnsupportedOperatorError(f"{op.opcode} (op {op.index}) {what} is not supported by the C generator")


def option(op: Operator, name: str, default=None):
    return getattr(op.options, name, default) if op.options is not None else default


def conv_geometry(op: Operator, in_hw: tuple[int, int], k_hw: tuple[int, int], out_hw: tuple[int, int]):
    """Strides, dilations and leading padding of a conv-like operator."""
    stride = (int(option(op, "strideH", 1)), int(option(op, "strideW", 1)))
    dil = (int(option(op, "dilationHFactor", 1) or 1), int(option(op, "dilationWFactor", 1) or 1))
    padding = int(option(op, "padding", PADDING_VALID))
    if padding == PADDING_VALID:
        pad = (0, 0)
    elif padding == PADDING_SAME:
        pad = tuple(qmath.same_padding(in_hw[i], k_hw[i], stride[i], dil[i], out_hw[i]) for i in (0, 1))
    else:
        raise unsupported(op, f"with padding {padding}")
    return stride, dil, pad
