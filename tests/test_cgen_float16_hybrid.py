"""The C generator on float16 (`ptq_float16`) and dynamic-range (`ptq_dynamic`) models.

Tiny tf_keras models, converted by the project's own converter call, run through the generated C
compiled for the host and compared with the TFLite interpreter's reference kernels (BUILTIN_REF)
on 1,000 inputs each: float16 weights are folded into constants (float16 in flash for the dense
layer, `tme_fc_f16w_f32`; float32 for the conv); the dynamic-range dense layers run
`tme_fc_hybrid`, which quantizes the input per inference exactly as TFLite does.
The slow test runs both on the emulated Cortex-M4 (DSP path) on a few inputs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import randomize_statistics, require_commands
from tests.test_cgen import compile_host, run_host, run_tflite_ref
from tinyml_exp.export.cgen import generate_c

log = logging.getLogger(__name__)

N_INPUTS = 1000


def _float16_model(keras):
    layers = keras.layers
    return keras.Sequential(
        [
            layers.InputLayer((12, 12, 2), batch_size=1),
            layers.Conv2D(7, 3, activation="relu"),  # 5 x 5 x 7 = 175 inputs to the dense layer: odd
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(5),
        ]
    )


def _dynamic_model(keras):
    """Three dense layers: 150 -> 40 (hybrid, rows padded to whole words) -> 30 (hybrid, passes
    of 5 rows) -> 7 (210 weights: the converter leaves it float32)."""
    layers = keras.layers
    return keras.Sequential(
        [
            layers.InputLayer((150,), batch_size=1),
            layers.Dense(40, activation="relu"),
            layers.Dense(30, activation="relu6"),
            layers.Dense(7),
        ]
    )


@pytest.fixture(scope="module")
def converted() -> dict[str, bytes]:
    import tf_keras as keras

    from tinyml_exp.export.tflite import TFLiteRecipe, convert

    rng = np.random.default_rng(3)
    out = {}
    for name, build, mode in (
        ("float16", _float16_model, "float16"),
        ("dynamic", _dynamic_model, "dynamic"),
    ):
        keras.utils.set_random_seed(3)
        model = build(keras)
        randomize_statistics(model, rng, keras, biases=True)
        out[name] = convert(model, TFLiteRecipe(mode))
    return out


def _symmetric(tflite: bytes) -> bytes:
    """The same model with `asymmetric_quantize_inputs` off: TFLite's symmetric input path."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    model = s.ModelT.InitFromObj(s.Model.GetRootAsModel(tflite, 0))
    for op in model.subgraphs[0].operators:
        if isinstance(op.builtinOptions, s.FullyConnectedOptionsT):
            op.builtinOptions.asymmetricQuantizeInputs = False
    builder = flatbuffers.Builder(len(tflite) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _inputs(shape: tuple[int, ...], n: int, seed: int) -> np.ndarray:
    """Signed values (asymmetric zero points anywhere), every 100th sample all zero (the empty
    range), every 7th non-negative (zero point -128)."""
    x = np.random.default_rng(seed).normal(0.0, 1.0, (n, *shape)).astype(np.float32)
    x[::7] = np.abs(x[::7])
    x[::100] = 0.0
    return x


def _compare(tflite: bytes, x: np.ndarray, out_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    want = run_tflite_ref(tflite, x)
    res = generate_c(tflite, out_dir, "m")
    got = run_host(compile_host(out_dir), x, want.shape[1:], np.float32)
    log.info("%s: %d of %d outputs bit-equal to TFLite", res.kernels, int((got == want).sum()), want.size)
    return got, want


def _assert_close(got: np.ndarray, want: np.ndarray) -> None:
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))


def test_float16_weights_become_float32_constants_and_match_tflite(converted, tmp_path: Path) -> None:
    model = converted["float16"]
    res = generate_c(model, tmp_path / "gen", "m")
    assert res.operators.count("DEQUANTIZE") == 4  # of the conv's and the dense layer's weights and biases
    assert res.kernels == ["tme_conv_f32 <- CONV_2D+MAX_POOL_2D", "tme_fc_f16w_f32 <- FULLY_CONNECTED"]
    # conv weights and both biases as float32, the dense weights as float16, plus parameter records
    weights = 4 * (7 * 3 * 3 * 2 + 7 + 5) + 2 * 5 * 175
    assert weights <= res.weights_bytes <= weights + 256
    got, want = _compare(model, _inputs((12, 12, 2), N_INPUTS, 1), tmp_path / "run")
    _assert_close(got, want)


@pytest.mark.parametrize("weights", ["auto", "smallest", "clustered", "sparse"])
def test_an_encoding_mode_keeps_float16_weights_it_cannot_beat(
    converted, weights: str, tmp_path: Path
) -> None:
    """Unpatterned float16 weights: no encoding is smaller than the halves, so every mode keeps
    them as export.weights=dense does (expanding them to float32 doubled the seed study's flash)."""
    dense = generate_c(converted["float16"], tmp_path / "dense", "m")
    encoded = generate_c(converted["float16"], tmp_path / weights, "m", weights=weights)
    assert encoded.kernels == dense.kernels
    assert encoded.weights_bytes == dense.weights_bytes


@pytest.mark.parametrize("variant", ["asymmetric", "symmetric"])
def test_dynamic_range_dense_layers_match_tflite(converted, variant: str, tmp_path: Path) -> None:
    model = converted["dynamic"] if variant == "asymmetric" else _symmetric(converted["dynamic"])
    res = generate_c(model, tmp_path / "gen", "m")
    assert res.kernels == [
        "tme_fc_hybrid <- FULLY_CONNECTED",
        "tme_fc_hybrid <- FULLY_CONNECTED",
        "tme_fc_f32 <- FULLY_CONNECTED",
    ]
    got, want = _compare(model, _inputs((150,), N_INPUTS, 2), tmp_path / "run")
    _assert_close(got, want)
    # the same operations in the same order as TFLite: bit-equal here (all of them when measured);
    # one quantized input off by one would move its sample's outputs by ~1e-3 of their range
    assert (got == want).mean() >= 0.99


def test_the_cost_model_prices_both_kernels_from_their_measured_counts(converted) -> None:
    from tests.test_profile import target
    from tinyml_exp.profile import profile_model
    from tinyml_exp.profile.cgen_costs import MEASURED_ONCE

    # dense layers 150 -> 40 -> 30 (hybrid) -> 7 (float32, priced by the prior constants)
    dynamic = profile_model(converted["dynamic"], target("qemu_netduinoplus2"), arena=False)
    assert dynamic.tags["cost_model.cgen"].endswith("2 of 3 operators by their kernel's coefficients, "
                                                    "0 by their operator's, 1 by the prior")  # fmt: skip
    half = profile_model(converted["float16"], target("qemu_netduinoplus2"), arena=False)
    # conv + fused max-pool (2 operators, the prior) and the dense layer (its measured entry)
    assert "1 of 3 operators by their kernel's coefficients" in half.tags["cost_model.cgen"]
    assert (
        MEASURED_ONCE[("float32", "tme_fc_f16w_f32")]["macs"]
        > MEASURED_ONCE[("float32", "tme_fc_hybrid")]["macs"]
    )


@pytest.mark.slow
@pytest.mark.firmware
@require_commands("arm-none-eabi-gcc", "make", "qemu-system-arm")
def test_cortex_m4_runs_both_as_tflite_does(converted, tmp_path: Path) -> None:
    from tinyml_exp.export.cgen import qemu

    for name, shape in (("float16", (12, 12, 2)), ("dynamic", (150,))):
        model = converted[name]
        x = _inputs(shape, 8, 4)
        generate_c(model, tmp_path / name, name)
        run = qemu.measure(tmp_path / name, x, tmp_path / f"{name}_elf")
        got = run.outputs.view(np.float32).reshape(len(x), -1)
        want = run_tflite_ref(model, x).reshape(len(x), -1)
        _assert_close(got, want)
        log.info("%s: %d instructions per inference", name, int(np.median(run.instructions)))
