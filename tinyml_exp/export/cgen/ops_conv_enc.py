"""CONV_2D on encoded weights (export.weights != dense): bitmask sparse or clustered filters, one row
of taps (OHWI order) per output channel, for int8 and float32 (kernels/conv_enc_s8.c,
kernels/conv_enc_f32.c). Each returns None when the layer stays dense; the choice and its reason
go into the encoding table either way."""

from __future__ import annotations

import numpy as np

from tinyml_exp.export.cgen import encodings
from tinyml_exp.export.cgen.ops_common import LowerContext
from tinyml_exp.export.cgen.program import Params, ScratchArg, Step, TensorArg
from tinyml_exp.tflite_graph import Operator

_GEOMETRY = ("in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "k_h", "k_w", "stride_h", "stride_w",
             "dil_h", "dil_w", "pad_h", "pad_w", "pool_h", "pool_w")  # fmt: skip


def scratch_bytes(taps: int, value_bytes: int) -> int:
    """The per-channel tap list: int32 offsets, uint16 (ky, kx) padded to a word, the weights."""
    return 4 * taps + 4 * ((taps + 1) // 2) + (value_bytes * taps + 3) // 4 * 4


# Cost model of the float kernels (course CNN, Cortex-M4 under QEMU): the dense conv ~4 instructions
# per MAC, the encoded one ~5.6 per listed (non-zero) tap, so it is no slower up to ~70 % non-zero.
F32_DENSE_PER_MAC, F32_ENCODED_PER_TAP = 4.0, 5.6


def float_conv_slower(w: np.ndarray) -> str:
    """Why the dense float conv is faster than an encoded one for these weights, or ""."""
    nonzero = np.count_nonzero(w) / w.size
    if nonzero * F32_ENCODED_PER_TAP <= F32_DENSE_PER_MAC:
        return ""
    return f"the dense float kernel is faster at {nonzero:.0%} non-zero (cost model: <= 70 %)"


def choose_conv(ctx: LowerContext, op: Operator, w: np.ndarray, depthwise: bool, k_hw: tuple[int, int],
                slower_than_dense: str = "", record: bool = True) -> encodings.Choice:  # fmt: skip
    """The layer's encoding (recorded). `slower_than_dense`: why the dense kernel is faster, which
    keeps `auto` dense (the encoded kernels are scalar; auto must be no slower than dense).
    `record=False`: only asks (the encoding table gets the layer when it is lowered)."""
    if depthwise:
        choice = encodings.Choice("dense", "DEPTHWISE_CONV_2D has no encoded kernel")
    elif max(k_hw) > 255:
        choice = encodings.Choice("dense", f"a {k_hw[0]} x {k_hw[1]} filter (encoded kernels: <= 255)")
    else:
        choice = encodings.choose(w.reshape(w.shape[0], -1), ctx.weights, 0, m_n=False)
        if choice.encoding != "dense" and ctx.weights == "auto" and slower_than_dense:
            choice = encodings.Choice(
                "dense", f"{choice.encoding} would fit ({choice.reason}) but {slower_than_dense}"
            )
        elif choice.encoding != "dense" and slower_than_dense:
            choice = encodings.Choice(choice.encoding, f"{choice.reason}; slower: {slower_than_dense}")
    if record:
        ctx.record(op, choice.encoding, choice.reason)
    return choice


def encoded_arrays(ctx: LowerContext, encoding: str, w2: np.ndarray, ctype: str) -> tuple[str, tuple]:
    """(kernel suffix, the weight arrays of the call) for bitmask or clustered [out_c, taps] weights."""
    if encoding == "clustered":
        stride, _ = encodings.clustered_layout(w2)
        idx, codebook = encodings.pack_clustered(w2, stride)
        return "clustered", (ctx.const("widx", "uint8_t", idx), ctx.const("codebook", ctype, codebook))
    if encoding == "sparse_clustered":
        idx, masks, codebook = encodings.pack_sparse_clustered(w2, encodings.sparse_clustered_layout(w2))
        arrays = (ctx.const("widx", "uint8_t", idx), ctx.const("wmask", "uint32_t", masks))
        return "sparse_clustered", (*arrays, ctx.const("codebook", ctype, codebook))
    vals, masks = encodings.pack_bitmask(w2)
    return "bitmask", (ctx.const("wvals", ctype, vals), ctx.const("wmask", "uint32_t", masks))


def geometry_fields(geometry: dict[str, int], w2: np.ndarray, encoding: str) -> dict[str, int]:
    """The geometry fields of tme_conv_enc(_f32)_params_t; cb_stride 0 or 16 (clustered only)."""
    if encoding == "sparse_clustered":
        stride = encodings.sparse_clustered_layout(w2)
    else:
        stride = encodings.clustered_layout(w2)[0] if encoding == "clustered" else 0
    return {**{k: geometry[k] for k in _GEOMETRY}, "taps": w2.shape[1], "cb_stride": stride}


def conv_step_f32(ctx: LowerContext, op: Operator, choice: encodings.Choice, w: np.ndarray, params: Params,
                  args: tuple, ops: tuple[int, ...], label: str, macs: int) -> Step:  # fmt: skip
    """`params`: the dense tme_conv_f32 record (its fields reused); `args`: (params, in, weights, bias, out)."""
    w2 = w.reshape(w.shape[0], -1).astype(np.float32)
    fields = dict(params.fields)
    kind, arrays = encoded_arrays(ctx, choice.encoding, w2, "float")
    enc = ctx.params("tme_conv_enc_f32_params_t", {**geometry_fields(fields, w2, choice.encoding), "act_min": fields["act_min"],
                                                   "act_max": fields["act_max"]})  # fmt: skip
    _, x, _, bias, out = args
    return Step(f"tme_conv_{kind}_f32", "conv_enc_f32.c", ops, label, (enc, x, *arrays, bias, ScratchArg(), out),
                (x.tensor,), out.tensor, macs=macs, scratch_bytes=scratch_bytes(w2.shape[1], 4))  # fmt: skip


def conv_step_s8(ctx: LowerContext, choice: encodings.Choice, w: np.ndarray, geometry: dict[str, int],
                 quant: dict[str, int], tail: tuple, io: tuple[TensorArg, TensorArg], ops: tuple[int, ...],
                 label: str, macs: int) -> Step:  # fmt: skip
    """`quant`: in_offset, out_offset, act_min, act_max; `tail`: (bias, mult, shift) arrays."""
    w2 = w.reshape(w.shape[0], -1).astype(np.int8)
    kind, arrays = encoded_arrays(ctx, choice.encoding, w2, "int8_t")
    params = ctx.params("tme_conv_enc_params_t", {**geometry_fields(geometry, w2, choice.encoding), **quant})
    x, out = io
    return Step(f"tme_conv_{kind}_s8", "conv_enc_s8.c", ops, label, (params, x, *arrays, *tail, ScratchArg(), out),
                (x.tensor,), out.tensor, macs=macs, scratch_bytes=scratch_bytes(w2.shape[1], 1))  # fmt: skip
