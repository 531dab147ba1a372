"""Profiler figures on models whose answers are known by hand: MACs, formula, operators, costs, verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import CONFIG_DIR, compose_config
from tests.profile_models import cnn_model, course_cnn_tflite, depthwise_model, fc_model, unsupported_model
from tinyml_exp.config import to_object
from tinyml_exp.profile import check_operators, estimate_errors, profile_model
from tinyml_exp.profile.calibration import BUILTIN_POINTS, COURSE_CNN_INT8, fit_scales, prior_cycles
from tinyml_exp.profile.costmodel import CORES, WorkItem, backend_available, layer_cycles
from tinyml_exp.profile.layers import analyze_layers, formula_peak
from tinyml_exp.profile.operators import tflm_operators
from tinyml_exp.profile.verdict import decide
from tinyml_exp.tflite_graph import read_graph

TARGETS = sorted(p.stem for p in (Path(CONFIG_DIR) / "target").glob("*.yaml"))


def target(name: str = "b_l475e_iot01a", *overrides: str):
    return to_object(compose_config([f"target={name}", *overrides]).target)


@pytest.fixture(scope="module")
def course_cnn() -> dict[str, bytes]:
    return course_cnn_tflite(representative_samples=20)


def test_macs_params_and_formula_of_a_dense_layer() -> None:
    [layer] = analyze_layers(read_graph(fc_model(inputs=8, units=4)))
    assert (layer.macs, layer.params, layer.params_bytes) == (8 * 4, 8 * 4 + 4, 36 * 4)
    assert layer.formula_bytes == 8 * 4 + 4 * 4 + 36 * 4  # in + out + params, float32


def test_macs_window_ops_and_formula_of_a_small_cnn() -> None:
    layers = analyze_layers(read_graph(cnn_model(size=6, in_c=2, filters=3, units=5)))
    assert [layer.op for layer in layers] == [
        "CONV_2D",
        "MAX_POOL_2D",
        "RESHAPE",
        "FULLY_CONNECTED",
        "SOFTMAX",
    ]
    assert [layer.macs for layer in layers] == [4 * 4 * 3 * (3 * 3 * 2), 0, 0, 12 * 5, 0]
    assert layers[1].window_ops == 2 * 2 * 3 * 4  # a 2×2 pool compares 4 values per output
    assert layers[2].params == 0  # RESHAPE's shape operand is metadata, not a parameter
    assert layers[4].elements == 5
    peak, at = formula_peak(layers)
    # conv: input 6·6·2 + output 4·4·3 + weights 3·3·3·2 + bias 3, all float32
    assert (peak, at.op) == ((72 + 48 + 54 + 3) * 4, "CONV_2D")


def test_depthwise_macs() -> None:
    [layer] = analyze_layers(read_graph(depthwise_model(size=5, channels=4)))
    assert layer.macs == 3 * 3 * 4 * 9 and layer.mac_class == "depthwise"


def test_course_cnn_figures(course_cnn: dict[str, bytes]) -> None:
    """The issue's figures: 93,288 MACs (conv 26·26·12·9 + dense 2,028·10; pooling and bias adds
    are not MACs); formula 22,358 B int8 (int8 weights, int32 bias) and 89,312 B float."""
    for dtype, formula in (("int8", 22_358), ("float32", 89_312)):
        result = profile_model(course_cnn[dtype], target(), arena=False)
        assert result.metrics["macs/total"] == 26 * 26 * 12 * 9 + 2_028 * 10 == 93_288
        assert result.metrics["ram/formula_bytes"] == formula
        assert result.metrics["params/tflite_total"] == 20_410
        assert result.tags["ram.formula_layer"].startswith("FULLY_CONNECTED")


def test_operator_check_names_each_backend() -> None:
    assert {"CONV_2D", "FULLY_CONNECTED", "SOFTMAX"} <= tflm_operators()
    ok = check_operators(read_graph(cnn_model()))
    assert ok.tags()["ops.list"] == "CONV_2D v1, MAX_POOL_2D v1, RESHAPE v1, FULLY_CONNECTED v1, SOFTMAX v1"
    assert all(ok.supported(b) for b in ("tflm_reference", "tflm_cmsis_nn", "cgen"))
    bad = check_operators(read_graph(unsupported_model())).tags()
    assert bad["ops.tflm_reference_supported"] == "false"
    assert bad["ops.tflm_reference_unsupported"] == "HASHTABLE_LOOKUP"
    assert bad["ops.cgen_supported"] == "false"


def test_unsupported_operator_is_a_verdict_not_an_exception() -> None:
    result = profile_model(unsupported_model(), target(), backend="tflm_reference", arena_probe=False)
    assert result.tags["fits_target"] == "false"
    assert "HASHTABLE_LOOKUP" in result.tags["fits_target.reason"]
    assert "Didn't find op" in result.tags["arena.error"]  # TFLM's own message, from the child


def test_cost_model_orders_backends_and_cores() -> None:
    conv = WorkItem("CONV_2D", "int8", "conv", 1_000_000)
    m4 = {"core": "cortex-m4", "fpu": True, "dsp": True}
    reference = layer_cycles(conv, "tflm_reference", **m4)
    cmsis = layer_cycles(conv, "tflm_cmsis_nn", **m4)
    assert 20 < reference / cmsis < 50  # 182 vs 5.4 cycles/MAC in the published pair of measurements
    assert layer_cycles(conv, "tflm_cmsis_nn", "cortex-m7", True, True) < cmsis
    float_conv = WorkItem("CONV_2D", "float32", "conv", 1000)
    soft = layer_cycles(float_conv, "cgen", "cortex-m0plus", fpu=False, dsp=False)
    assert soft > 10 * layer_cycles(float_conv, "cgen", "cortex-m4", fpu=True, dsp=True)
    # CMSIS-NN has no float kernels: TFLM falls back to the reference kernel
    assert layer_cycles(float_conv, "tflm_cmsis_nn", **m4) == layer_cycles(float_conv, "tflm_reference", **m4)
    assert not backend_available("tflm_cmsis_nn", "xtensa-lx7")


def test_calibration_scales_to_the_measured_point() -> None:
    [course] = BUILTIN_POINTS
    prior = prior_cycles(course, "cortex-m4", True, True)
    assert 0.7 < course.measured / prior < 1.3  # the prior comes from an independent measurement
    scales = fit_scales(BUILTIN_POINTS, "b_l475e_iot01a", "cortex-m4", True, True)
    assert scales[("tflm_reference", "int8")].factor == pytest.approx(course.measured / prior)
    assert fit_scales(BUILTIN_POINTS, "pico_rp2040", "cortex-m0plus", False, False) == {}


def test_course_estimate_per_backend(course_cnn: dict[str, bytes]) -> None:
    board = target()
    calibrated = profile_model(course_cnn["int8"], board, backend="tflm_reference", arena=False)
    assert calibrated.metrics["cycles/estimate"] == pytest.approx(14e6)
    assert calibrated.metrics["latency/estimate_ms"] == pytest.approx(175.0)
    assert calibrated.tags["cost_model.tflm_reference"].startswith("calibrated")
    # the built-in point is the course document's rounded figure, not a measurement of ours
    assert "from 1 point(s): published, approximate:" in calibrated.tags["cost_model.tflm_reference"]
    prior = profile_model(course_cnn["int8"], board, backend="tflm_reference", arena=False, calibrate=False)
    assert prior.metrics["cycles/estimate"] == pytest.approx(
        calibrated.metrics["cycles/prior_tflm_reference"]
    )
    assert prior.metrics["cycles/estimate_cgen"] < prior.metrics["cycles/estimate_tflm_cmsis_nn"] < 1e6
    # energy = power × latency where the board has a power figure
    assert prior.metrics["energy/estimate_uj"] == pytest.approx(
        board.active_power_mw * prior.metrics["latency/estimate_ms"]
    )
    assert sum(w.macs for w in COURSE_CNN_INT8) == 93_288


def test_qemu_target_estimates_instructions() -> None:
    cycles = profile_model(cnn_model(), target("nucleo_l4r5zi"), arena=False).metrics
    qemu = profile_model(cnn_model(), target("qemu_netduinoplus2"), arena=False)
    assert qemu.tags["cycles_unit"] == "instructions"
    ratio = cycles["cycles/estimate"] / qemu.metrics["cycles/estimate"]
    assert ratio == pytest.approx(CORES["cortex-m4"].cpi)


def test_verdict_reasons_say_what_and_by_how_much() -> None:
    board = target("b_l475e_iot01a")
    small = decide(board, "cgen", ram_need_bytes=board.available_ram_bytes + 100, flash_need_bytes=1000)
    assert not small.fits and "RAM" in small.reason and "short by 100 B" in small.reason
    assert small.tags() == {"fits_target": "false", "fits_target.reason": small.reason}
    block = decide(target("nucleo_h743zi2"), "cgen", ram_need_bytes=600_000, flash_need_bytes=1000)
    assert not block.fits and "contiguous" in block.reason
    flash = decide(board, "cgen", ram_need_bytes=10, flash_need_bytes=board.available_flash_bytes + 1)
    assert (
        not flash.fits
        and flash.reason.startswith("flash")
        and flash.metrics()["fit/flash_margin_bytes"] == -1
    )
    assert decide(board, "cgen", 10, 10).fits


def test_fits_verdict_on_a_too_small_target() -> None:
    tiny = target("pico_rp2040", "target.ram_bytes=4096", "target.reserved_ram_bytes=2048")
    result = profile_model(cnn_model(), tiny, backend="tflm_reference")
    arena_need = result.metrics["ram/tflm_arena_min_bytes"]
    assert arena_need > 2048
    assert result.tags["fits_target"] == "false"
    assert f"needs {int(arena_need):,} B, 2,048 B available" in result.tags["fits_target.reason"]
    assert result.metrics["fit/ram_margin_bytes"] == 2048 - arena_need
    no_flash = target("b_l475e_iot01a", "target.flash_bytes=70000")
    flash_result = profile_model(cnn_model(), no_flash, arena=False)
    assert flash_result.tags["fits_target"] == "true"  # cgen: a few KB of weights and code
    fat = target("b_l475e_iot01a", "target.flash_bytes=66000")
    assert "flash" in profile_model(cnn_model(), fat, arena=False).tags["fits_target.reason"]


def test_estimate_errors_need_a_measured_counterpart() -> None:
    assert estimate_errors({"cycles/estimate": 110.0}) == {}
    errors = estimate_errors(
        {
            "cycles/estimate": 110.0,
            "cycles/median": 100.0,
            "flash/estimate_bytes": 900.0,
            "flash/firmware_bytes": 1_600.0,
            "flash/firmware_app_bytes": 600.0,
        }
    )
    assert errors == {
        "error/cycles_estimate_pct": pytest.approx(10.0),
        "error/flash_estimate_pct": pytest.approx(-10.0),
    }


@pytest.mark.parametrize("name", TARGETS)
def test_every_target_composes_with_sources_and_a_cost_model(name: str) -> None:
    board = target(name)
    assert board.name == name and board.source and board.power_source
    assert board.core in CORES and board.count_unit in ("cycles", "instructions")
    assert (
        0 <= board.reserved_ram_bytes < board.ram_bytes
        and 0 <= board.reserved_flash_bytes < board.flash_bytes
    )
    assert board.largest_ram_block_bytes is None or board.largest_ram_block_bytes <= board.ram_bytes
    assert board.fpu or not board.fpu_double


def test_catalogue_has_the_boards_tinyml_users_use() -> None:
    assert len(set(TARGETS) - {"host", "b_l475e_iot01a", "qemu_netduinoplus2"}) >= 6
    assert compose_config().target.name == "b_l475e_iot01a"


def test_measured_points_round_trip_and_calibrate_the_next_profile(tmp_path: Path) -> None:
    from tinyml_exp.profile.calibration import load_points, save_points
    from tinyml_exp.profile.profiler import calibration_point

    qemu = target("qemu_netduinoplus2")
    first = profile_model(cnn_model(), qemu, arena=False)
    measured = 0.8 * first.metrics["cycles/estimate"]  # as if the firmware counted 20 % fewer instructions
    save_points([calibration_point(first, measured, "test measurement")], tmp_path / "points.yaml")
    points = load_points(tmp_path / "points.yaml")
    again = profile_model(cnn_model(), qemu, arena=False, calibration=points)
    assert again.metrics["cycles/estimate"] == pytest.approx(measured)
    assert again.tags["cost_model.cgen"] == "calibrated ×0.800 from 1 point(s): test measurement"
    other = profile_model(depthwise_model(), qemu, arena=False, calibration=points)
    assert other.metrics["cycles/estimate"] == pytest.approx(0.8 * other.metrics["cycles/prior_cgen"])


def test_estimate_errors_for_a_named_backend() -> None:
    metrics = {"cycles/estimate": 500.0, "cycles/estimate_cgen": 90.0, "cycles/median": 100.0}
    assert estimate_errors(metrics, backend="cgen") == {"error/cycles_estimate_pct": pytest.approx(-10.0)}
    assert estimate_errors(metrics)["error/cycles_estimate_pct"] == pytest.approx(400.0)
