"""The int8 kernel paths of the C generator on tiny random layers (tests/cgen_layers.py), compiled for
the host (portable C: the DSP paths' integer twins), bit-exact with TFLite's reference kernels
(BUILTIN_REF) and TFLite Micro on 1,000 random inputs each: odd channel counts, SAME padding,
stride 2, zero points != 0, per-channel scales, fused activations."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from tests.cgen_layers import RELU, RELU6, SAME, VALID, Int8Builder
from tests.helpers import require_commands
from tests.test_cgen import compile_host, random_inputs, run_host, run_tflite_ref, run_tflm
from tinyml_exp.export.cgen import generate_c

N_INPUTS = 1000

pytestmark = require_commands("gcc")


def _conv_model(seed: int, hwc, out_c, k, stride, padding, act) -> bytes:
    b = Int8Builder(np.random.default_rng(seed))
    x = b.activation((1, *hwc))
    y = b.conv(x, out_c, k, stride, padding, act)
    return b.finish([x], [y])


def _check(model: bytes, tmp_path: Path, kernel: str | tuple[str, ...], seed: int = 0) -> None:
    x = random_inputs(model, N_INPUTS, seed=seed)
    expected = {"tflite": run_tflite_ref(model, x), "tflm": run_tflm(model, x)}
    built: dict[str, object] = {}  # model.c text -> library: the references differ only in FC
    for reference, want in expected.items():
        res = generate_c(model, tmp_path / reference, "layer", reference=reference)
        assert any(k.startswith(kernel) for k in res.kernels), res.kernels
        text = res.model_c.read_text()
        if text not in built:
            built[text] = compile_host(tmp_path / reference)
        got = run_host(built[text], x, want.shape[1:], want.dtype)
        bad = int((got != want).sum())
        assert bad == 0, f"{res.kernels} ({reference}): {bad} of {want.size} values differ"


CONV_CASES = {
    # (input H, W, C), out_c, kernel, stride, padding, activation
    "3x3_c16_same_relu": ((6, 7, 16), 6, (3, 3), 1, SAME, RELU),
    "3x3_c3_odd_out": ((7, 5, 3), 5, (3, 3), 1, SAME, 0),
    "3x3_c8_stride2": ((9, 8, 8), 7, (3, 3), 2, SAME, RELU6),
    "3x3_c5_stride2_valid": ((9, 9, 5), 4, (3, 3), 2, VALID, RELU),
    "1x1_c12_stride2": ((7, 7, 12), 9, (1, 1), 2, SAME, 0),
    "1x1_c4": ((5, 3, 4), 3, (1, 1), 1, VALID, RELU),
    "5x2_c1": ((10, 6, 1), 3, (5, 2), 1, SAME, 0),
    "one_channel_out": ((5, 5, 8), 1, (3, 3), 1, SAME, 0),
}


@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv_im2col_is_bit_exact(case: str, tmp_path: Path) -> None:
    _check(_conv_model(len(case), *CONV_CASES[case]), tmp_path, "tme_conv_im2col_s8")


def _dw_model(seed: int, hwc, k, stride, padding, act, out_scale=None) -> bytes:
    b = Int8Builder(np.random.default_rng(seed))
    x = b.activation((1, *hwc))
    return b.finish([x], [b.conv(x, hwc[2], k, stride, padding, act, depthwise=True, out_scale=out_scale)])


DW_CASES = {
    # (input H, W, C), kernel, stride, padding, activation
    "3x3_c8_same_relu": ((6, 5, 8), (3, 3), 1, SAME, RELU),
    "3x3_c7_stride2": ((9, 8, 7), (3, 3), 2, SAME, RELU6),
    "3x3_c2_valid": ((5, 6, 2), (3, 3), 1, VALID, 0),
    "5x5_c12_same": ((7, 7, 12), (5, 5), 1, SAME, 0),
    "2x2_c5_stride2": ((6, 6, 5), (2, 2), 2, VALID, RELU),
    "3x3_c16_stride2_same": ((7, 8, 16), (3, 3), 2, SAME, 0),  # inside windows at fixed offsets
    "3x3_c8_left_shift": ((5, 6, 8), (3, 3), 1, SAME, 0, 2e-5),  # scale > 1: the reference form
}


@pytest.mark.parametrize("case", sorted(DW_CASES))
def test_depthwise_is_bit_exact(case: str, tmp_path: Path) -> None:
    _check(_dw_model(len(case), *DW_CASES[case]), tmp_path, "tme_dwconv_s8")


def _differ_from_tflm_on_qemu(model: bytes, xs: np.ndarray, tmp_path: Path, name: str) -> int:
    """Output values of the C generated in tmp_path / name, built for the Cortex-M4 and run under
    QEMU, that differ from TFLite Micro's."""
    from tinyml_exp.export.cgen import qemu

    run = qemu.measure(tmp_path / name, xs, tmp_path / f"{name}_elf")
    got = run.outputs.view(np.int8).reshape(len(xs), -1)
    return int((got != run_tflm(model, xs).reshape(len(xs), -1)).sum())


# (input H, W, C), stride, padding: 3 x 3, ReLU at output zero point -128 (TME_RQ_RELU, one SSAT)
DW_ASM_CASES = {
    "c32_same": ((6, 6, 32), 1, SAME),  # inside runs, pad rows, edge rows gathered
    "c8_stride2_odd": ((7, 8, 8), 2, SAME),
    "c8_stride2_even": ((8, 8, 8), 2, SAME),  # bottom / right padding only
    "c16_3x3": ((3, 3, 16), 1, SAME),  # one inside window
    "c4_valid": ((5, 6, 4), 1, VALID),
    "c12_same": ((5, 4, 12), 1, SAME),
    "c64_band_chunks": ((4, 12, 64), 1, SAME),  # pad band of 8 pixels: pad-row runs of 6
    "c64_band_stride2": ((5, 13, 64), 2, SAME),  # runs of 3 over the band, left and right edges
    "c4_long_band": ((3, 20, 4), 1, SAME),  # one run over the whole pad row
    "c8_one_column": ((5, 1, 8), 1, SAME),  # 1 pixel wide: both edge columns in one window
    "c8_two_columns": ((4, 2, 8), 1, SAME),
    "c8_one_row": ((1, 6, 8), 1, SAME),  # rows above and below on the band
    "c8_stride2_one_column": ((3, 2, 8), 2, SAME),  # right edge only, 1 pixel wide output
    # output scales: channel shifts past TME_DW_RQ_SH (the ASR form), and down to 8 below it
    # (weights scaled by up to 2^8)
    "c16_asr_shift": ((5, 6, 16), 1, SAME, 100.0),
    "c8_scaled_weights": ((4, 5, 8), 2, SAME, 0.008),
}


@pytest.mark.firmware
@require_commands("arm-none-eabi-gcc", "make", "qemu-system-arm")
def test_depthwise_asm_path_is_bit_exact_on_the_cortex_m4(tmp_path: Path) -> None:
    """The DSP build's written-out 3 x 3 pixel runs (kernels/dwconv_s8.c, TME_RQ_RELU at zero point
    -128: the bias rides in the requantization constant) against TFLite Micro under QEMU."""
    for i, (name, (hwc, stride, padding, *scale)) in enumerate(sorted(DW_ASM_CASES.items())):
        b = Int8Builder(np.random.default_rng(100 + i))
        x = b.activation((1, *hwc))
        out_scale = scale[0] if scale else None
        y = b.conv(x, hwc[2], (3, 3), stride, padding, RELU, depthwise=True, out_zp=-128, out_scale=out_scale)
        model = b.finish([x], [y])
        xs = random_inputs(model, 50, seed=i)
        res = generate_c(model, tmp_path / name, "layer")
        assert ".act_min = -128, .act_max = 127, .rq_mode = 1, .rq_sh = " in res.model_c.read_text(), name
        bad = _differ_from_tflm_on_qemu(model, xs, tmp_path, name)
        assert bad == 0, f"{name}: {bad} values differ from TFLM"


# (input H, W, C), stride, activation, output zero point, output scale: 3 x 3 windows whose
# requantization is not ReLU at -128 (the DSP build's written-out group, C requantization)
DW_GROUP_CASES = {
    "signed": ((6, 7, 16), 1, 0, None, None),
    "relu6_stride2": ((7, 6, 8), 2, RELU6, None, None),
    "relu_zp5": ((5, 5, 8), 1, RELU, 5, None),
    "reference_left_shift": ((5, 6, 8), 1, 0, None, 2e-5),
}


@pytest.mark.firmware
@require_commands("arm-none-eabi-gcc", "make", "qemu-system-arm")
def test_depthwise_group_path_is_bit_exact_on_the_cortex_m4(tmp_path: Path) -> None:
    """kernels/dwconv_s8.c's tme_dw3x3_group asm with the other requantization forms, reading each
    group's tme_rq_t after its weights, against TFLite Micro under QEMU."""
    for i, (name, (hwc, stride, act, out_zp, out_scale)) in enumerate(sorted(DW_GROUP_CASES.items())):
        b = Int8Builder(np.random.default_rng(300 + i))
        x = b.activation((1, *hwc))
        y = b.conv(x, hwc[2], (3, 3), stride, SAME, act, depthwise=True, out_zp=out_zp, out_scale=out_scale)
        model = b.finish([x], [y])
        xs = random_inputs(model, 30, seed=i)
        res = generate_c(model, tmp_path / name, "layer")
        assert ".rq_sh = -1}" in res.model_c.read_text(), name
        bad = _differ_from_tflm_on_qemu(model, xs, tmp_path, name)
        assert bad == 0, f"{name}: {bad} values differ from TFLM"


# (input H, W, C), out_c, kernel, stride, padding: ReLU at output zero point -128 (TME_RQ_RELU, one
# SSAT), even out_c: the written-out channel loop (an odd last pixel takes the C path)
CONV_ASM_CASES = {
    "stem_c3_stride2": ((9, 8, 3), 8, (3, 3), 2, SAME),  # 27 taps: k4 = 28, 7 groups (odd)
    "stem_c3_same": ((8, 7, 3), 16, (3, 3), 1, SAME),  # padding on all four sides
    # the stem's inside pairs (straight-line) next to edge ones; odd out_w: pairs across rows
    "stem_c3_stride2_odd_w": ((11, 13, 3), 8, (3, 3), 2, SAME),
    "stem_c3_valid_odd_w": ((7, 9, 3), 8, (3, 3), 1, VALID),
    "c3_valid_odd_pixels": ((7, 7, 3), 4, (3, 3), 2, VALID),  # the last pixel: 7 groups in C
    "c3_odd_out": ((6, 5, 3), 5, (3, 3), 1, SAME),  # odd out_c: every pixel's 7 groups in C
    "c2_5x5": ((9, 8, 2), 4, (5, 5), 2, SAME),  # rows of 10 bytes: 2-byte tails, 13 groups
    "pw_c4_odd_pixels": ((5, 5, 4), 6, (1, 1), 1, VALID),  # k4 = 4: one group, both loops
    "pw_c8": ((5, 5, 8), 16, (1, 1), 1, VALID),  # k4 = 8: the dot loop's first pass only
    "pw_c16": ((4, 6, 16), 32, (1, 1), 1, SAME),  # k4 = 8, 16: the one-pass channel loop
    "pw_c16_stride2": ((7, 6, 16), 2, (1, 1), 2, SAME),  # ... one channel pair, gathered
    "1x2_c4_odd_pixels": ((5, 5, 4), 4, (1, 2), 1, SAME),  # k4 = 8, gathered, the last pixel in C
    "pw_c8_3_pairs": ((7, 9, 8), 6, (1, 1), 1, VALID),  # an odd count of channel pairs (3)
    "pw_c12_stride2": ((7, 7, 12), 2, (1, 1), 2, SAME),  # k4 = 12: 3 groups
    "3x3_c16_same": ((5, 6, 16), 6, (3, 3), 1, SAME),  # k4 = 144: the loop's later passes
}


@pytest.mark.firmware
@require_commands("arm-none-eabi-gcc", "make", "qemu-system-arm")
def test_conv_asm_path_is_bit_exact_on_the_cortex_m4(tmp_path: Path) -> None:
    """The DSP build's written-out channel loop (kernels/conv_im2col_s8.c, TME_RQ_RELU at zero point
    -128: the bias rides in the requantization constant) against TFLite Micro under QEMU."""
    for i, (name, (hwc, out_c, k, stride, padding)) in enumerate(sorted(CONV_ASM_CASES.items())):
        b = Int8Builder(np.random.default_rng(200 + i))
        x = b.activation((1, *hwc))
        model = b.finish([x], [b.conv(x, out_c, k, stride, padding, RELU, out_zp=-128)])
        xs = random_inputs(model, 50, seed=i)
        res = generate_c(model, tmp_path / name, "layer")
        assert res.kernels[0].startswith("tme_conv_im2col_s8"), res.kernels
        assert ".act_min = -128, .act_max = 127, .rq_mode = 1}" in res.model_c.read_text(), name
        bad = _differ_from_tflm_on_qemu(model, xs, tmp_path, name)
        assert bad == 0, f"{name}: {bad} values differ from TFLM"


# (input H, W, C), out_c, stride, output zero point: 3 x 3 SAME convs without activation
# (TME_RQ_SIGNED) on the asm group loop (k4 = 9 x C, a multiple of 8, >= 24), even out_c
SIGNED_ASM_CASES = {
    "c8_stride2_odd_pixels": ((9, 9, 8), 6, 2, 3),  # k4 = 72; 5 x 5 pixels: the last one in C
    "c16": ((6, 5, 16), 16, 1, -20),  # k4 = 144, as ResNet-8's second convs
    "c8_zp_high": ((5, 6, 8), 2, 1, 90),  # one channel pair; many outputs clamp at 127
}


@pytest.mark.firmware
@require_commands("arm-none-eabi-gcc", "make", "qemu-system-arm")
def test_signed_conv_asm_path_is_bit_exact_on_the_cortex_m4(tmp_path: Path) -> None:
    """The group loop with the bias added and the negative sums' rounding term (TME_PAIR_RQS), alone
    and with a fused residual ADD, against TFLite Micro under QEMU."""
    for i, (name, (hwc, out_c, stride, out_zp)) in enumerate(sorted(SIGNED_ASM_CASES.items())):
        b = Int8Builder(np.random.default_rng(400 + i))
        x = b.activation((1, *hwc))
        model = b.finish([x], [b.conv(x, out_c, (3, 3), stride, SAME, 0, out_zp=out_zp)])
        res = generate_c(model, tmp_path / name, "layer")
        assert ".act_min = -128, .act_max = 127, .rq_mode = 2}" in res.model_c.read_text(), name
        bad = _differ_from_tflm_on_qemu(model, random_inputs(model, 50, seed=i), tmp_path, name)
        assert bad == 0, f"{name}: {bad} values differ from TFLM"
    model = _residual_model(9, (5, 6, 8), RELU, 0, 1)  # conv (no activation) + ADD, fused
    res = generate_c(model, tmp_path / "add", "layer")
    assert res.kernels[0].startswith("tme_conv_im2col_add_s8"), res.kernels
    bad = _differ_from_tflm_on_qemu(model, random_inputs(model, 50, seed=9), tmp_path, "add")
    assert bad == 0, f"fused ADD: {bad} values differ from TFLM"


def _wide_chain(seed: int) -> bytes:
    """A wide 1 x 1 conv sets the peak; behind a stride-2 conv, 1 x 1 convs of 8, 16, 24, 64 and 64
    input channels (k4 = 8, 16: the one-pass loops; 24, 64: the group loop) on 7 x 7 pixels (an odd
    last pixel) find their widened weights' bytes idle, the second 64-channel one for 18 of its 32
    channel pairs (the rest from the int8 weights)."""
    b = Int8Builder(np.random.default_rng(seed))
    x = b.activation((1, 14, 14, 8))
    y = b.conv(x, 48, (1, 1), 1, VALID, RELU, out_zp=-128)
    y = b.conv(y, 8, (3, 3), 2, SAME, RELU, out_zp=-128)
    for out_c in (16, 24, 64, 64, 8):
        y = b.conv(y, out_c, (1, 1), 1, VALID, RELU, out_zp=-128)
    return b.finish([x], [y])


@pytest.mark.firmware
@require_commands("arm-none-eabi-gcc", "make", "qemu-system-arm")
def test_widened_weights_path_is_bit_exact_on_the_cortex_m4(tmp_path: Path) -> None:
    """tme_conv_im2col_wide_s8 (weights widened into scratch the plan leaves idle, for all channel
    pairs or some) against TFLite Micro under QEMU; choosing it does not grow the plan."""
    from tinyml_exp.export.cgen import build_program
    from tinyml_exp.export.cgen.planner import find_conflicts

    model = _wide_chain(7)
    res = generate_c(model, tmp_path / "wide", "layer")
    assert [k.split(" <- ")[0] for k in res.kernels[2:]] == ["tme_conv_im2col_wide_s8"] * 5, res.kernels
    program, graph, _ = build_program(model)
    assert find_conflicts(program.requests, program.plan) == []
    wide = [
        dict(a.fields)["wide_pairs"] for step in program.steps[2:] for a in step.args if hasattr(a, "fields")
    ]
    assert wide == [8, 12, 32, 18, 4], wide
    program.lowered = [dataclasses.replace(step, roomier=None) for step in program.lowered]
    assert program.plan_buffers(graph=graph).total_bytes == res.activation_bytes
    bad = _differ_from_tflm_on_qemu(model, random_inputs(model, 50, seed=7), tmp_path, "wide")
    assert bad == 0, f"{bad} values differ from TFLM"


def _avg_model(seed: int, hwc, f, stride, padding) -> bytes:
    b = Int8Builder(np.random.default_rng(seed))
    x = b.activation((1, *hwc))
    return b.finish([x], [b.avg_pool(x, f, stride, padding)])


AVG_CASES = {
    # (input H, W, C), window, stride, padding
    "global_25x5_c12": ((25, 5, 12), (25, 5), 1, VALID),  # DS-CNN's pooling, fewer channels
    "3x3_same_c7": ((7, 6, 7), 3, 2, SAME),
    "2x2_c4": ((6, 4, 4), 2, 2, VALID),
    "16x16_c5": ((16, 16, 5), 16, 16, VALID),  # 256 taps: the largest 16-bit lane sum
}


@pytest.mark.parametrize("case", sorted(AVG_CASES))
def test_average_pool_is_bit_exact(case: str, tmp_path: Path) -> None:
    _check(_avg_model(len(case), *AVG_CASES[case]), tmp_path, "tme_avgpool_s8")


def _fc_model(seed: int, in_n: int, out_n: int, act: int) -> bytes:
    b = Int8Builder(np.random.default_rng(seed))
    x = b.activation((1, in_n))
    return b.finish([x], [b.fully_connected(x, out_n, act)])


FC_CASES = {
    # in_n, out_n (rows per pass: 5, 4, 6, ... the first that divides out_n), activation
    "rows5": (32, 20, RELU),
    "rows4": (48, 8, 0),
    "rows6": (16, 18, RELU6),
    "rows1": (8, 7, 0),
    "unpacked": (15, 4, RELU),  # in_n % 4 != 0: the reference-order kernel
    # >= 4 passes, in_n % 8 == 0: the input is widened once (tme_fc_wide_s8; in TFLite's double
    # rounding tme_fc_wide_double_s8)
    "wide4": (24, 16, 0),
    "wide5_relu6": (16, 40, RELU6),
}
FC_WIDE = ("rows5", "wide4", "wide5_relu6")


@pytest.mark.parametrize("case", sorted(FC_CASES))
def test_fully_connected_is_bit_exact(case: str, tmp_path: Path) -> None:
    model = _fc_model(len(case), *FC_CASES[case])
    kernel = (
        "tme_fc_s8" if case == "unpacked" else ("tme_fc_packed_s8", "tme_fc_wide_s8", "tme_fc_wide_double_s8")
    )
    _check(model, tmp_path, kernel)
    for reference, wide in (("tflm", "tme_fc_wide_s8 "), ("tflite", "tme_fc_wide_double_s8 ")):
        kernels = generate_c(model, tmp_path / reference, "layer", reference=reference).kernels
        assert kernels[0].startswith(wide if case in FC_WIDE else kernel), (reference, kernels)


@pytest.mark.slow
@pytest.mark.firmware
@require_commands("arm-none-eabi-gcc", "make", "qemu-system-arm")
def test_dsp_paths_are_bit_exact_on_the_cortex_m4(tmp_path: Path) -> None:
    """The same layers built for Cortex-M4 (SXTB16, SMLAD, the inline-assembly loops) under QEMU."""
    from tinyml_exp.export.cgen import qemu

    for case, model in _all_models().items():
        x = random_inputs(model, 20, seed=5)
        generate_c(model, tmp_path / case, case)
        run = qemu.measure(tmp_path / case, x, tmp_path / f"{case}_elf")
        want = run_tflm(model, x).reshape(len(x), -1)
        bad = int((run.outputs.view(np.int8).reshape(len(x), -1) != want).sum())
        assert bad == 0, f"{case}: the Cortex-M4 build differs from TFLM in {bad} values"
        if case.startswith("fc_"):  # FC rounds in double under reference="tflite"
            generate_c(model, tmp_path / f"{case}_tflite", case, reference="tflite")
            run = qemu.measure(tmp_path / f"{case}_tflite", x, tmp_path / f"{case}_tflite_elf")
            want = run_tflite_ref(model, x).reshape(len(x), -1)
            bad = int((run.outputs.view(np.int8).reshape(len(x), -1) != want).sum())
            assert bad == 0, f"{case}: the Cortex-M4 build differs from TFLite's reference in {bad} values"


def _all_models() -> dict[str, bytes]:
    convs = {f"conv_{c}": _conv_model(len(c), *CONV_CASES[c]) for c in CONV_CASES}
    adds = {f"add_{c}": _residual_model(len(c), *ADD_CASES[c]) for c in ADD_CASES}
    dws = {f"dw_{c}": _dw_model(len(c), *DW_CASES[c]) for c in DW_CASES}
    avgs = {f"avg_{c}": _avg_model(len(c), *AVG_CASES[c]) for c in AVG_CASES}
    return convs | adds | dws | avgs | {f"fc_{c}": _fc_model(len(c), *FC_CASES[c]) for c in FC_CASES}


def _residual_model(seed: int, hwc, act: int, relu_conv: int, convs: int) -> bytes:
    """x -> conv 3x3 (x convs) -> ADD(conv, x), the residual ADD of ResNet-8 on a small map; with
    convs = 0 the ADD cannot be fused: y = conv(x), out = ADD(ADD(y, x), y)."""
    b = Int8Builder(np.random.default_rng(seed))
    x = b.activation((1, *hwc))
    y = x
    for _ in range(max(convs, 1)):
        y = b.conv(y, hwc[2], (3, 3), 1, SAME, relu_conv)
    out = b.add(y, x, act) if convs else b.add(b.add(y, x, act), y)
    return b.finish([x], [out])


ADD_CASES = {
    # (H, W, C), ADD activation, conv activation, convs before the ADD
    "fused_relu": ((5, 6, 8), RELU, 0, 1),
    "fused_in_place": ((4, 3, 5), 0, RELU, 2),
    "fused_relu6": ((3, 3, 3), RELU6, 0, 2),
    "table": ((4, 5, 6), RELU, 0, 0),
}


@pytest.mark.parametrize("case", sorted(ADD_CASES))
def test_residual_add_is_bit_exact(case: str, tmp_path: Path) -> None:
    kernel = "tme_add_table_s8" if case == "table" else "tme_conv_im2col_add_s8"
    _check(_residual_model(len(case), *ADD_CASES[case]), tmp_path, kernel)
