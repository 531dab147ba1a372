"""The pipeline's firmware stage (generate C, build, measure, log) and the firmware / benchmark
config checks, with a real MLflow store in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.bench_models import tflite_model
from tests.helpers import compose_config, require_commands
from tinyml_exp.config import to_object
from tinyml_exp.errors import ConfigError
from tinyml_exp.hardware.build import parse_size_report
from tinyml_exp.hardware.firmware_stage import FirmwareUnavailableError, build_firmware
from tinyml_exp.hardware.session import flash_command
from tinyml_exp.hardware.settings import firmware_wanted
from tinyml_exp.pipeline import estimate_errors_of
from tinyml_exp.results import StageResult
from tinyml_exp.tracking import Tracker

TOOLCHAIN = require_commands("arm-none-eabi-gcc", "make")


def stage(tmp_path: Path, tflite: bytes, overrides: list[str], profile: dict[str, float] | None = None):
    """Runs the stage and logs its result (or the partial one its error carries) inside an MLflow
    run, as the pipeline does, with the estimate errors against `profile` figures; returns
    (result or exception, run, client)."""
    cfg = compose_config(["target=qemu_netduinoplus2", f"cache.dir={tmp_path}/cache", *overrides])
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    outcome: object
    try:
        with Tracker(uri, "fw", "run") as tracker:
            try:
                outcome = build_firmware(cfg, to_object(cfg.target), tflite, tmp_path / "out", "small")
            except FirmwareUnavailableError as e:
                tracker.log_result(e.partial)
                raise
            tracker.log_result(outcome)
            if profile is not None:
                tracker.log_metrics(estimate_errors_of(StageResult(metrics=profile), outcome))
    except FirmwareUnavailableError as e:
        outcome = e
    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("fw").experiment_id])
    return outcome, run, client


def artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return found


# Issue 16: the whole firmware of the PCQAT course CNN (int8, encoded weights) in 17 kB of flash.
PCQAT_FIRMWARE_LIMIT_BYTES = 17 * 1024


@pytest.fixture(scope="module")
def pcqat_course_cnn() -> bytes:
    """The course CNN int8 with PCQAT's weights (prune 50 %, then 16 shared values), no training:
    the pattern written into random weights as benchmarks/compression_on_device.py does."""
    from benchmarks.compression_on_device import course_cnn

    return course_cnn("pcqat")["int8"]


@pytest.mark.firmware
@TOOLCHAIN
@pytest.mark.parametrize(
    "target, weights",
    [("qemu_netduinoplus2", "smallest"), ("qemu_netduinoplus2", "clustered"), ("b_l475e_iot01a", "smallest")],
)
def test_pcqat_course_cnn_firmware_fits_17_kb(tmp_path: Path, pcqat_course_cnn: bytes, target: str,
                                             weights: str) -> None:  # fmt: skip
    """flash/firmware_bytes as the pipeline logs it (APP=bench, firmware.reference default)."""
    cfg = compose_config([f"target={target}", f"cache.dir={tmp_path}/cache", f"export.weights={weights}"])
    result = build_firmware(cfg, to_object(cfg.target), pcqat_course_cnn, tmp_path / "out", "pcqat")
    flash = result.metrics["flash/firmware_bytes"]
    # PCQAT's FC: 4-bit indices of the non-zeros (the 108-weight conv stays dense)
    assert "FULLY_CONNECTED=sparse_clustered" in result.tags["firmware.encodings"], result.tags
    assert flash <= PCQAT_FIRMWARE_LIMIT_BYTES, (
        f"{target}: {flash:.0f} B (model {result.metrics['flash/firmware_model_bytes']:.0f} B)"
    )


@pytest.mark.slow
@pytest.mark.firmware
@TOOLCHAIN
@pytest.mark.parametrize("kind", ["int8", "float32"])
def test_sizes_come_from_arm_none_eabi_size_and_artifacts_are_logged(tmp_path: Path, kind: str) -> None:
    result, run, client = stage(tmp_path, tflite_model(kind), [], {"flash/estimate_bytes": 10_000.0})
    text, data, bss = parse_size_report((tmp_path / "out/firmware/build/size.txt").read_text())
    m = run.data.metrics
    assert m["flash/firmware_bytes"] == text + data and m["ram/firmware_bytes"] == data + bss
    assert m["ram/c_bytes"] == result.cgen.activation_bytes > 0
    assert m["flash/firmware_model_bytes"] == m["flash/firmware_bytes"] - m["flash/firmware_app_bytes"]
    # the model's weights are in the image: the model part is at least its const data
    assert m["flash/firmware_model_bytes"] >= m["flash/c_weights_bytes"] > 0
    assert m["error/flash_estimate_pct"] == pytest.approx(
        100 * (10_000 / m["flash/firmware_model_bytes"] - 1)
    )
    assert run.data.tags["firmware.board"] == "qemu_netduinoplus2"
    assert run.data.tags["firmware.reference"] == "tflite"
    assert run.data.tags["firmware.weights"] == "dense" and "=dense" in run.data.tags["firmware.encodings"]
    assert (
        m["flash/c_weights_dense_bytes"] == m["flash/c_weights_bytes"] and m["flash/c_weights_ratio"] == 1.0
    )
    assert "firmware_skipped" not in run.data.tags
    assert artifacts(client, run.info.run_id) == {
        "firmware/c/model.c",
        "firmware/c/model.h",
        "firmware/firmware.elf",
        "firmware/size.txt",
    }


@pytest.mark.slow
@pytest.mark.firmware
@TOOLCHAIN
def test_export_weights_encodes_the_layers_that_have_the_pattern(tmp_path: Path) -> None:
    import numpy as np

    from tests.test_cgen_encodings import _fc, clustered_weights

    model = _fc(clustered_weights(np.random.default_rng(0), 10, 64, False))
    _, run, _ = stage(tmp_path, model, ["export.weights=smallest", "firmware.measure_app=false"])
    m = run.data.metrics
    assert run.data.tags["firmware.weights"] == "smallest"
    assert run.data.tags["firmware.encodings"] == "op0_FULLY_CONNECTED=clustered"
    assert m["flash/c_weights_bytes"] < m["flash/c_weights_dense_bytes"]
    assert m["flash/c_weights_ratio"] == pytest.approx(
        m["flash/c_weights_bytes"] / m["flash/c_weights_dense_bytes"]
    )


@pytest.mark.firmware
@TOOLCHAIN
def test_unsupported_operator_skips_with_a_tag_unless_the_benchmark_needs_it(tmp_path: Path) -> None:
    tflite = tflite_model("tanh")
    result, run, _ = stage(tmp_path / "a", tflite, [])
    assert result.build is None and "TANH" in result.skipped
    assert run.info.status == "FINISHED"
    assert run.data.tags["firmware_skipped"].startswith("C generator: TANH (op ")

    error, run, _ = stage(tmp_path / "b", tflite, ["benchmark.enabled=true"])
    assert isinstance(error, FirmwareUnavailableError) and run.info.status == "FAILED"
    assert str(error).startswith(
        "benchmark.enabled=true needs the firmware, which cannot be built: C generator: TANH"
    )


@pytest.mark.firmware
@TOOLCHAIN
def test_missing_toolchain_names_the_debian_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result, run, _ = stage(tmp_path / "a", tflite_model("int8"), [])
    expected = (
        "needs make, arm-none-eabi-gcc, arm-none-eabi-objcopy, arm-none-eabi-size, newlib-nano: install the "
        "Debian package(s) binutils-arm-none-eabi gcc-arm-none-eabi libnewlib-arm-none-eabi make"
    )
    assert result.skipped == expected and run.data.tags["firmware_skipped"] == expected
    error, _, _ = stage(tmp_path / "b", tflite_model("int8"), ["firmware.enabled=true"])
    assert str(error) == f"firmware.enabled=true needs the firmware, which cannot be built: {expected}"


@pytest.mark.firmware
@TOOLCHAIN
@pytest.mark.parametrize(
    ("head", "reason"),
    [
        ("mean", "RAM overflow"),  # 64 × 64 × 16 float activations = 256 KB > 128 KB of RAM
        ("none", "protocol v2 carries at most 65535 payload bytes: the model output is too large"),
    ],
)
def test_a_model_too_big_for_the_board_is_a_skip(tmp_path: Path, head: str, reason: str) -> None:
    import tf_keras as keras

    from tinyml_exp.export.tflite import TFLiteRecipe, convert

    inputs = keras.Input((64, 64, 1))
    x = keras.layers.Conv2D(16, 3, padding="same")(inputs)
    if head == "mean":
        x = keras.layers.GlobalAveragePooling2D()(x)
    result, run, _ = stage(tmp_path, convert(keras.Model(inputs, x), TFLiteRecipe("none")), [])
    assert result.build is None
    assert result.skipped.startswith("does not fit board 'qemu_netduinoplus2': ")
    assert reason in run.data.tags["firmware_skipped"]


def test_per_target_defaults_and_when_firmware_is_built() -> None:
    l475 = compose_config(["target=b_l475e_iot01a"])
    assert (l475.benchmark.port, l475.benchmark.baudrate) == ("/dev/ttyACM0", 115200)
    assert l475.benchmark.flash == "st-flash --reset write {bin} 0x08000000"
    qemu = compose_config(["target=qemu_netduinoplus2", "benchmark.port=socket://127.0.0.1:4321"])
    assert (qemu.benchmark.port, qemu.benchmark.flash) == ("socket://127.0.0.1:4321", None)
    assert firmware_wanted(l475.firmware, to_object(l475.target))
    host = compose_config(["target=host"])
    assert not firmware_wanted(host.firmware, to_object(host.target))
    off = compose_config(["target=qemu_netduinoplus2", "firmware.enabled=false"])
    assert not firmware_wanted(off.firmware, to_object(off.target))


def test_flash_command_template(tmp_path: Path) -> None:
    from tinyml_exp.hardware.build import FirmwareBuild

    build = FirmwareBuild(
        "b_l475e_iot01a", tmp_path, tmp_path / "my fw.elf", tmp_path / "my fw.bin", tmp_path, 1, 0, 0, ""
    )
    command = flash_command("st-flash --reset write {bin} 0x08000000", build, "/dev/ttyACM0")
    assert command == ["st-flash", "--reset", "write", str(tmp_path / "my fw.bin"), "0x08000000"]
    with pytest.raises(
        ConfigError, match=r"benchmark.flash='flash \{image\}' is not a valid command template"
    ):
        flash_command("flash {image}", build, None)
