"""Lowering of float32 CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED / pooling operators."""

from __future__ import annotations

import numpy as np

from tinyml_exp.export.cgen import encodings, ops_conv_enc, qmath
from tinyml_exp.export.cgen.ops_common import (
    LowerContext,
    check_type,
    conv_geometry,
    fc_shapes,
    fused_activation,
    nhwc,
    option,
    pool_geometry,
    unsupported,
)
from tinyml_exp.export.cgen.program import ConstArray, Step, TensorArg
from tinyml_exp.tflite_graph import Operator


def _in(t: int) -> TensorArg:
    return TensorArg(t, "float")


def _out(t: int) -> TensorArg:
    return TensorArg(t, "float", writable=True)


def _const_f32(ctx: LowerContext, op: Operator, index: int, role: str):
    """`role` ("weights" / "bias") names the C array; an omitted optional bias becomes NULL."""
    t = ctx.tensor(index)
    if t is None:
        return "NULL"
    check_type(op, t, ("FLOAT32",), role)
    if t.data is None:
        raise unsupported(op, f"with non-constant {role}")
    return ctx.const(role, "float", t.data.astype(np.float32))


def lower_conv(ctx: LowerContext, op: Operator, pool: Operator | None) -> Step:
    g = ctx.graph
    x, w, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.tensor(op.outputs[0])
    depthwise = op.opcode == "DEPTHWISE_CONV_2D"
    in_h, in_w, in_c = nhwc(op, x, "input")
    out_h, out_w, out_c = nhwc(op, y, "output")
    k_h, k_w = w.shape[1], w.shape[2]
    stride, dil, pad = conv_geometry(op, (in_h, in_w), (k_h, k_w), (out_h, out_w))
    lo, hi = qmath.activation_range_float(fused_activation(op))
    pool_hw, final = (1, 1), y
    if pool is not None:
        pool_hw = (int(option(pool, "filterHeight")), int(option(pool, "filterWidth")))
        final = g.tensor(pool.outputs[0])
        p_lo, p_hi = qmath.activation_range_float(fused_activation(pool))
        lo, hi = max(lo, p_lo), min(hi, p_hi)
    params = ctx.params(
        "tme_conv_f32_params_t",
        {
            "in_h": in_h, "in_w": in_w, "in_c": in_c, "out_h": out_h, "out_w": out_w, "out_c": out_c,
            "k_h": k_h, "k_w": k_w, "stride_h": stride[0], "stride_w": stride[1],
            "dil_h": dil[0], "dil_w": dil[1], "pad_h": pad[0], "pad_w": pad[1],
            "depth_multiplier": out_c // in_c if depthwise else 0,
            "pool_h": pool_hw[0], "pool_w": pool_hw[1], "act_min": lo, "act_max": hi,
        },
    )  # fmt: skip
    bias = _const_f32(ctx, op, op.inputs[2] if len(op.inputs) > 2 else -1, "bias")
    args = (params, _in(x.index), _const_f32(ctx, op, w.index, "weights"), bias, _out(final.index))
    ops = (op.index,) + ((pool.index,) if pool is not None else ())
    label = op.opcode + ("+MAX_POOL_2D" if pool is not None else "")
    macs = out_h * out_w * out_c * k_h * k_w * (1 if depthwise else in_c)
    if ctx.weights != "dense":
        slower = ops_conv_enc.float_conv_slower(w.data)
        choice = ops_conv_enc.choose_conv(ctx, op, w.data, depthwise, (k_h, k_w), slower)
        if choice.encoding != "dense":
            return ops_conv_enc.conv_step_f32(ctx, op, choice, w.data, params, args, ops, label, macs)
    return Step("tme_conv_f32", "f32.c", ops, label, args, (x.index,), final.index, macs=macs)


def lower_fc(ctx: LowerContext, op: Operator) -> Step:
    x, w, y, out_n, in_n = fc_shapes(ctx, op)  # weights' type: checked by _const_f32
    lo, hi = qmath.activation_range_float(fused_activation(op))
    params = ctx.params("tme_fc_f32_params_t", {"in_n": in_n, "out_n": out_n, "act_min": lo, "act_max": hi})
    bias = _const_f32(ctx, op, op.inputs[2] if len(op.inputs) > 2 else -1, "bias")
    weights = None if ctx.weights == "dense" else _fc_weights(ctx, op, w)
    if weights is None and w.index in ctx.float16:  # float16 quantization: keep the halves
        half = ctx.const("weights", "uint16_t", ctx.float16[w.index].view(np.uint16))
        args = (params, _in(x.index), half, bias, _out(y.index))
        return Step("tme_fc_f16w_f32", "fc_f16w.c", (op.index,), op.opcode, args, (x.index,), y.index,
                    macs=in_n * out_n)  # fmt: skip
    if weights is None:
        weights = _const_f32(ctx, op, w.index, "weights")
    kernel, source = ("tme_fc_f32", "f32.c") if isinstance(weights, ConstArray) else weights[0]
    weights = (weights,) if isinstance(weights, ConstArray) else weights[1]
    args = (params, _in(x.index), *weights, bias, _out(y.index))
    return Step(kernel, source, (op.index,), op.opcode, args, (x.index,), y.index, macs=in_n * out_n)


def _fc_weights(ctx: LowerContext, op: Operator, w):
    """The dense weights array (None for float16 weights, kept as halves), or ((kernel, source),
    encoded arrays) when export.weights allows."""
    check_type(op, w, ("FLOAT32",), "weights")
    if w.data is None:
        raise unsupported(op, "with non-constant weights")
    wf = w.data.astype(np.float32).reshape(w.shape)
    halves = ctx.float16.get(w.index)
    # float16 weights: dense means 2 bytes a weight, what an encoding must beat
    dtype = "float32" if halves is None else "float16"
    choice = encodings.choose(wf, ctx.weights, 0, dense_bytes=None if halves is None else halves.nbytes,
                              cost=lambda enc: encodings.fc_instructions(dtype, enc, wf))  # fmt: skip
    ctx.record(op, choice.encoding, choice.reason)
    if choice.encoding == "clustered":
        stride, _ = encodings.clustered_layout(wf)
        idx, codebook = encodings.pack_clustered(wf, stride)
        arrays = (ctx.const("widx", "uint8_t", idx), ctx.const("codebook", "float", codebook), str(stride))
        return ("tme_fc_clustered_f32", "fc_enc_f32.c"), arrays
    if choice.encoding == "sparse_clustered":
        stride = encodings.sparse_clustered_layout(wf)
        idx, masks, codebook = encodings.pack_sparse_clustered(wf, stride)
        arrays = (ctx.const("widx", "uint8_t", idx), ctx.const("wmask", "uint32_t", masks),
                  ctx.const("codebook", "float", codebook), str(stride))  # fmt: skip
        return ("tme_fc_sparse_clustered_f32", "fc_enc_f32.c"), arrays
    if choice.encoding == "sparse":
        vals, pos = encodings.pack_sparse24(wf)
        arrays = (ctx.const("wvals", "float", vals), ctx.const("wpos", "uint8_t", pos))
        return ("tme_fc_sparse24_f32", "fc_enc_f32.c"), arrays
    if choice.encoding == "bitmask":
        vals, masks = encodings.pack_bitmask(wf)
        arrays = (ctx.const("wvals", "float", vals), ctx.const("wmask", "uint32_t", masks))
        return ("tme_fc_bitmask_f32", "fc_enc_f32.c"), arrays
    return None if halves is not None else ctx.const("weights", "float", wf)


def lower_pool(ctx: LowerContext, op: Operator) -> Step:
    g = ctx.graph
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    lo, hi = qmath.activation_range_float(fused_activation(op))
    params = ctx.params("tme_pool_f32_params_t", {**pool_geometry(op, x, y), "act_min": lo, "act_max": hi})
    return Step("tme_pool_f32", "f32.c", (op.index,), op.opcode, (params, _in(x.index), _out(y.index)),
                (x.index,), y.index)  # fmt: skip
