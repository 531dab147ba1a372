"""The MLPerf Tiny runner's ASCII dialect (PROTOCOL.md §6): the firmware core compiled for the
host, then the QEMU firmware driven through a pseudo-terminal (socat) as the mlcommons/tiny runner
drives a board. Reply lines are checked with the runner's own patterns
(benchmark/runner/device_under_test.py and script.py in mlcommons/tiny)."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import serial

from tests.bench_models import quantized_inputs, small_model
from tests.firmware_host import build_host_driver
from tests.helpers import require_commands, socat_pty
from tinyml_exp.evaluate.interpreters import dequantize_output, io_specs
from tinyml_exp.hardware import protocol
from tinyml_exp.hardware.bench import reference_outputs
from tinyml_exp.hardware.client import DeviceClient
from tinyml_exp.hardware.protocol import Command
from tinyml_exp.hardware.qemu import run_qemu

pytestmark = [pytest.mark.firmware]

# The runner's patterns, as it matches the lines it reads (after stripping "\r").
RUNNER_NAME = re.compile(r"^m-(name)-dut-\[([^]]+)]$")
RUNNER_PROFILE = re.compile(r"^m-(model|profile)-\[([^]]+)]$")
RUNNER_RESULTS = re.compile(r"^m-results-\[([^]]+)\]$")
RUNNER_LAP = re.compile(r"^m-lap-us-([0-9]+)$")
RUNNER_CHUNK_BYTES = 31  # bytes per `db` line the runner sends without a power manager


@pytest.fixture(scope="module")
def host_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The core with the fixture model, built for the host with sanitizers (stdin -> tme_app_feed)."""
    return build_host_driver(tmp_path_factory.mktemp("mlperf") / "host_driver")


def feed(exe: Path, data: bytes) -> bytes:
    done = subprocess.run([str(exe), "app"], input=data, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def text_lines(output: bytes) -> list[str]:
    assert output.endswith(b"\r\n")
    return output.decode().split("\r\n")[:-1]


def db_commands(data: bytes) -> bytes:
    chunks = [data[i : i + RUNNER_CHUNK_BYTES] for i in range(0, len(data), RUNNER_CHUNK_BYTES)]
    return f"db load {len(data)}%".encode() + b"".join(f"db {c.hex()}%".encode() for c in chunks)


def fixture_results(x: bytes) -> list[float]:
    """The fixture model's output (firmware/tests/fixture_model/model.h), dequantized."""
    values = np.frombuffer(x, dtype=np.int8).astype(np.int32)
    q = np.clip(np.array([values[k::10].sum() for k in range(10)]) >> 3, -128, 127)
    return [0.125 * (v - 3) for v in q]


@require_commands("gcc")
def test_identification_commands_match_the_runner(host_app: Path) -> None:
    lines = text_lines(feed(host_app, b"name%profile%"))
    assert RUNNER_NAME.match(lines[0]).group(2) == "tinyml_exp"
    assert [RUNNER_PROFILE.match(line).groups() for line in lines[2:4]] == [
        ("profile", "ULPMark for tinyML Firmware V0.0.1"),
        ("model", "fixture_sum"),
    ]
    assert lines[1] == lines[4] == "m-ready"


@require_commands("gcc")
def test_load_infer_results(host_app: Path) -> None:
    x = bytes(np.random.default_rng(1).integers(0, 256, 784, dtype=np.uint8))
    lines = text_lines(feed(host_app, db_commands(x) + b"db print%infer 3 2%results%"))
    assert lines[:2] == ["m-[Expecting 784 bytes]", "m-ready"]
    assert lines.count("m-load-done") == 1
    dump = [line for line in lines if line.startswith("m-buffer-")]
    assert bytes.fromhex("".join(line[len("m-buffer-") :].replace("-", "") for line in dump)) == x
    start = lines.index("m-warmup-start-2")
    assert lines[start + 1 : start + 3] == ["m-warmup-done", "m-infer-start-3"]
    laps = [int(m.group(1)) for line in lines if (m := RUNNER_LAP.match(line))]
    # Host "board": the counter advances 1000 ticks (1 tick = 1 µs) per read. Each run reads it 3
    # times (before and after the model, then the clock), and the closing lap once more.
    assert laps[1] - laps[0] == 3 * 3 * 1000 + 1000
    results = [RUNNER_RESULTS.match(line).group(1) for line in lines if RUNNER_RESULTS.match(line)]
    expected = ",".join(f"{v:.3f}" for v in fixture_results(x))
    assert results == [expected, expected]  # after infer, and from `results`
    chunks = -(-len(x) // RUNNER_CHUNK_BYTES)
    assert lines[-1] == "m-ready" and lines.count("m-ready") == 1 + chunks + 3  # one per command


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (b"bogus 1 2%", "e-[Unknown command: bogus]"),
        (
            b"infer 1%",
            "e-[Input not loaded: 0 bytes received, the model input is 784 (db load N, then db HH...)]",
        ),
        (b"db load 99999%", "e-[Supplied buffer size 99999 exceeds maximum of 784]"),
        (b"db load 0%", "e-[Command 'db load' requires the number of bytes, > 0]"),
        (b"db load 4%db 0g%", "e-[Invalid hex digit '0g']"),
        (b"db load 4%db abc%", "e-[Insufficient number of hex digits]"),
        (b"db 00%", "e-[Command 'db load N' must come first]"),
        (b"db load 784%infer 0%", "e-[Inference iterations must be >0]"),
        (b"x" * 400 + b"%", "e-[Command too long]"),
    ],
)
@require_commands("gcc")
def test_errors_are_e_lines_followed_by_ready(host_app: Path, command: bytes, error: str) -> None:
    lines = text_lines(feed(host_app, command))
    assert error in lines
    assert lines[lines.index(error) + 1] == "m-ready"


@require_commands("gcc")
def test_dialects_are_chosen_byte_by_byte(host_app: Path) -> None:
    """Text and frames interleave; a text line cut by a frame is dropped; noise does not block."""
    x = bytes(range(256)) * 3 + bytes(16)
    frames = protocol.encode_frame(Command.IDENTIFY, 7) + protocol.encode_frame(Command.INFER, 8, x)
    stream = b"name%" + b"half a comm" + frames + b"\x00\x00\r\nname%" + b"profile\r\n%"
    out = feed(host_app, stream)
    decoder = protocol.FrameDecoder()
    replies = decoder.feed(out)
    assert [(f.cmd, f.seq) for f in replies] == [(0x81, 7), (0x82, 8)]
    text = out.replace(protocol.encode_frame(0x81, 7, replies[0].payload), b"")
    text = text.replace(protocol.encode_frame(0x82, 8, replies[1].payload), b"")
    lines = text_lines(text)
    assert lines == [
        "m-name-dut-[tinyml_exp]",
        "m-ready",
        "m-name-dut-[tinyml_exp]",
        "m-ready",
        "m-profile-[ULPMark for tinyML Firmware V0.0.1]",
        "m-model-[fixture_sum]",
        "m-ready",
    ]


class RunnerLikeHost:
    """Talks to the board as the MLPerf Tiny runner's SerialDevice does: command + '%', then
    lines until one contains "m-ready"."""

    def __init__(self, tty: str, timeout_s: float = 20.0) -> None:
        self.port = serial.Serial(tty, 115200, timeout=0.1)
        self.timeout_s = timeout_s
        self._buffer = b""

    def command(self, text: str) -> list[str]:
        self.port.write(text.encode() + b"%")
        lines: list[str] = []
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            self._buffer += self.port.read(256)
            while b"\n" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\n", 1)
                line = raw.decode().strip("\r\0")
                if line:
                    lines.append(line)
                if "m-ready" in line:
                    return lines
        raise AssertionError(f"no m-ready after {text!r}: {lines}")

    def load(self, data: bytes) -> None:
        assert self.command(f"db load {len(data)}") == [f"m-[Expecting {len(data)} bytes]", "m-ready"]
        for i in range(0, len(data), RUNNER_CHUNK_BYTES):
            reply = self.command(f"db {data[i : i + RUNNER_CHUNK_BYTES].hex()}")
        assert reply == ["m-load-done", "m-ready"]


@pytest.fixture
def tty(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """QEMU with the small int8 model's firmware, its UART bridged to a pty by socat."""
    model = small_model("int8")
    link = tmp_path / "ttyDUT"
    with run_qemu(model.firmware.elf) as qemu, socat_pty(link, qemu.port):
        # The runner connects to a board that is already running: wait for the firmware (and
        # take its binary BOOT frame, which the runner could not decode) before handing over.
        with DeviceClient(serial.Serial(os.fspath(link), 115200, timeout=0.05)) as client:
            client.connect(timeout_s=20.0)
        yield os.fspath(link), qemu.port


@pytest.mark.slow
@require_commands("arm-none-eabi-gcc", "make", "qemu-system-arm", "socat")
def test_qemu_firmware_speaks_the_runner_dialect_through_a_pty(tty: tuple[str, int]) -> None:
    model = small_model("int8")
    x = quantized_inputs(model, 1)[0]
    out_spec = io_specs(model.tflite)[1]
    host = RunnerLikeHost(tty[0])
    assert [RUNNER_NAME.match(line) is not None for line in host.command("name")] == [True, False]
    assert RUNNER_PROFILE.match(host.command("profile")[1]).group(2) == "small_int8"
    host.load(x)
    lines = host.command("infer 5 1")
    laps = [int(m.group(1)) for line in lines if (m := RUNNER_LAP.match(line))]
    [results] = [RUNNER_RESULTS.match(line).group(1) for line in lines if RUNNER_RESULTS.match(line)]
    device = np.array([float(v) for v in results.split(",")])
    expected = dequantize_output(reference_outputs(model.tflite, [x]), out_spec).reshape(-1)
    assert np.abs(device - expected).max() <= 0.0005 + 1e-6  # printed with 3 decimals

    # The binary protocol on the same port right after: the same input's exact instruction count.
    with DeviceClient(host.port) as client:
        client.connect(timeout_s=10.0)
        count = client.infer(x).count
    # QEMU's TIM2 counts 1 GHz of virtual time = 1 instruction per ns under -icount shift=0, so
    # five inferences take 5 × count ns, plus reloading the input and reading the clock each time.
    assert 5 * count / 1000 <= laps[1] - laps[0] <= 5 * count / 1000 * 1.05 + 10
