"""The benchmark against the QEMU firmware: round trips compared with the TFLite reference kernels,
identity checks, a device that never answers, a device reset mid-run, the pipeline end to end and
the standalone `tinyml-exp-bench` command."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from tests.bench_models import labels, quantized_inputs, small_model
from tests.helpers import qemu_benchmark_overrides, require_commands, run_app
from tinyml_exp.evaluate.interpreters import io_specs
from tinyml_exp.hardware.bench import reference_outputs, stream, summarize
from tinyml_exp.hardware.build import FIXTURE_MODEL_DIR, build_firmware
from tinyml_exp.hardware.link import (
    DeviceNotAnsweringError,
    IdentityMismatchError,
    ModelIdentity,
    ReliableLink,
)
from tinyml_exp.hardware.protocol import CounterUnit
from tinyml_exp.hardware.qemu import run_qemu
from tinyml_exp.hardware.session import BenchmarkSettings, open_device, open_port

QEMU_TOOLS = require_commands("arm-none-eabi-gcc", "make", "qemu-system-arm")
pytestmark = [pytest.mark.firmware]


def settings(**changes) -> BenchmarkSettings:
    values = {
        "port": None,
        "baudrate": 115200,
        "flash": None,
        "timeout_s": 5.0,
        "retries": 3,
        "connect_timeout_s": 20.0,
        "samples": None,
        "warmup": 1,
        "repeats": 1,
        "clock_hz": 80e6,
        "progress": False,
    }
    return BenchmarkSettings(**{**values, **changes})


def model_inputs_reference(kind: str, n: int):
    """The small `kind` model, `n` of its quantized test inputs, and the TFLite reference kernels'
    outputs on them (what the device must reproduce)."""
    model = small_model(kind)
    inputs = quantized_inputs(model, n)
    return model, inputs, reference_outputs(model.tflite, inputs)


def qemu_summary(run, model, n: int, reference: np.ndarray):
    """`summarize` of `n` test samples streamed to QEMU: instruction counts at the 80 MHz of `settings()`."""
    out_spec = io_specs(model.tflite)[1]
    return summarize(
        run, labels(model, n), out_spec, clock_hz=80e6, unit=CounterUnit.INSTRUCTIONS, reference=reference
    )


@pytest.mark.slow
@QEMU_TOOLS
def test_int8_round_trip_is_bit_exact_with_the_tflite_reference_kernels() -> None:
    n = 300
    model, inputs, reference = model_inputs_reference("int8", n)
    expected = ModelIdentity.from_tflite(model.tflite, model.name)
    with open_device(settings(), model.firmware, emulated=True, expected=expected) as link:
        run = stream(link, inputs, warmup=2, repeats=1, progress=False)
        again = stream(link, inputs[:20], repeats=2, progress=False)  # counts are exact under -icount
    assert run.error is None and again.error is None and run.completed == n
    summary = qemu_summary(run, model, n, reference)
    m = summary.metrics
    assert m["agreement/device_vs_tflite_exact"] == 1.0 and m["error/device_vs_tflite_max_abs"] == 0.0
    assert np.array_equal(summary.predictions, summary.reference_predictions)
    assert m["accuracy/device"] == m["accuracy/tflite_reference"] > 0.5
    assert again.counts == run.counts[:20] and again.inconsistent == 0
    assert 1_000 < m["cycles/min"] <= m["cycles/median"] <= m["cycles/max"] < 5_000_000
    assert m["latency/ms"] == pytest.approx(1000 * m["cycles/median"] / 80e6)
    assert m["throughput/fps"] == pytest.approx(80e6 / m["cycles/median"])
    assert m["link/bytes_per_s"] > 1000 and m["link/retries"] == 0
    assert summary.tags["cycles.unit"] == "instructions" and summary.tags["benchmark.complete"] == "true"


@pytest.mark.slow
@QEMU_TOOLS
def test_float32_round_trip_agrees_with_tflite() -> None:
    n = 100
    model, inputs, reference = model_inputs_reference("float32", n)
    with open_device(
        settings(), model.firmware, emulated=True, expected=ModelIdentity.from_tflite(model.tflite)
    ) as link:
        assert link.info is not None and link.info.input.dtype_name == "float32"
        run = stream(link, inputs, progress=False)
    summary = qemu_summary(run, model, n, reference)
    # float32 C agrees with TFLite to rounding (different summation order), not bit for bit
    assert summary.metrics["agreement/device_vs_tflite"] >= 0.99
    assert summary.metrics["error/device_vs_tflite_max_abs"] < 1e-3


@QEMU_TOOLS
def test_a_device_running_another_model_is_refused(tmp_path: Path) -> None:
    fixture = build_firmware("qemu_netduinoplus2", FIXTURE_MODEL_DIR, tmp_path / "fw")
    expected = ModelIdentity.from_tflite(small_model("int8").tflite, "small_int8")
    with (
        pytest.raises(IdentityMismatchError) as error,
        open_device(settings(), fixture, emulated=True, expected=expected),
    ):
        pass
    message = str(error.value)
    assert f"build id 0x38110b6b (expected 0x{expected.build_id:08x})" in message
    assert "model name 'fixture_sum' (expected 'small_int8')" in message
    assert "input shape (1, 28, 28, 1) (expected (1, 16, 16))" in message
    assert "benchmark.flash" in message


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never sends a byte: a device that never answers."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        accepted: list[socket.socket] = []
        stop = threading.Event()

        def accept() -> None:
            server.settimeout(0.1)
            while not stop.is_set():
                try:
                    accepted.append(server.accept()[0])
                except TimeoutError:
                    continue

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        yield server.getsockname()[1]
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()


def test_a_device_that_never_answers_is_one_clear_line(silent_server: int) -> None:
    url = f"socket://127.0.0.1:{silent_server}"
    start = time.monotonic()
    with (
        pytest.raises(DeviceNotAnsweringError) as error,
        open_device(settings(port=url, connect_timeout_s=0.6), None, emulated=False, expected=None),
    ):
        pass
    assert time.monotonic() - start < 5
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(
        f"no answer from the device on {url} within 0.6 s: check that the board is plugged in"
    )
    assert "benchmark.baudrate=115200" in message


def test_a_port_that_cannot_be_opened_is_one_clear_line() -> None:
    with (
        pytest.raises(DeviceNotAnsweringError, match=r"cannot open /dev/ttyNOPE0: .*check that the board"),
        open_device(settings(port="/dev/ttyNOPE0"), None, emulated=False, expected=None),
    ):
        pass


def _qmp(path: Path, command: str) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        reader = sock.makefile("rb")
        reader.readline()  # greeting
        for message in ({"execute": "qmp_capabilities"}, {"execute": command}):
            sock.sendall(json.dumps(message).encode() + b"\n")
            while b'"return"' not in (line := reader.readline()):
                assert line, "QMP closed"


@pytest.mark.slow
@QEMU_TOOLS
def test_a_device_reset_mid_run_is_detected_and_the_run_carries_on(tmp_path: Path) -> None:
    model, n = small_model("int8"), 80
    inputs = quantized_inputs(model, n)
    qmp = tmp_path / "qmp.sock"
    with run_qemu(model.firmware.elf, extra_args=["-qmp", f"unix:{qmp},server=on,wait=off"]) as qemu:
        expected = ModelIdentity.from_tflite(model.tflite, model.name)
        with ReliableLink(qemu.open_serial, qemu.url, timeout_s=5.0, retries=3, expected=expected) as link:
            link.connect()

            def reset_once(index: int) -> None:
                if index == 30:
                    _qmp(qmp, "system_reset")  # the firmware reboots and announces it (BOOT frame)

            run = stream(link, inputs, progress=False, on_sample=reset_once)
    assert run.error is None and run.completed == n
    assert link.stats.device_resets == 1 and link.stats.retries >= 1
    raw = np.stack([np.frombuffer(o, dtype=np.int8) for o in run.outputs])
    assert np.array_equal(raw, reference_outputs(model.tflite, inputs))


def _mlflow_run(uri: str, experiment: str):
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    [run] = client.search_runs([found.experiment_id])
    return client, run


@pytest.mark.slow
@QEMU_TOOLS
def test_pipeline_with_benchmark_on_qemu_logs_the_device_figures(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = [
        "dataset=synthetic",
        "dataset.num_test=200",
        "train.epochs=1",
        *qemu_benchmark_overrides(tmp_path, uri),
        "benchmark.clock_hz=80000000",
    ]
    done = run_app(args, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    client, run = _mlflow_run(uri, "tinyml_exp")
    m, tags = run.data.metrics, run.data.tags
    assert run.info.status == "FINISHED"
    assert m["benchmark/samples"] == 200
    assert m["accuracy/device"] == m["accuracy/tflite_reference"]
    assert m["agreement/device_vs_tflite"] == 1.0 and m["agreement/device_vs_tflite_exact"] == 1.0
    for name in (
        "cycles/median",
        "cycles/mean",
        "cycles/min",
        "cycles/max",
        "throughput/fps",
        "link/bytes_per_s",
    ):
        assert m[name] > 0, name
    assert m["latency/ms"] == pytest.approx(1000 * m["cycles/median"] / 80e6)
    assert m["flash/firmware_bytes"] > m["flash/firmware_app_bytes"] > 0 and m["ram/c_bytes"] > 0
    assert "error/flash_estimate_pct" in m and "error/cycles_estimate_pct" in m
    assert tags["cycles.unit"] == "instructions" and tags["benchmark.complete"] == "true"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "benchmark")}
    assert artifacts == {"benchmark/seed_cnn_ptq_int8_device_samples.csv"}
    firmware = {a.path for a in client.list_artifacts(run.info.run_id, "firmware")}
    assert {"firmware/firmware.elf", "firmware/size.txt", "firmware/c"} <= firmware


@pytest.mark.slow
@QEMU_TOOLS
def test_standalone_command_end_to_end(tmp_path: Path) -> None:
    model, n = small_model("int8"), 120
    data = tmp_path / "test.npz"
    pixels = np.round(model.data.x_test[:n] * 255).astype(np.uint8)  # as a user would save them
    np.savez(data, x_test=pixels, y_test=model.data.y_test[:n])
    (tmp_path / "model.tflite").write_bytes(model.tflite)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    command = [sys.executable, "-m", "tinyml_exp.cli.bench", "--qemu", str(model.firmware.elf)]
    command += ["--data", str(data), "--model", str(tmp_path / "model.tflite"), "--samples", "100"]
    command += [
        "--clock-hz",
        "80e6",
        "--csv",
        str(tmp_path / "samples.csv"),
        "--mlflow",
        "--tracking-uri",
        uri,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert f"device     small_int8 (build 0x{ModelIdentity.from_tflite(model.tflite).build_id:08x})" in out
    assert "samples    100 of 100" in out
    assert "agreement  1.0000 of labels, 1.0000 of outputs bit-exact" in out
    assert "instructions median" in out and "at 80 MHz" in out
    rows = (tmp_path / "samples.csv").read_text().splitlines()
    assert rows[0] == "index,label,prediction,cycles,reference_prediction,output_matches_reference"
    assert len(rows) == 101
    _, run = _mlflow_run(uri, "tinyml_exp_bench")
    assert run.data.metrics["benchmark/samples"] == 100 and run.data.tags["cycles.unit"] == "instructions"


def test_standalone_command_reads_npy_without_pickle(tmp_path: Path) -> None:
    bad = tmp_path / "objects.npy"
    np.save(bad, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    command = [sys.executable, "-m", "tinyml_exp.cli.bench", "--port", "socket://127.0.0.1:9"]
    done = subprocess.run([*command, "--data", str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: cannot read {bad}: ") and "allow_pickle=False" in done.stderr


def test_open_port_uses_tcp_nodelay_for_sockets(silent_server: int) -> None:
    port = open_port(f"socket://127.0.0.1:{silent_server}")
    try:
        assert port._socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)  # type: ignore[attr-defined]
    finally:
        port.close()


@QEMU_TOOLS
def test_a_real_board_is_flashed_then_opened(tmp_path: Path) -> None:
    """The real-board path with a flash method that works here: copying the .bin to the board's
    mass-storage drive (a directory standing in for DIS_L4IOT), then the port (QEMU's, here)."""
    fixture = build_firmware("qemu_netduinoplus2", FIXTURE_MODEL_DIR, tmp_path / "fw")
    drive = tmp_path / "DIS L4IOT"
    drive.mkdir()
    with run_qemu(fixture.elf) as qemu:
        flash = f"cp {{bin}} '{drive}/'"
        with open_device(
            settings(port=qemu.url, flash=flash), fixture, emulated=False, expected=None
        ) as link:
            assert link.info is not None and link.info.model_name == "fixture_sum"
    assert (drive / "firmware.bin").read_bytes() == fixture.bin.read_bytes()


def test_flashing_errors_are_one_line(tmp_path: Path) -> None:
    from tinyml_exp.hardware.build import FirmwareBuild
    from tinyml_exp.hardware.session import FlashError
    from tinyml_exp.hardware.tools import ToolMissingError

    build = FirmwareBuild(
        "b_l475e_iot01a", tmp_path, tmp_path / "fw.elf", tmp_path / "fw.bin", tmp_path, 1, 0, 0, ""
    )
    with (
        pytest.raises(FlashError, match=r"^flashing failed \(exit 1\): false .*benchmark.flash=null"),
        open_device(
            settings(port="/dev/ttyNOPE0", flash="false {bin}"), build, emulated=False, expected=None
        ),
    ):
        pass
    with (
        pytest.raises(ToolMissingError, match=r"needs no-such-flasher: install"),
        open_device(
            settings(port="/dev/ttyNOPE0", flash="no-such-flasher {bin}"),
            build,
            emulated=False,
            expected=None,
        ),
    ):
        pass


@pytest.mark.slow
@QEMU_TOOLS
def test_ctrl_c_prints_what_arrived_and_stops_qemu(tmp_path: Path) -> None:
    import re
    import signal

    from tests.helpers import default_sigint

    model = small_model("int8")
    data = tmp_path / "test.npz"
    np.savez(data, x=model.data.x_test, y=model.data.y_test)  # 400 samples: ~10 s on QEMU
    command = [sys.executable, "-m", "tinyml_exp.cli.bench", "--qemu", str(model.firmware.elf)]
    process = subprocess.Popen(
        [*command, "--data", str(data), "--csv", str(tmp_path / "partial.csv"), "-v"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    assert process.stderr is not None
    qemu_pid = None
    for line in process.stderr:  # progress lines come every 10 % (40 samples)
        if found := re.search(r"QEMU pid (\d+)", line):
            qemu_pid = int(found.group(1))
        if "device: 80 of 400 samples" in line:
            break
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err[-2000:]
    done = int(re.search(r"samples    (\d+) of 400", out).group(1))
    assert 80 <= done < 400
    assert len((tmp_path / "partial.csv").read_text().splitlines()) == done + 1
    assert qemu_pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(qemu_pid, 0)
