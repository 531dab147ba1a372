"""Lowering of ADD, MEAN, SOFTMAX, QUANTIZE and DEQUANTIZE (int8 and float32)."""

from __future__ import annotations

import numpy as np

from tinyml_exp.export.cgen import qmath
from tinyml_exp.export.cgen.ops_common import (
    LowerContext,
    check_type,
    fused_activation,
    nhwc,
    option,
    scale_zp,
    unsupported,
)
from tinyml_exp.export.cgen.ops_int8 import add_tables
from tinyml_exp.export.cgen.program import Step, TensorArg
from tinyml_exp.tflite_graph import Operator

_CTYPE = {"INT8": "int8_t", "FLOAT32": "float"}


def _in(ctx: LowerContext, t: int) -> TensorArg:
    return TensorArg(t, _CTYPE[ctx.graph.tensor(t).type_name])


def _out(ctx: LowerContext, t: int) -> TensorArg:
    return TensorArg(t, _CTYPE[ctx.graph.tensor(t).type_name], writable=True)


def lower_add(ctx: LowerContext, op: Operator) -> Step:
    g = ctx.graph
    a, b, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.tensor(op.outputs[0])
    args_io = (_in(ctx, a.index), _in(ctx, b.index), _out(ctx, y.index))
    if y.type_name == "FLOAT32":
        if a.shape != y.shape or b.shape != y.shape:
            raise unsupported(op, f"with broadcasting {list(a.shape)} + {list(b.shape)}")
        if a.is_constant or b.is_constant:
            raise unsupported(op, "with a constant operand")
        lo, hi = qmath.activation_range_float(fused_activation(op))
        params = ctx.params("tme_add_f32_params_t", {"n": y.num_elements, "act_min": lo, "act_max": hi})
        return Step("tme_add_f32", "f32.c", (op.index,), op.opcode, (params, *args_io), (a.index, b.index),
                    y.index, in_place=True)  # fmt: skip
    at = add_tables(ctx, op)
    tables = (ctx.const("add_t1", "int32_t", at.tables[0]), ctx.const("add_t2", "int32_t", at.tables[1]),
              ctx.const("requant", "tme_rq_t", at.rq))  # fmt: skip
    params = at.params(ctx, "tme_add_table_params_t", n=y.num_elements)
    return Step("tme_add_table_s8", "eltwise_s8.c", (op.index,), op.opcode, (params, *tables, *args_io),
                (a.index, b.index), y.index, in_place=True)  # fmt: skip


def lower_mean(ctx: LowerContext, op: Operator) -> Step:
    """Global average pooling: MEAN over axes {1, 2} of [1, H, W, C]."""
    g = ctx.graph
    x, axis, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.tensor(op.outputs[0])
    h, w, ch = nhwc(op, x, "input")
    axes = sorted(int(a) % 4 for a in axis.data.reshape(-1)) if axis.data is not None else None
    if axes != [1, 2]:
        raise unsupported(op, f"over axes {axes} (only the spatial axes [1, 2] of NHWC)")
    n = h * w
    io = (_in(ctx, x.index), _out(ctx, y.index))
    if y.type_name == "FLOAT32":
        params = ctx.params("tme_mean_f32_params_t", {"n": n, "ch": ch})
        return Step("tme_mean_f32", "f32.c", (op.index,), op.opcode, (params, *io), (x.index,), y.index)
    (s_in, z_in), (s_out, z_out) = scale_zp(op, x, "input"), scale_zp(op, y, "output")
    if (s_in, z_in) == (s_out, z_out):
        mode, mult, shift = 0, 0, 0
    else:
        mode, (mult, shift) = 1, qmath.mean_rescale_params(s_in, s_out, n)
    params = ctx.params(
        "tme_mean_params_t",
        {"n": n, "ch": ch, "mode": mode, "in_zp": z_in, "out_zp": z_out, "mult": mult, "shift": shift},
    )
    return Step("tme_mean_s8", "mean_s8.c", (op.index,), op.opcode, (params, *io), (x.index,), y.index)


def lower_softmax(ctx: LowerContext, op: Operator) -> Step:
    g = ctx.graph
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    depth = x.shape[-1]
    rows = x.num_elements // depth
    beta = float(option(op, "beta", 1.0))
    io = (_in(ctx, x.index), _out(ctx, y.index))
    if y.type_name == "FLOAT32":
        params = ctx.params("tme_softmax_f32_params_t", {"rows": rows, "depth": depth, "beta": beta})
        return Step("tme_softmax_f32", "f32.c", (op.index,), op.opcode, (params, *io), (x.index,), y.index)
    s_in, _ = scale_zp(op, x, "input")
    if scale_zp(op, y, "output") != (1.0 / 256.0, -128):
        raise unsupported(op, "with int8 output quantization other than scale 1/256, zero point -128")
    sp = qmath.softmax_params(beta, s_in)
    params = ctx.params(
        "tme_softmax_params_t",
        {"rows": rows, "depth": depth, "mult": sp.mult, "left_shift": sp.left_shift, "diff_min": sp.diff_min},
    )
    return Step("tme_softmax_s8", "softmax_s8.c", (op.index,), op.opcode, (params, *io), (x.index,), y.index)


def lower_quantize(ctx: LowerContext, op: Operator) -> Step:
    g = ctx.graph
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    check_type(op, x, ("FLOAT32", "INT8"), "input")
    check_type(op, y, ("INT8",), "output")
    s_out, z_out = scale_zp(op, y, "output")
    io = (_in(ctx, x.index), _out(ctx, y.index))
    if x.type_name == "FLOAT32":
        params = ctx.params(
            "tme_quantize_params_t", {"n": y.num_elements, "zp": z_out, "scale": float(np.float32(s_out))}
        )
        return Step("tme_quantize_f32_s8", "eltwise_s8.c", (op.index,), op.opcode, (params, *io), (x.index,),
                    y.index)  # fmt: skip
    s_in, z_in = scale_zp(op, x, "input")
    mult, shift = qmath.quantize_multiplier(s_in / s_out)
    params = ctx.params(
        "tme_requant_params_t",
        {"n": y.num_elements, "in_zp": z_in, "out_zp": z_out, "mult": mult, "shift": shift},
    )
    return Step("tme_requant_s8", "eltwise_s8.c", (op.index,), op.opcode, (params, *io), (x.index,), y.index,
                in_place=True)  # fmt: skip


def lower_dequantize(ctx: LowerContext, op: Operator) -> Step:
    g = ctx.graph
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    check_type(op, x, ("INT8",), "input")
    check_type(op, y, ("FLOAT32",), "output")
    s_in, z_in = scale_zp(op, x, "input")
    params = ctx.params(
        "tme_dequantize_params_t",
        {"n": x.num_elements, "zp": z_in, "scale": s_in},
        double_fields=frozenset({"scale"}),
    )
    io = (_in(ctx, x.index), _out(ctx, y.index))
    return Step("tme_dequantize_s8_f32", "eltwise_s8.c", (op.index,), op.opcode, (params, *io), (x.index,),
                y.index)  # fmt: skip
