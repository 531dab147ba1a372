"""Per-layer counts on the device (issue 14): the generated C times every kernel call when built
with -DTME_PROFILE_LAYERS, the LAYERS command (PROTOCOL.md §4.6) returns them, and the benchmark
logs them per layer."""

from __future__ import annotations

import csv
import struct
from pathlib import Path

import pytest

from tests.bench_models import QEMU_BOARD, quantized_inputs, small_model, workdir
from tests.helpers import require_commands
from tests.test_protocol_client import FakePort, fixture_device
from tinyml_exp.hardware import protocol
from tinyml_exp.hardware.client import DeviceClient, DeviceError, DeviceErrorReply
from tinyml_exp.hardware.protocol import Command, DeviceFrame, ErrorCode, ErrorReply, Frame, ProtocolError

QEMU_TOOLS = require_commands("arm-none-eabi-gcc", "make", "qemu-system-arm")


def test_layers_reply_round_trips_little_endian_and_is_strict() -> None:
    payload = protocol.encode_layers_reply([1, 0x01020304, 0xFFFFFFFF])
    assert payload == bytes.fromhex("0100000004030201ffffffff")
    assert protocol.parse_layers_reply(payload) == [1, 0x01020304, 0xFFFFFFFF]
    assert protocol.parse_layers_reply(payload, 3) == [1, 0x01020304, 0xFFFFFFFF]
    assert protocol.parse_layers_reply(b"") == []
    with pytest.raises(ProtocolError, match="not a whole number of u32"):
        protocol.parse_layers_reply(payload[:-1])
    with pytest.raises(ProtocolError, match="has 3 counts, the model has 2 layers"):
        protocol.parse_layers_reply(payload, 2)
    with pytest.raises(ProtocolError, match="u32"):
        protocol.encode_layers_reply([-1])
    assert protocol.encode_frame(Command.LAYERS, 9).hex()[:10] == "a502040900"


def _profiling_device(frame: Frame) -> bytes:
    if frame.cmd == Command.LAYERS:
        if frame.payload:
            error = ErrorReply(ErrorCode.BAD_LENGTH, frame.cmd, 0)
            return protocol.encode_frame(DeviceFrame.ERROR, frame.seq, protocol.encode_error(error))
        return protocol.encode_frame(0x84, frame.seq, struct.pack("<2I", 4000, 242))
    return fixture_device(frame)


def test_client_asks_for_the_layers_and_names_the_fix_when_the_firmware_has_none() -> None:
    client = DeviceClient(FakePort(_profiling_device))  # type: ignore[arg-type]
    assert client.layers(2) == [4000, 242]
    with pytest.raises(ProtocolError, match="the model has 5 layers"):
        client.layers(5)
    with pytest.raises(DeviceErrorReply, match="BAD_LENGTH"):
        client.request(Command.LAYERS, b"x")
    plain = DeviceClient(FakePort(fixture_device))  # type: ignore[arg-type]
    with pytest.raises(DeviceError, match="build it with -DTME_PROFILE_LAYERS"):
        plain.layers()


def test_generated_header_counts_the_kernel_calls_and_the_default_build_reads_no_counter(tmp_path) -> None:
    from tests.bench_models import tflite_model
    from tinyml_exp.export.cgen import generate_c

    cgen = generate_c(tflite_model("int8"), tmp_path, "small_int8", reference="tflite")
    assert cgen.step_labels == ("CONV_2D+MAX_POOL_2D", "FULLY_CONNECTED")
    assert cgen.step_ops == ((1, 2), (4,))
    header, source = cgen.model_h.read_text(), cgen.model_c.read_text()
    assert "#define TME_MODEL_LAYERS 2 " in header
    assert source.count("TME_PROFILE_STEP(") == 2 + 2  # the two calls, the two definitions
    # outside `#ifdef TME_PROFILE_LAYERS` the macros expand to nothing
    assert "#define TME_PROFILE_STEP(i) ((void)0)" in source


@pytest.mark.slow
@pytest.mark.firmware
@QEMU_TOOLS
def test_layer_counts_add_up_to_the_inference_count_on_qemu() -> None:
    from tinyml_exp.hardware.build import build_firmware
    from tinyml_exp.hardware.qemu import run_qemu

    model = small_model("int8")
    profiling = build_firmware(
        QEMU_BOARD, model.model_dir, workdir() / "layers_build", jobs=2, defines=["TME_PROFILE_LAYERS"]
    )
    inputs = quantized_inputs(model, 3)
    with run_qemu(profiling.elf) as qemu, DeviceClient(qemu.open_serial()) as device:
        device.connect(timeout_s=20.0)
        assert device.layers(2) == [0, 0]  # nothing measured before the first inference
        for data in inputs:
            whole = device.infer(data).count
            layers = device.layers(2)
            assert all(count > 0 for count in layers)
            # the layers span the first to the last counter read inside tme_model_invoke(); the
            # whole count adds the call and one read: a constant handful of instructions
            assert 0 < whole - sum(layers) <= 32, (whole, layers)
        assert layers[0] > layers[1]  # the convolution does most of the work
    with run_qemu(model.firmware.elf) as qemu, DeviceClient(qemu.open_serial()) as device:
        device.connect(timeout_s=20.0)
        default = device.infer(inputs[-1]).count
        with pytest.raises(DeviceError, match="TME_PROFILE_LAYERS"):
            device.layers()
    assert abs(whole - default) < 0.05 * default  # the profiling build measures the same code


@pytest.mark.slow
@pytest.mark.firmware
@QEMU_TOOLS
def test_a_pipeline_run_with_benchmark_layers_logs_a_metric_per_layer_and_the_table(tmp_path) -> None:
    from mlflow.tracking import MlflowClient

    from tests.helpers import compose_config, tiny_overrides
    from tests.test_pipeline_results import readme_layer_metric_patterns, readme_metric_names
    from tinyml_exp.pipeline import run_experiment

    overrides = [
        *tiny_overrides(tmp_path),
        "compression=ptq_int8",
        "target=qemu_netduinoplus2",
        "benchmark.enabled=true",
        "benchmark.layers=true",
        "benchmark.samples=4",
        "benchmark.progress=false",
        "evaluate.tflm=false",
        "profile.arena_probe=false",
    ]
    summary = run_experiment(compose_config(overrides), tmp_path / "out")
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run = client.get_run(summary.run_id)
    assert run.info.status == "FINISHED"
    m = run.data.metrics
    extra = set(m) - readme_metric_names()
    patterns = readme_layer_metric_patterns()
    assert all(any(p.fullmatch(name) for p in patterns) for name in extra), sorted(extra)
    per_layer = {name: value for name, value in m.items() if name.startswith("layer/")}
    assert len(per_layer) == 2 and all(name.endswith("/instructions") for name in per_layer)
    assert sorted(per_layer)[0].startswith("layer/00_conv_2d")
    assert m["layers/sum"] == sum(per_layer.values())
    assert 0 < m["layers/untimed"] <= 32
    # the profiling build times the same kernels, but GCC lays them out anew around the counter reads:
    # its whole count was -2.2 % ... +5.9 % of the default build's on this model (references
    # tflite / tflm, tests/data/cgen_cost_counts.json), so within 10 %
    assert m["layers/sum"] == pytest.approx(m["cycles/median"], rel=0.10)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "benchmark")}
    stem = "seed_cnn_ptq_int8"
    assert {
        f"benchmark/{stem}_layers.csv",
        f"benchmark/{stem}_layers.md",
        f"benchmark/{stem}_layers.png",
    } <= artifacts
    table = Path(client.download_artifacts(run.info.run_id, f"benchmark/{stem}_layers.csv", str(tmp_path)))
    rows = list(csv.DictReader(table.open()))
    assert [int(r["count"]) for r in rows] == [int(v) for _, v in sorted(per_layer.items())]
    assert all(float(r["estimate"]) > 0 for r in rows)  # the profile's estimate beside each count
