"""Lowering of int8 (full-integer) operators to kernel calls, with TFLite's Prepare arithmetic:
requantization tables, ADD tables, FULLY_CONNECTED and pooling (convolutions: ops_int8_conv.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyml_exp.export.cgen import encodings, qmath
from tinyml_exp.export.cgen.ops_common import (
    LowerContext,
    check_type,
    fc_shapes,
    fused_activation,
    pool_geometry,
    scale_zp,
    unsupported,
)
from tinyml_exp.export.cgen.program import (
    Params,
    ScratchArg,
    Step,
    TensorArg,
)
from tinyml_exp.tflite_graph import Operator, Tensor

INT32_MAX = (1 << 31) - 1
RQ_REFERENCE, RQ_RELU, RQ_SIGNED = 0, 1, 2  # tme_requant modes, see kernels/common.h


def int8_in(t: int) -> TensorArg:
    return TensorArg(t, "int8_t")


def int8_out(t: int) -> TensorArg:
    return TensorArg(t, "int8_t", writable=True)


def filter_scales(op: Operator, w, axis: int, channels: int) -> np.ndarray:
    """Filter scales (per channel or per tensor); int8 weights must be symmetric."""
    q = w.quantization
    if q is None:
        raise unsupported(op, "with unquantized int8 weights")
    if q.per_channel and (q.axis != axis or q.scale.size != channels):
        raise unsupported(op, f"with weights quantized along axis {q.axis}")
    if np.any(q.zero_point != 0):
        raise unsupported(op, "with asymmetric int8 weights")
    return q.scale


def bias_values(ctx: LowerContext, op: Operator, index: int, channels: int) -> np.ndarray:
    b = ctx.tensor(index)
    if b is None:
        return np.zeros(channels, dtype=np.int64)
    check_type(op, b, ("INT32",), "bias")
    if b.data is None:
        raise unsupported(op, "with a non-constant bias")
    return b.data.astype(np.int64).reshape(-1)


def requant_table(
    mults: list[int], shifts: list[int], zp_out: int, act_min: int, bias_in_c: np.ndarray | None
) -> tuple[int, list[tuple[int, int, int]]]:
    """(mode, per-channel (c, m, sh)) for `tme_requant`: the cheapest exact form (common.h).

    `bias_in_c`: bias the kernel has not added to the accumulator (folded into c, or added
    before the reference form); None when the accumulator starts at the bias."""
    bias = np.zeros(len(mults), dtype=np.int64) if bias_in_c is None else bias_in_c
    shifts_ok = all(-23 <= s <= -1 for s in shifts)
    if shifts_ok and act_min >= zp_out:
        mode = RQ_RELU
    elif shifts_ok and bias_in_c is None and all(m > 1 << 30 for m in mults):
        mode = RQ_SIGNED
    else:
        return RQ_REFERENCE, [(int(b), m, s) for b, m, s in zip(bias, mults, shifts, strict=True)]
    rows = []
    for b, m, s in zip(bias, mults, shifts, strict=True):
        r = -s
        rows.append((int(b) * m + (1 << 30) + (1 << (30 + r)) + zp_out * (1 << (31 + r)), m, r - 1))
    return mode, rows


@dataclass(frozen=True)
class AddTables:
    """An int8 ADD as two input tables and one requantization (see kernels/eltwise_s8.c)."""

    tables: tuple[list[int], list[int]]  # per input, in the ADD's input order
    mode: int
    rq: list[tuple[int, int, int]]
    out_offset: int
    act: tuple[int, int]

    def params(self, ctx: LowerContext, ctype: str, **extra: int) -> Params:
        fields = {**extra, "out_offset": self.out_offset, "act_min": self.act[0], "act_max": self.act[1]}
        return ctx.params(ctype, {**fields, "rq_mode": self.mode})


def add_tables(ctx: LowerContext, op: Operator) -> AddTables:
    """TFLite's int8 ADD Prepare (qmath.add_params), tabulated; raises for unsupported operands."""
    g = ctx.graph
    a, b, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.tensor(op.outputs[0])
    if a.shape != y.shape or b.shape != y.shape:
        raise unsupported(op, f"with broadcasting {list(a.shape)} + {list(b.shape)}")
    if a.is_constant or b.is_constant:
        raise unsupported(op, "with a constant operand")
    (s1, z1), (s2, z2) = scale_zp(op, a, "input"), scale_zp(op, b, "input")
    s_out, z_out = scale_zp(op, y, "output")
    try:
        ap = qmath.add_params(s1, s2, s_out)
    except ValueError as e:
        raise unsupported(op, f"with scales {s1:g} + {s2:g} -> {s_out:g}") from e
    act = qmath.activation_range_int8(fused_activation(op), s_out, z_out)
    t1 = qmath.add_input_table(-z1, ap.left_shift, ap.in1_mult, ap.in1_shift)
    t2 = qmath.add_input_table(-z2, ap.left_shift, ap.in2_mult, ap.in2_shift)
    mode, rq = requant_table([ap.out_mult], [ap.out_shift], z_out, act[0], bias_in_c=None)
    return AddTables((t1, t2), mode, rq, z_out, act)


def _fc_weight_zero_point(op: Operator, w: Tensor, out_n: int) -> int:
    """Weights quantized per tensor or per output row; per-channel ones symmetric."""
    q = w.quantization
    if q is None or (q.per_channel and q.scale.size != out_n):
        raise unsupported(op, "with weights quantized along the input axis")
    if q.per_channel and np.any(q.zero_point != 0):
        raise unsupported(op, "with asymmetric per-channel weights")
    return int(q.zero_point[0])


def lower_fc(ctx: LowerContext, op: Operator) -> Step:
    x, w, y, out_n, in_n = fc_shapes(ctx, op, weight_types=("INT8",))
    s_in, zp_in = scale_zp(op, x, "input")
    s_out, zp_out = scale_zp(op, y, "output")
    w_zp = _fc_weight_zero_point(op, w, out_n)
    bias = bias_values(ctx, op, op.inputs[2] if len(op.inputs) > 2 else -1, out_n)
    mults, shifts = qmath.channel_multipliers(s_in, w.quantization.scale, s_out, out_n)
    act_min, act_max = qmath.activation_range_int8(fused_activation(op), s_out, zp_out)
    use_double = ctx.reference == "tflite"
    scales = qmath.channel_scales_double(s_in, w.quantization.scale, s_out, out_n) if use_double else None
    wq = w.data.astype(np.int64)
    group = next(gs for gs in (5, 4, 6, 3, 2, 1) if out_n % gs == 0)
    fields = {
        "in_n": in_n, "out_n": out_n, "group": group, "in_offset": -zp_in, "w_offset": -w_zp,
        "out_offset": zp_out, "act_min": act_min, "act_max": act_max, "requant": int(use_double),
    }  # fmt: skip
    params = ctx.params("tme_fc_params_t", fields)
    tail = (
        ctx.const("mult", "int32_t", mults),
        ctx.const("shift", "int32_t", shifts),
        ctx.const("scale", "double", scales) if scales is not None else "NULL",
        int8_out(y.index),
    )
    bias_f = bias + (-zp_in) * wq.sum(axis=1)
    choice = _fc_choice(ctx, op, wq, w_zp, bias_f)
    if choice.encoding != "dense":
        return _fc_encoded(ctx, op, choice.encoding, wq.astype(np.int8), (params, int8_in(x.index)),
                           ctx.const("bias", "int32_t", bias_f), tail)  # fmt: skip
    if in_n % 4 == 0 and w_zp == 0:
        # word k of a pass = 4 consecutive weights of one row; input offset folded into the bias
        words = wq.astype(np.int8).reshape(out_n // group, group, in_n // 4, 4).transpose(0, 2, 1, 3)
        wpk = np.ascontiguousarray(words).view("<u4").reshape(-1)
        if np.abs(bias_f).max(initial=0) > INT32_MAX:
            raise unsupported(op, "with a bias that overflows int32 after folding the input offset")
        if in_n % 8 == 0 and group in (4, 5) and out_n // group >= 4:
            return _fc_wide(ctx, op, fields, wpk, bias_f, mults, shifts, scales)
        args = (
            params,
            int8_in(x.index),
            ctx.const("weights", "uint32_t", wpk),
            ctx.const("bias", "int32_t", bias_f),
        )
        return Step("tme_fc_packed_s8", "fc_s8.c", (op.index,), op.opcode, args + tail, (x.index,), y.index,
                    macs=in_n * out_n)  # fmt: skip
    has_bias = len(op.inputs) > 2 and op.inputs[2] >= 0
    args = (params, int8_in(x.index), ctx.const("weights", "int8_t", wq),
            ctx.const("bias", "int32_t", bias) if has_bias else "NULL")  # fmt: skip
    return Step("tme_fc_s8", "fc_s8.c", (op.index,), op.opcode, args + tail, (x.index,), y.index,
                macs=in_n * out_n)  # fmt: skip


def _fc_wide(ctx: LowerContext, op: Operator, fields: dict, wpk: np.ndarray, bias_f: np.ndarray,
             mults: list[int], shifts: list[int], scales: list[float] | None) -> Step:  # fmt: skip
    """tme_fc_wide_s8: the packed layout, the input widened once into scratch (it pays for itself
    from 4 passes on) and common.h's requantization forms (TFLM's arithmetic); with `scales`
    tme_fc_wide_double_s8, TFLite's reference rounding in double."""
    mode, rq = requant_table(mults, shifts, fields["out_offset"], fields["act_min"], bias_in_c=None)
    keys = ("in_n", "out_n", "group", "out_offset", "act_min", "act_max")
    params = ctx.params("tme_fc_wide_params_t", {**{k: fields[k] for k in keys}, "rq_mode": mode})
    x, y = op.inputs[0], op.outputs[0]
    args = (
        params,
        int8_in(x),
        ctx.const("weights", "uint32_t", wpk),
        ctx.const("bias", "int32_t", bias_f),
        ctx.const("requant", "tme_rq_t", rq) if scales is None else ctx.const("scale", "double", scales),
        ScratchArg(),
        int8_out(y),
    )
    kernel = "tme_fc_wide_s8" if scales is None else "tme_fc_wide_double_s8"
    return Step(kernel, "fc_s8.c", (op.index,), op.opcode, args, (x,), y, macs=fields["in_n"] * fields["out_n"],
                scratch_bytes=2 * fields["in_n"])  # fmt: skip


def _fc_choice(ctx: LowerContext, op: Operator, wq: np.ndarray, w_zp: int, bias_f: np.ndarray):
    """The layer's weight encoding under export.weights (recorded in the encoding table)."""
    w = wq.astype(np.int8)
    choice = encodings.choose(
        w, ctx.weights, w_zp, cost=lambda enc: encodings.fc_instructions("int8", enc, w)
    )
    if choice.encoding != "dense" and np.abs(bias_f).max(initial=0) > INT32_MAX:
        choice = encodings.Choice("dense", "the bias overflows int32 after folding the input offset")
    ctx.record(op, choice.encoding, choice.reason)
    return choice


def _fc_encoded(
    ctx: LowerContext, op: Operator, encoding: str, w: np.ndarray, head: tuple, bias, tail
) -> Step:
    """FULLY_CONNECTED on clustered, sparse clustered, 2:4 or bitmask weights (kernels/fc_enc_s8.c)."""
    x, y = op.inputs[0], op.outputs[0]
    scratch = 0
    if encoding == "clustered":
        stride, _ = encodings.clustered_layout(w)
        # the pair table (1 KB scratch, ~700 instructions to build per codebook) pays off on long rows
        pairs = w.shape[1] % 4 == 0 and (stride == 0 or w.shape[1] >= 256)
        idx, codebook = encodings.pack_clustered(encodings.pair_order(w) if pairs else w, stride)
        kernel = "tme_fc_clustered_pairs_s8" if pairs else "tme_fc_clustered_s8"
        weights = (ctx.const("widx", "uint8_t", idx), ctx.const("codebook", "int8_t", codebook), str(stride))
        if pairs:
            weights, scratch = (*weights, ScratchArg()), 1024
    elif encoding == "sparse_clustered":
        stride = encodings.sparse_clustered_layout(w)
        idx, masks, codebook = encodings.pack_sparse_clustered(w, stride)
        kernel = "tme_fc_sparse_clustered_s8"
        weights = (ctx.const("widx", "uint8_t", idx), ctx.const("wmask", "uint32_t", masks),
                   ctx.const("codebook", "int8_t", codebook), str(stride))  # fmt: skip
    elif encoding == "sparse":
        vals, pos = encodings.pack_sparse24(w)
        kernel = "tme_fc_sparse24_s8"
        weights = (ctx.const("wvals", "int8_t", vals), ctx.const("wpos", "uint8_t", pos))
    else:
        vals, masks = encodings.pack_bitmask(w)
        kernel = "tme_fc_bitmask_s8"
        weights = (ctx.const("wvals", "int8_t", vals), ctx.const("wmask", "uint32_t", masks))
    return Step(kernel, "fc_enc_s8.c", (op.index,), op.opcode, head + weights + (bias,) + tail, (x,), y,
                macs=w.size, scratch_bytes=scratch)  # fmt: skip


def lower_pool(ctx: LowerContext, op: Operator) -> Step:
    g = ctx.graph
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    geometry = pool_geometry(op, x, y)
    if scale_zp(op, x, "input") != scale_zp(op, y, "output"):
        raise unsupported(op, "with different input and output quantization")
    s_out, zp_out = scale_zp(op, y, "output")
    act_min, act_max = qmath.activation_range_int8(fused_activation(op), s_out, zp_out)
    params = ctx.params("tme_pool_params_t", {**geometry, "act_min": act_min, "act_max": act_max})
    # SIMD average when a window's sum fits 16-bit lanes (<= 256 taps)
    kernel = (
        "tme_avgpool_s8" if geometry["is_avg"] and geometry["f_h"] * geometry["f_w"] <= 256 else "tme_pool_s8"
    )
    return Step(kernel, "pool_s8.c", (op.index,), op.opcode, (params, int8_in(x.index), int8_out(y.index)),
                (x.index,), y.index)  # fmt: skip
