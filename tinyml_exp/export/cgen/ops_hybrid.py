"""Lowering of dynamic-range ("hybrid") operators: float32 activations, symmetric int8 weights.

TFLite's hybrid FULLY_CONNECTED (EvalHybridDense and tensor_utils) quantizes the input on the fly
per inference (asymmetric: scale and zero point from the input's [min(0, x), max(0, x)] range,
computed in double; symmetric: scale = max|x| / 127), does int8 x int8 -> int32, subtracts
zero point x row sum, and returns bias + acc * (input scale * weight scale) in float. The kernel
(kernels/fc_hybrid.c) does the same operations in the same order, so outputs match to the float
rounding of TFLite's build (tests/test_cgen_float16_hybrid.py).
"""

from __future__ import annotations

import numpy as np

from tinyml_exp.export.cgen import qmath
from tinyml_exp.export.cgen.ops_common import (
    LowerContext,
    check_type,
    fc_shapes,
    fused_activation,
    option,
    unsupported,
)
from tinyml_exp.export.cgen.program import ScratchArg, Step, TensorArg
from tinyml_exp.tflite_graph import Operator


def _group(out_n: int) -> int:
    """Output rows per pass over the input (the packed layout of kernels/fc_s8.c)."""
    return next(gs for gs in (5, 4, 6, 3, 2, 1) if out_n % gs == 0)


def lower_fc(ctx: LowerContext, op: Operator) -> Step:
    x, w, y, out_n, in_n = fc_shapes(ctx, op, weight_types=("INT8",))
    check_type(op, x, ("FLOAT32",), "input")
    q = w.quantization
    if w.data is None or q is None:
        raise unsupported(op, "with non-constant or unquantized int8 weights")
    if np.any(q.zero_point != 0) or (q.per_channel and (q.axis != 0 or q.scale.size != out_n)):
        raise unsupported(op, "with asymmetric or input-axis int8 weights")
    w_scale = np.broadcast_to(q.scale.astype(np.float32), (out_n,))
    wq = w.data.astype(np.int64).reshape(out_n, in_n)
    # rows padded to whole words with zero weights (the kernel zero-fills the padded input too)
    in_pad = (in_n + 3) // 4 * 4
    wp = np.zeros((out_n, in_pad), dtype=np.int64)
    wp[:, :in_n] = wq
    group = _group(out_n)
    words = wp.astype(np.int8).reshape(out_n // group, group, in_pad // 4, 4).transpose(0, 2, 1, 3)
    wpk = np.ascontiguousarray(words).view("<u4").reshape(-1)
    asymmetric = bool(option(op, "asymmetricQuantizeInputs", False))
    lo, hi = qmath.activation_range_float(fused_activation(op))
    params = ctx.params(
        "tme_fc_hybrid_params_t",
        {"in_n": in_n, "in_pad": in_pad, "out_n": out_n, "group": group, "asymmetric": int(asymmetric),
         "act_min": lo, "act_max": hi},
    )  # fmt: skip
    b = ctx.tensor(op.inputs[2] if len(op.inputs) > 2 else -1)
    if b is not None:
        check_type(op, b, ("FLOAT32",), "bias")
        if b.data is None:
            raise unsupported(op, "with a non-constant bias")
    args = (
        params,
        TensorArg(x.index, "float"),
        ctx.const("weights", "uint32_t", wpk),
        ctx.const("row_sums", "int32_t", wq.sum(axis=1)) if asymmetric else "NULL",
        ctx.const("w_scale", "float", w_scale),
        ctx.const("bias", "float", b.data.astype(np.float32)) if b is not None else "NULL",
        ScratchArg(),
        TensorArg(y.index, "float", writable=True),
    )
    return Step("tme_fc_hybrid", "fc_hybrid.c", (op.index,), op.opcode, args, (x.index,), y.index,
                macs=in_n * out_n, scratch_bytes=in_pad)  # fmt: skip
