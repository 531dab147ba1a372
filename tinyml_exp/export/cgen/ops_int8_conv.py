"""Lowering of int8 CONV_2D / DEPTHWISE_CONV_2D: the fast paths of kernels/conv_s8.c, fusions with a
following MAX_POOL_2D or residual ADD, and the reference loop order for everything else."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyml_exp.export.cgen import ops_conv_enc, qmath
from tinyml_exp.export.cgen.ops_common import (
    LowerContext,
    check_type,
    conv_geometry,
    fused_activation,
    nhwc,
    option,
    scale_zp,
    unsupported,
)
from tinyml_exp.export.cgen.ops_int8 import (
    INT32_MAX,
    RQ_RELU,
    add_tables,
    bias_values,
    filter_scales,
    int8_in,
    int8_out,
    requant_table,
)
from tinyml_exp.export.cgen.program import (
    Roomier,
    ScratchArg,
    Step,
    UnsupportedOperatorError,
    pack_int16_pairs,
)
from tinyml_exp.tflite_graph import Operator, Tensor


@dataclass(frozen=True)
class _Conv:
    """Everything the int8 conv kernels need, derived once from the operator(s)."""

    op: Operator
    x: Tensor
    out: Tensor  # the pool output when a max-pool is fused
    depthwise: bool
    in_hwc: tuple[int, int, int]
    out_hwc: tuple[int, int, int]  # of the conv, before pooling
    k_hw: tuple[int, int]
    stride: tuple[int, int]
    dil: tuple[int, int]
    pad: tuple[int, int]
    pool_hw: tuple[int, int]
    zp_in: int
    zp_out: int
    act: tuple[int, int]
    weights: np.ndarray  # int64 copy of the filter
    bias: np.ndarray  # int64, zeros when the model has none
    mults: list[int]
    shifts: list[int]
    ops: tuple[int, ...]
    label: str

    @property
    def macs(self) -> int:
        (oh, ow, oc), (kh, kw) = self.out_hwc, self.k_hw
        return oh * ow * oc * kh * kw * (1 if self.depthwise else self.in_hwc[2])

    def step(self, kernel: str, args: tuple, scratch_bytes: int = 0, roomier: Roomier | None = None) -> Step:
        source = "conv_im2col_s8.c" if kernel.startswith("tme_conv_im2col") else "conv_s8.c"
        return Step(kernel, source, self.ops, self.label, (*args, int8_out(self.out.index)), (self.x.index,),
                    self.out.index, macs=self.macs, scratch_bytes=scratch_bytes, roomier=roomier)  # fmt: skip


def _conv(ctx: LowerContext, op: Operator, pool: Operator | None) -> _Conv:
    g = ctx.graph
    x, w, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.tensor(op.outputs[0])
    check_type(op, w, ("INT8",), "weights")
    depthwise = op.opcode == "DEPTHWISE_CONV_2D"
    in_hwc, out_hwc = nhwc(op, x, "input"), nhwc(op, y, "output")
    k_hw = (w.shape[1], w.shape[2])
    stride, dil, pad = conv_geometry(op, in_hwc[:2], k_hw, out_hwc[:2])
    s_in, zp_in = scale_zp(op, x, "input")
    s_out, zp_out = scale_zp(op, y, "output")
    f_scales = filter_scales(op, w, 3 if depthwise else 0, out_hwc[2])
    mults, shifts = qmath.channel_multipliers(s_in, f_scales, s_out, out_hwc[2])
    act = qmath.activation_range_int8(fused_activation(op), s_out, zp_out)
    pool_hw, out = (1, 1), y
    if pool is not None:
        pool_hw = (int(option(pool, "filterHeight")), int(option(pool, "filterWidth")))
        out = g.tensor(pool.outputs[0])
        p_min, p_max = qmath.activation_range_int8(fused_activation(pool), s_out, zp_out)
        act = (max(act[0], p_min), min(act[1], p_max))
    return _Conv(
        op=op, x=x, out=out, depthwise=depthwise, in_hwc=in_hwc, out_hwc=out_hwc, k_hw=k_hw, stride=stride,
        dil=dil, pad=pad, pool_hw=pool_hw, zp_in=zp_in, zp_out=zp_out, act=act,
        weights=w.data.astype(np.int64), bias=bias_values(ctx, op, op.inputs[2] if len(op.inputs) > 2 else -1, out_hwc[2]),
        mults=mults, shifts=shifts, ops=(op.index,) + ((pool.index,) if pool is not None else ()),
        label=op.opcode + ("+MAX_POOL_2D" if pool is not None else ""),
    )  # fmt: skip


def _im2col_ok(cv: _Conv) -> bool:
    return not cv.depthwise and cv.pool_hw == (1, 1) and cv.dil == (1, 1)


def conv_add_fusable(ctx: LowerContext, conv: Operator, add: Operator) -> bool:
    """A residual ADD can run in the epilogue of the dual-MAC conv that produces one of its inputs."""
    if conv.opcode != "CONV_2D" or ctx.graph.tensor(conv.outputs[0]).type_name != "INT8":
        return False
    try:
        add_tables(ctx, add)
        cv = _conv(ctx, conv, None)
        # an encoded conv (export.weights) runs its own kernel, the ADD after it
        return _im2col_ok(cv) and (
            ctx.weights == "dense" or _encoding(ctx, cv, record=False).encoding == "dense"
        )
    except UnsupportedOperatorError:
        return False


def lower_conv(ctx: LowerContext, op: Operator, pool: Operator | None, add: Operator | None = None) -> Step:
    """CONV_2D / DEPTHWISE_CONV_2D, optionally with a fused non-overlapping MAX_POOL_2D or, for the
    dual-MAC path, a fused residual ADD (`conv_add_fusable`)."""
    cv = _conv(ctx, op, pool)
    if add is not None:
        if ctx.weights != "dense":
            _encoding(ctx, cv)  # dense when fused (conv_add_fusable): the table says why
        return _lower_im2col(ctx, cv, add)
    if ctx.weights != "dense" and (step := _lower_encoded(ctx, cv)) is not None:
        return step
    if _c1k3p2_ok(cv):
        return _lower_c1k3p2(ctx, cv)
    if _im2col_ok(cv):
        return _lower_im2col(ctx, cv)
    taps = cv.k_hw[0] * cv.k_hw[1]
    if (
        cv.depthwise
        and cv.out_hwc[2] == cv.in_hwc[2]
        and cv.pool_hw == (1, 1)
        and cv.dil == (1, 1)
        and taps <= 25
    ):
        return _lower_dwconv(ctx, cv)
    return _lower_reference(ctx, cv)


def _c1k3p2_ok(cv: _Conv) -> bool:
    (in_h, in_w, in_c), (out_h, out_w, _) = cv.in_hwc, cv.out_hwc
    return (
        not cv.depthwise
        and cv.pool_hw == (2, 2)
        and in_c == 1
        and cv.k_hw == (3, 3)
        and cv.stride == cv.dil == (1, 1)
        and cv.pad == (0, 0)
        and (out_h, out_w) == (in_h - 2, in_w - 2)
    )


def _encoding(ctx: LowerContext, cv: _Conv, record: bool = True):
    fast = "the dense dual-MAC kernel is faster" if _c1k3p2_ok(cv) or _im2col_ok(cv) else ""
    w = cv.weights.astype(np.int8)
    return ops_conv_enc.choose_conv(ctx, cv.op, w, cv.depthwise, cv.k_hw, fast, record=record)


def _lower_encoded(ctx: LowerContext, cv: _Conv) -> Step | None:
    """CONV_2D on bitmask / clustered weights (ops_conv_enc.py), or None when it stays dense."""
    choice = _encoding(ctx, cv)
    if choice.encoding == "dense":
        return None
    (in_h, in_w, in_c), (out_h, out_w, out_c) = cv.in_hwc, cv.out_hwc
    geometry = {
        "in_h": in_h, "in_w": in_w, "in_c": in_c, "out_h": out_h, "out_w": out_w, "out_c": out_c,
        "k_h": cv.k_hw[0], "k_w": cv.k_hw[1], "stride_h": cv.stride[0], "stride_w": cv.stride[1],
        "dil_h": cv.dil[0], "dil_w": cv.dil[1], "pad_h": cv.pad[0], "pad_w": cv.pad[1],
        "pool_h": cv.pool_hw[0], "pool_w": cv.pool_hw[1],
    }  # fmt: skip
    quant = {"in_offset": -cv.zp_in, "out_offset": cv.zp_out, "act_min": cv.act[0], "act_max": cv.act[1]}
    tail = (
        ctx.const("bias", "int32_t", cv.bias),
        ctx.const("mult", "int32_t", cv.mults),
        ctx.const("shift", "int32_t", cv.shifts),
    )
    return ops_conv_enc.conv_step_s8(ctx, choice, cv.weights, geometry, quant, tail,
                                     (int8_in(cv.x.index), int8_out(cv.out.index)), cv.ops, cv.label, cv.macs)  # fmt: skip


def _lower_c1k3p2(ctx: LowerContext, cv: _Conv) -> Step:
    """1 input channel, 3 x 3, fused 2 x 2 max-pool: 5 int16-pair weight words per channel
    (A0 A1 A2 M01 M2, see conv_s8.c); input offset folded into the bias (no padding taps)."""
    k = cv.weights[:, :, :, 0]
    out_c = k.shape[0]
    wpk: list[int] = []
    for wc in k:
        wpk += pack_int16_pairs(
            [wc[0, 0], wc[1, 0], wc[2, 0], wc[0, 1], wc[2, 1]],
            [wc[0, 2], wc[1, 2], wc[2, 2], wc[1, 1], 0],
        )
    bias = cv.bias + (-cv.zp_in) * k.reshape(out_c, -1).sum(axis=1)
    mode, rq = requant_table(cv.mults, cv.shifts, cv.zp_out, cv.act[0], bias_in_c=bias)
    params = ctx.params(
        "tme_c1k3p2_params_t",
        {
            "in_w": cv.in_hwc[1], "out_c": out_c, "pooled_h": cv.out_hwc[0] // 2, "pooled_w": cv.out_hwc[1] // 2,
            "act_min": cv.act[0], "act_max": cv.act[1], "rq_mode": mode, "out_offset": cv.zp_out,
        },
    )  # fmt: skip
    args = (
        params,
        int8_in(cv.x.index),
        ctx.const("weights", "uint32_t", wpk),
        ctx.const("requant", "tme_rq_t", rq),
    )
    return cv.step("tme_conv_c1k3p2_s8", args)


def _requant_bias_in_c(cv: _Conv, bias: np.ndarray) -> tuple[int, list, np.ndarray]:
    """(mode, requantization table, the kernel's bias array) for the first len(cv.mults) entries
    of `bias` (the rest is padding). TME_RQ_RELU carries the bias in c, so the sums start at 0 and
    the kernel gets zeros (the asm loops of conv_im2col_s8.c and dwconv_s8.c rely on it)."""
    mode, rq = requant_table(cv.mults, cv.shifts, cv.zp_out, cv.act[0], bias_in_c=bias[: len(cv.mults)])
    if mode == RQ_RELU:
        return mode, rq, np.zeros_like(bias)
    mode, rq = requant_table(cv.mults, cv.shifts, cv.zp_out, cv.act[0], bias_in_c=None)
    return mode, rq, bias


WIDE_MAX = 2048  # bytes of scratch for widened weights (MobileNetV1's stem: 448, ResNet-8's: 896)


def _lower_im2col(ctx: LowerContext, cv: _Conv, add: Operator | None = None) -> Step:
    """Dual-MAC path (conv_im2col_s8.c): taps padded with zero weights to a multiple of 8 (of 4 for a
    small layer at ReLU, zero point -128), weights as int8 words interleaved per output channel
    pair, in the kernel's tap order, the input offset folded into the bias."""
    (in_h, in_w, in_c), (out_h, out_w, out_c) = cv.in_hwc, cv.out_hwc
    k_h, n = cv.k_hw[0], cv.k_hw[1] * in_c  # n: the bytes of one filter row
    taps = k_h * n
    bias = cv.bias + (-cv.zp_in) * cv.weights.reshape(out_c, taps).sum(axis=1)
    if np.abs(bias).max(initial=0) > INT32_MAX:
        raise unsupported(cv.op, "with a bias that overflows int32 after folding the input offset")
    mode, rq, bias = _requant_bias_in_c(cv, bias)
    # An odd count of 4-tap groups only where the DSP build has the loop for it (ReLU at zero
    # point -128, not fused), which widens the weights into scratch once per call: for small
    # layers (the RGB stems); else 8-tap multiples.
    pairs = (out_c + 1) // 2
    k4 = (taps + 3) // 4 * 4
    wide = 4 * k4 * pairs  # bytes of the widened weights
    if k4 % 8 and not (mode == RQ_RELU and cv.act == (-128, 127) and add is None and wide <= WIDE_MAX):
        k4 += 4
    if k4 % 8 == 0:
        wide = 0
    words = _im2col_weight_words(cv.weights.reshape(out_c, taps), k_h, n, k4)
    params = ctx.params(
        "tme_conv_im2col_params_t",
        {
            "in_h": in_h, "in_w": in_w, "in_c": in_c, "out_h": out_h, "out_w": out_w, "out_c": out_c,
            "k_h": cv.k_hw[0], "k_w": cv.k_hw[1], "stride_h": cv.stride[0], "stride_w": cv.stride[1],
            "pad_h": cv.pad[0], "pad_w": cv.pad[1], "k4": k4, "wide_pairs": 0, "pad_value": cv.zp_in, "out_offset": cv.zp_out,
            "act_min": cv.act[0], "act_max": cv.act[1], "rq_mode": mode,
        },
    )  # fmt: skip
    args = (
        params,
        int8_in(cv.x.index),
        ctx.const("weights", "uint32_t", words),
        ctx.const("bias", "int32_t", np.concatenate([bias, bias[-1:]]) if out_c % 2 else bias),
        ctx.const("requant", "tme_rq_t", rq),
        ScratchArg(),
    )
    # two int16 patches, then (in_c % 4 != 0) a filter row with its padding, staged as bytes, then
    # the widened weights (with a fused ADD: the pixel pair's conv outputs)
    scratch = 4 * k4 + ((n + 3) // 4 * 4 if in_c % 4 else 0) + wide
    if add is None:
        return cv.step("tme_conv_im2col_s8", args, scratch_bytes=scratch, roomier=_widened(cv, mode, k4))
    pair_outputs = (2 * out_c + 3) // 4 * 4  # the fused ADD's input: the pixel pair's conv outputs
    return _fused_add_step(ctx, cv, add, args, scratch + pair_outputs)


WIDE_MIN_PIXELS = 16  # below, widening costs more than it saves (~1 instruction per weight)
WIDE_MIN_TAPS = 64  # widened channel pairs x k4 below which a split pass costs more than it saves


def _widened(cv: _Conv, mode: int, k4: int) -> Roomier | None:
    """The variant that widens the weights of the first `wide_pairs` channel pairs into scratch
    once per call (11 instructions per 16 MACs instead of 14), as many as the plan leaves idle
    bytes for: for the DSP build's written-out channel loop (ReLU at zero point -128, even
    out_c, whole 8-tap groups)."""
    (out_h, out_w, out_c) = cv.out_hwc
    if mode != RQ_RELU or cv.act != (-128, 127) or out_c % 2 or k4 % 8 or out_h * out_w < WIDE_MIN_PIXELS:
        return None
    pairs = out_c // 2
    least = min(pairs, -(-WIDE_MIN_TAPS // k4))  # all pairs, or enough for the split pass
    return Roomier(
        "tme_conv_im2col_wide_s8", unit_bytes=4 * k4, max_units=pairs, min_units=least, field="wide_pairs"
    )


def _im2col_weight_words(w: np.ndarray, k_h: int, n: int, k4: int) -> np.ndarray:
    """w [out_c][taps] as conv_im2col_s8.c reads it: per output channel pair and per 4 taps the
    words of both channels (an odd last channel paired with itself), zero weights up to k4, in the
    kernel's tap order: each filter row's n // 4 whole words, then the rows' last n % 4 bytes (the
    identity when in_c % 4 == 0)."""
    out_c, taps = w.shape
    pairs = (out_c + 1) // 2
    rows = np.arange(taps).reshape(k_h, n)
    order = np.concatenate([rows[:, : n & ~3].reshape(-1), rows[:, n & ~3 :].reshape(-1)])
    wpad = np.zeros((2 * pairs, k4), dtype=np.int8)
    wpad[:out_c, :taps] = w[:, order]
    wpad[out_c:] = wpad[out_c - 1]
    words = wpad.view("<u4").reshape(pairs, 2, k4 // 4).transpose(0, 2, 1)
    return np.ascontiguousarray(words).reshape(-1)


def _fused_add_step(ctx: LowerContext, cv: _Conv, add: Operator, conv_args: tuple, scratch: int) -> Step:
    """The conv's step with the residual ADD in its epilogue: writes the ADD's output, which may
    overwrite the skip input (not the conv's own input, whose neighbourhood is still read)."""
    at = add_tables(ctx, add)
    slot = list(add.inputs).index(cv.op.outputs[0])
    skip = add.inputs[1 - slot]
    args = (
        *conv_args,
        at.params(ctx, "tme_conv_add_params_t"),
        ctx.const("add_t_conv", "int32_t", at.tables[slot]),
        ctx.const("add_t_skip", "int32_t", at.tables[1 - slot]),
        ctx.const("add_requant", "tme_rq_t", at.rq),
        int8_in(skip),
        int8_out(add.outputs[0]),
    )
    return Step("tme_conv_im2col_add_s8", "conv_im2col_s8.c", (cv.op.index, add.index), "CONV_2D+ADD", args,
                (cv.x.index, skip), add.outputs[0], in_place_input=skip if skip != cv.x.index else None,
                macs=cv.macs, scratch_bytes=scratch)  # fmt: skip


def _lower_dwconv(ctx: LowerContext, cv: _Conv) -> Step:
    """Depthwise, multiplier 1 (kernels/dwconv_s8.c): per 4 channels and 2 taps, int16 weight pairs
    (w[tap], w[tap + 1]) per channel, then for an odd last tap the pairs (c, c + 2), (c + 1, c + 3);
    channels padded to a multiple of 4."""
    (in_h, in_w, ch), (out_h, out_w, _) = cv.in_hwc, cv.out_hwc
    taps = cv.k_hw[0] * cv.k_hw[1]
    pairs, odd, ch4 = taps // 2, taps % 2, (ch + 3) // 4 * 4
    bias = np.zeros(ch4, dtype=np.int64)
    bias[:ch] = cv.bias + (-cv.zp_in) * cv.weights.reshape(taps, ch).sum(axis=0)
    if np.abs(bias).max(initial=0) > INT32_MAX:
        raise unsupported(cv.op, "with a bias that overflows int32 after folding the input offset")
    mode, rq, bias = _requant_bias_in_c(cv, bias)
    w = np.zeros((taps, ch4), dtype=np.int64)
    w[:, :ch] = cv.weights.reshape(taps, ch)
    rq_sh = -1
    if mode == RQ_RELU and cv.k_hw == (3, 3) and ch == ch4 and cv.act == (-128, 127):
        rq, rq_sh = _dw_common_shift(w, rq)
    groups = ch4 // 4
    # [group][tap pair][lane j = channel 4g + j]: (w[2t], w[2t + 1]) of that channel
    lo = w[0 : 2 * pairs : 2].reshape(pairs, groups, 4).transpose(1, 0, 2).reshape(groups, -1)
    hi = w[1 : 2 * pairs : 2].reshape(pairs, groups, 4).transpose(1, 0, 2).reshape(groups, -1)
    if odd:  # [group][(c, c + 2), (c + 1, c + 3)] of the last tap
        last = w[-1].reshape(groups, 4)
        lo, hi = np.concatenate([lo, last[:, :2]], axis=1), np.concatenate([hi, last[:, 2:]], axis=1)
    params = ctx.params(
        "tme_dw_params_t",
        {
            "in_h": in_h, "in_w": in_w, "ch": ch, "out_h": out_h, "out_w": out_w, "k_h": cv.k_hw[0],
            "k_w": cv.k_hw[1], "stride_h": cv.stride[0], "stride_w": cv.stride[1], "pad_h": cv.pad[0],
            "pad_w": cv.pad[1], "tap_pairs": pairs, "odd_tap": odd, "pad_value": cv.zp_in, "out_offset": cv.zp_out,
            "act_min": cv.act[0], "act_max": cv.act[1], "rq_mode": mode, "rq_sh": rq_sh,
        },
    )  # fmt: skip
    words = pack_int16_pairs(lo, hi)
    if cv.k_hw == (3, 3) and ch == ch4:
        words, rq_arg = _dw_rq_after_weights(words, rq, groups), "NULL"
    else:
        rq_arg = ctx.const("requant", "tme_rq_t", rq)
    args = (
        params,
        int8_in(cv.x.index),
        ctx.const("weights", "uint32_t", words),
        ctx.const("bias", "int32_t", bias),
        rq_arg,
        ScratchArg(),
    )
    return Step("tme_dwconv_s8", "dwconv_s8.c", cv.ops, cv.label, (*args, int8_out(cv.out.index)), (cv.x.index,),
                cv.out.index, macs=cv.macs, scratch_bytes=_dw_scratch(cv))  # fmt: skip


def _dw_rq_after_weights(words: tuple, rq: list, groups: int) -> tuple[int, ...]:
    """The weight words with each group's 4 tme_rq_t after its weights (dwconv_s8.c's 3 x 3 runs
    walk both with one pointer); the last shift word + 256 ends the asm's group loop (ASR reads
    only its low byte)."""
    m32 = 0xFFFFFFFF
    rq_words = np.array([(c & m32, c >> 32 & m32, m & m32, sh & m32) for c, m, sh in rq], dtype=np.int64)
    rq_words[-1, 3] = (rq_words[-1, 3] + 256) & m32
    w_words = np.array(words, dtype=np.int64).reshape(groups, -1)
    packed = np.concatenate([w_words, rq_words.reshape(groups, -1)], axis=1)
    return tuple(int(v) for v in packed.reshape(-1))


DW_RQ_SH = 12  # dwconv_s8.c's TME_DW_RQ_SH: the asm's SSAT shift when every channel has it


def _dw_common_shift(w: np.ndarray, rq: list) -> tuple[list, int]:
    """TME_RQ_RELU gives each channel (acc * m + c) >> 32 >> sh; with the channel's weights and c
    times 2^(DW_RQ_SH - sh) the result is the same (the sums scale exactly) at shift DW_RQ_SH for
    all, which the asm folds into SSAT. (rq, DW_RQ_SH) scaling `w` in place, or (rq, -1) when a
    shift is out of reach (int16 weights: at most 2^8) or c would leave int64's headroom."""
    ks = [DW_RQ_SH - sh for _, _, sh in rq]
    if any(not 0 <= k <= 8 or abs(c) << k >= 1 << 61 for (c, _, _), k in zip(rq, ks, strict=True)):
        return rq, -1
    w[:, : len(ks)] <<= np.array(ks, dtype=np.int64)
    return [(c << k, m, DW_RQ_SH) for (c, m, _), k in zip(rq, ks, strict=True)], DW_RQ_SH


def _dw_scratch(cv: _Conv) -> int:
    """dwconv_s8.c's scratch: the pad row (ch bytes), for 3 x 3 on a multiple of 4 channels the pad
    band (tme_dw_band pixels) and the edge window (10 pixels)."""
    ch = cv.in_hwc[2]
    if cv.k_hw != (3, 3) or ch % 4:
        return ch
    return ch * (_dw_band(cv.in_hwc[1], ch) + 10)


def _dw_band(in_w: int, ch: int) -> int:
    """Pixels of the depthwise pad band; dwconv_s8.c's tme_dw_band."""
    return max(3, min(in_w, 512 // ch))


def _lower_reference(ctx: LowerContext, cv: _Conv) -> Step:
    """Depthwise, dilated or pooled convolutions: the reference loop order, requantized literally."""
    (in_h, in_w, in_c), (out_h, out_w, out_c) = cv.in_hwc, cv.out_hwc
    params = ctx.params(
        "tme_conv_params_t",
        {
            "in_h": in_h, "in_w": in_w, "in_c": in_c, "out_h": out_h, "out_w": out_w, "out_c": out_c,
            "k_h": cv.k_hw[0], "k_w": cv.k_hw[1], "stride_h": cv.stride[0], "stride_w": cv.stride[1],
            "dil_h": cv.dil[0], "dil_w": cv.dil[1], "pad_h": cv.pad[0], "pad_w": cv.pad[1],
            "depth_multiplier": out_c // in_c if cv.depthwise else 0,
            "pool_h": cv.pool_hw[0], "pool_w": cv.pool_hw[1],
            "in_offset": -cv.zp_in, "out_offset": cv.zp_out, "act_min": cv.act[0], "act_max": cv.act[1],
        },
    )  # fmt: skip
    args = (
        params,
        int8_in(cv.x.index),
        ctx.const("weights", "int8_t", cv.weights),
        ctx.const("bias", "int32_t", cv.bias),
        ctx.const("mult", "int32_t", cv.mults),
        ctx.const("shift", "int32_t", cv.shifts),
    )
    return cv.step("tme_conv_s8", args)


def conv_pool_fusable(ctx: LowerContext, conv: Operator, pool: Operator) -> bool:
    """Max-pool after conv can take the max of raw accumulators when requantization is monotonic:
    non-negative multipliers and a left shift that cannot overflow int32."""
    g = ctx.graph
    y, p = g.tensor(conv.outputs[0]), g.tensor(pool.outputs[0])
    if y.quantization is None or p.quantization is None:
        return False
    if scale_zp(pool, y, "input") != scale_zp(pool, p, "output"):
        return False
    x, w = g.tensor(conv.inputs[0]), g.tensor(conv.inputs[1])
    s_in, zp_in = scale_zp(conv, x, "input")
    mults, shifts = qmath.channel_multipliers(s_in, w.quantization.scale, scale_zp(conv, y, "output")[0],
                                              y.shape[-1])  # fmt: skip
    taps = np.abs(w.data.astype(np.int64)).reshape(w.shape[0], -1).sum(axis=1).max()
    bound = int(taps) * (128 + abs(zp_in))
    if len(conv.inputs) > 2 and conv.inputs[2] >= 0:
        bound += int(np.abs(g.tensor(conv.inputs[2]).data.astype(np.int64)).max())
    return min(mults) >= 0 and all((bound << max(s, 0)) <= INT32_MAX for s in shifts)
