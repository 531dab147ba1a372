"""Quantization arithmetic computed at generation time, exactly as TFLite computes it at Prepare.

Each function names the TFLite routine it reproduces. Python floats are IEEE doubles, so
`float(a) * float(b) / float(c)` matches the C++ `static_cast<double>` expressions term by term;
float32 steps (activation ranges) go through numpy float32 on purpose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# TFLite ActivationFunctionType codes (schema.fbs)
ACT_NONE, ACT_RELU, ACT_RELU_N1_TO_1, ACT_RELU6 = 0, 1, 2, 3
ACTIVATION_NAMES = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
INT8_MIN, INT8_MAX = -128, 127


def round_half_away(x: float) -> int:
    """`TfLiteRound` / `std::round`: ties away from zero (Python's round() ties to even)."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """`QuantizeMultiplier`: real ≈ m · 2^(shift − 31), m in [2^30, 2^31) (0 for tiny values)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = round_half_away(q * (1 << 31))
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def activation_range_int8(activation: int, scale: float, zero_point: int) -> tuple[int, int]:
    """`CalculateActivationRangeQuantized` for int8 (quantize(f) = zp + round(f / scale) in float32)."""

    def quantize(f: float) -> int:
        return zero_point + round_half_away(float(np.float32(f) / np.float32(scale)))

    if activation == ACT_NONE:
        return INT8_MIN, INT8_MAX
    if activation == ACT_RELU:
        return max(INT8_MIN, quantize(0.0)), INT8_MAX
    if activation == ACT_RELU6:
        return max(INT8_MIN, quantize(0.0)), min(INT8_MAX, quantize(6.0))
    if activation == ACT_RELU_N1_TO_1:
        return max(INT8_MIN, quantize(-1.0)), min(INT8_MAX, quantize(1.0))
    raise ValueError(f"fused activation {ACTIVATION_NAMES.get(activation, activation)}")


def activation_range_float(activation: int) -> tuple[float, float]:
    """`CalculateActivationRange` for float32."""
    big = float(np.finfo(np.float32).max)
    ranges = {
        ACT_NONE: (-big, big),
        ACT_RELU: (0.0, big),
        ACT_RELU6: (0.0, 6.0),
        ACT_RELU_N1_TO_1: (-1.0, 1.0),
    }
    if activation not in ranges:
        raise ValueError(f"fused activation {ACTIVATION_NAMES.get(activation, activation)}")
    return ranges[activation]


def channel_multipliers(
    input_scale: float, filter_scales: np.ndarray, output_scale: float, channels: int
) -> tuple[list[int], list[int]]:
    """`PopulateConvolutionQuantizationParams`: per output channel (per-tensor scale repeated)."""
    scales = np.broadcast_to(np.asarray(filter_scales, dtype=np.float32).reshape(-1), (channels,))
    mults, shifts = [], []
    for s in scales:
        m, sh = quantize_multiplier(float(input_scale) * float(s) / float(output_scale))
        mults.append(m)
        shifts.append(sh)
    return mults, shifts


def channel_scales_double(
    input_scale: float, filter_scales: np.ndarray, output_scale: float, channels: int
) -> list[float]:
    """Effective scales of TFLite's reference FullyConnected (requantization in double)."""
    scales = np.broadcast_to(np.asarray(filter_scales, dtype=np.float32).reshape(-1), (channels,))
    return [float(input_scale) * float(s) / float(output_scale) for s in scales]


def same_padding(in_size: int, filter_size: int, stride: int, dilation: int, out_size: int) -> int:
    """`ComputePaddingWithOffset`: the leading (top / left) padding; the odd pixel goes to the end."""
    effective = (filter_size - 1) * dilation + 1
    total = max((out_size - 1) * stride + effective - in_size, 0)
    return total // 2


@dataclass(frozen=True)
class AddParams:
    left_shift: int
    in1_mult: int
    in1_shift: int
    in2_mult: int
    in2_shift: int
    out_mult: int
    out_shift: int


def add_params(scale1: float, scale2: float, out_scale: float) -> AddParams:
    """TFLite int8 ADD Prepare (left shift 20, inputs scaled to twice the larger input scale)."""
    left_shift = 20
    twice_max = 2.0 * float(max(np.float32(scale1), np.float32(scale2)))
    in1 = quantize_multiplier(float(scale1) / twice_max)
    in2 = quantize_multiplier(float(scale2) / twice_max)
    out = quantize_multiplier(twice_max / float(np.float32((1 << left_shift) * np.float32(out_scale))))
    for _, shift in (in1, in2, out):
        if shift > 0:
            raise ValueError("ADD rescale multiplier >= 1 (output scale too small for the inputs)")
    return AddParams(left_shift, in1[0], in1[1], in2[0], in2[1], out[0], out[1])


def srdhm(a: int, b: int) -> int:
    """`SaturatingRoundingDoublingHighMul` on int32 values (floor form, see kernels/common.h)."""
    if a == b == -(1 << 31):
        return (1 << 31) - 1
    return (a * b + (1 << 30)) >> 31


def rdbpot(x: int, exponent: int) -> int:
    """`RoundingDivideByPOT`: x / 2^exponent rounded half away from zero."""
    mask = (1 << exponent) - 1
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if (x & mask) > threshold else 0)


def add_input_table(offset: int, left_shift: int, mult: int, shift: int) -> list[int]:
    """The rescaled ADD input term for every int8 x (-128..127), as reference_integer_ops::Add
    computes it: MultiplyByQuantizedMultiplierSmallerThanOneExp((x + offset) << left_shift)."""
    if shift > 0:
        raise ValueError("ADD input multiplier >= 1")
    return [rdbpot(srdhm((x + offset) * (1 << left_shift), mult), -shift) for x in range(-128, 128)]


@dataclass(frozen=True)
class SoftmaxParams:
    mult: int
    left_shift: int
    diff_min: int


def softmax_params(beta: float, input_scale: float) -> SoftmaxParams:
    """`PreprocessSoftmaxScaling` + `CalculateInputRadius` with 5 integer bits (int8 softmax)."""
    integer_bits = 5
    real = min(float(beta) * float(input_scale) * float(1 << (31 - integer_bits)), float((1 << 31) - 1))
    mult, left_shift = quantize_multiplier(real)
    if left_shift < 0:
        raise ValueError("softmax input scale too small for the fixed-point exp")
    radius = ((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << left_shift)
    return SoftmaxParams(mult, left_shift, -math.floor(radius))


def mean_rescale_params(input_scale: float, output_scale: float, count: int) -> tuple[int, int]:
    """Multiplier of `QuantizedMeanOrSum` (mean): QuantizeMultiplier(s_in / s_out) with 1/n folded in
    by shifting the multiplier left by floor(log2 n) (clamped) and dividing by n, as the reference."""
    mult, shift = quantize_multiplier(float(input_scale) / float(output_scale))
    extra = min(count.bit_length() - 1, 32, 31 + shift)
    mult = (mult << extra) // count  # integer division of non-negative values = C++ truncation
    return mult, shift - extra
