"""The firmware core compiled for the host: sanitizer fuzzing, C <-> Python protocol cross-checks,
and the porting header's build-time checks. Needs only the host's gcc."""

from __future__ import annotations

import logging
import os
import random
import re
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from tests.firmware_host import CFLAGS, CORE, HOST, SANITIZERS, build_host_driver
from tests.helpers import require_commands
from tinyml_exp.hardware import protocol
from tinyml_exp.hardware.build import FIRMWARE_DIR, FIXTURE_MODEL_DIR
from tinyml_exp.hardware.protocol import Command, CounterUnit, DeviceFrame, ErrorCode, Frame

log = logging.getLogger(__name__)

pytestmark = [pytest.mark.firmware, require_commands("gcc")]

FUZZ_FRAMES = 200_000  # >= 100,000 asked for; ~1.5 s under ASan + UBSan here
FUZZ_SEED = 20251125
HOST_COUNTER_STEP = 1000  # TME_HOST_COUNTER_STEP in firmware/tests/host/tme_board.h


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_host_driver(tmp_path_factory.mktemp("host") / "host_driver")


def run_driver(driver: Path, *args: str, stdin: bytes = b"") -> bytes:
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1", UBSAN_OPTIONS="print_stacktrace=1")
    result = subprocess.run([str(driver), *args], input=stdin, capture_output=True, env=env, timeout=60)
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 0, stderr
    assert "AddressSanitizer" not in stderr and "runtime error" not in stderr, stderr
    return result.stdout


def test_fuzz_parser_and_app_under_sanitizers(driver: Path) -> None:
    summary = run_driver(driver, "fuzz", str(FUZZ_SEED), str(FUZZ_FRAMES)).decode()
    stats = {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", summary)}
    assert stats["asan"] == 1, "the driver was built without AddressSanitizer"
    assert stats["frames"] >= 100_000
    # Every category was exercised: decoded frames and error events (bad length / version / CRC).
    assert stats["frame_events"] > 0.3 * stats["frames"]
    assert stats["error_events"] > 0.1 * stats["frames"]
    log.info(
        "fuzz: %d frames, %.1f MB in %.2f s (%.0f frames/s under ASan+UBSan)",
        stats["frames"],
        stats["bytes"] / 1e6,
        stats["seconds"],
        stats["frames"] / max(stats["seconds"], 1e-9),
    )


def test_c_parser_accepts_python_frames(driver: Path) -> None:
    rng = random.Random(3)
    stream, expected = bytearray(), []
    for _ in range(200):
        cmd, seq, payload = rng.randrange(256), rng.randrange(256), rng.randbytes(rng.randrange(1025))
        stream += bytes(b for b in rng.randbytes(rng.randrange(12)) if b != protocol.SOF)
        stream += protocol.encode_frame(cmd, seq, payload)
        expected.append(f"FRAME {cmd} {seq} {len(payload)} {zlib.crc32(payload):08x}")
    lines = run_driver(driver, "decode", "1024", stdin=bytes(stream)).decode().splitlines()
    assert lines == expected


def test_c_parser_errors(driver: Path) -> None:
    corrupted = bytearray(protocol.encode_frame(0x02, 9, bytes(10)))
    corrupted[10] ^= 0x01
    stream = (
        protocol.encode_frame(0x03, 5, bytes(17))  # LEN 17 > capacity 16
        + protocol.encode_frame(0x01, 6, b"", version=1)  # a version 1 host
        + protocol.encode_frame(0x01, 8, b"", version=3)
        + bytes(corrupted)
        + b"\xa5\x01\x02\x03"  # stray start marker followed by a real frame
        + b"\xa5"
        + bytes(6 + 4)  # all-zero header: valid in version 1 only
        + protocol.encode_frame(0x01, 7)
    )
    lines = run_driver(driver, "decode", "16", stdin=stream).decode().splitlines()
    assert lines[:4] == ["ERROR 2 3 5 16", "ERROR 5 1 6 2", "ERROR 5 1 8 2", lines[3]]
    assert lines[3].startswith("ERROR 1 2 9 ")  # BAD_CRC for cmd 2 seq 9, detail = device CRC
    assert lines[4:] == [f"FRAME 1 7 0 {zlib.crc32(b''):08x}"]


def test_c_parser_bounds_len_before_draining(driver: Path) -> None:
    # A stray header whose HCRC happens to pass, with LEN 60000: the device answers BAD_LENGTH and
    # hunts again at once, so the frame right behind it is received (version 1 skipped 60 kB).
    stray = bytearray(protocol.encode_frame(0x02, 3, b""))
    stray[4:6] = (60_000).to_bytes(2, "little")
    stray[6] = protocol.header_crc(bytes(stray[1:6]))
    stream = bytes(stray[:7]) + protocol.encode_frame(0x01, 4)
    lines = run_driver(driver, "decode", "784", stdin=stream).decode().splitlines()
    assert lines == ["ERROR 2 2 3 784", f"FRAME 1 4 0 {zlib.crc32(b''):08x}"]


def _fixture_reference(x: bytes) -> bytes:
    values = np.frombuffer(x, dtype=np.int8).astype(np.int32)
    sums = np.array([values[k::10].sum() for k in range(10)])
    return np.clip(sums >> 3, -128, 127).astype(np.int8).tobytes()


def test_app_replies_decode_strictly_in_python(driver: Path) -> None:
    rng = random.Random(5)
    inputs = [rng.randbytes(784) for _ in range(5)]
    bad_crc = bytearray(protocol.encode_frame(Command.ECHO, 40, b"abc"))
    bad_crc[-1] ^= 0xFF
    requests = [
        protocol.encode_frame(Command.IDENTIFY, 1),
        *(protocol.encode_frame(Command.INFER, 10 + i, x) for i, x in enumerate(inputs)),
        protocol.encode_frame(Command.ECHO, 20, b"hello"),
        protocol.encode_frame(0x55, 21),
        protocol.encode_frame(Command.INFER, 22, bytes(783)),
        protocol.encode_frame(Command.IDENTIFY, 23, b"x"),
        protocol.encode_frame(Command.ECHO, 24, bytes(785)),
        protocol.encode_frame(Command.IDENTIFY, 25, version=1),
        bytes(bad_crc),
    ]
    decoder = protocol.FrameDecoder()
    replies = decoder.feed(run_driver(driver, "app", stdin=b"".join(requests)))
    assert decoder.stats == protocol.DecoderStats()  # the device emits nothing but valid frames

    info = protocol.parse_identify(replies[0].payload)
    assert (replies[0].cmd, replies[0].seq) == (0x81, 1)
    assert (info.model_name, info.board_name, info.build_id) == (
        "fixture_sum",
        "host",
        zlib.crc32(b"tme fixture model v1"),
    )
    assert info.counter_unit == CounterUnit.INSTRUCTIONS
    assert (info.input.shape, info.input.zero_point, info.input.scale) == (
        (1, 28, 28, 1),
        -128,
        np.float32(1 / 255),
    )
    assert (info.output.shape, info.output.size_bytes, info.activation_bytes) == ((1, 10), 10, 794)
    assert info.max_request_payload_bytes == 784

    for i, x in enumerate(inputs):
        reply = replies[1 + i]
        assert (reply.cmd, reply.seq) == (0x82, 10 + i)
        assert protocol.parse_infer_reply(reply.payload, 10) == (_fixture_reference(x), HOST_COUNTER_STEP)

    assert replies[6] == Frame(0x83, 20, b"hello")

    def error(frame: Frame) -> tuple[int, ErrorCode, int, int]:
        e = protocol.parse_error(frame.payload)
        assert frame.cmd == DeviceFrame.ERROR
        return frame.seq, e.code, e.command, e.detail

    assert [error(f) for f in replies[7:12]] == [
        (21, ErrorCode.UNKNOWN_COMMAND, 0x55, 0),
        (22, ErrorCode.BAD_INPUT_SIZE, Command.INFER, 784),
        (23, ErrorCode.BAD_LENGTH, Command.IDENTIFY, 0),
        (24, ErrorCode.BAD_LENGTH, Command.ECHO, 784),
        (25, ErrorCode.UNSUPPORTED_VERSION, Command.IDENTIFY, 2),
    ]
    seq, code, command, _ = error(replies[12])
    assert (seq, code, command) == (40, ErrorCode.BAD_CRC, Command.ECHO)
    assert len(replies) == 13


_BOARD_MACROS = {
    "TME_PORT_BOARD_NAME": '"test"',
    "TME_PORT_CLOCK_HZ": "1U",
    "TME_PORT_COUNTER_UNIT": "TME_COUNTER_UNIT_CYCLES",
    "TME_PORT_COUNTER_READ()": "(*(volatile uint32_t *)0x1000U)",
}


def _compile_with_board(tmp_path: Path, macros: dict[str, str]) -> subprocess.CompletedProcess[str]:
    body = "".join(f"#define {name} {value}\n" for name, value in macros.items())
    (tmp_path / "tme_board.h").write_text(f"#include <stdint.h>\n{body}")
    command = ["gcc", "-std=c11", "-fsyntax-only", f"-I{tmp_path}", f"-I{CORE}", f"-I{FIXTURE_MODEL_DIR}"]
    return subprocess.run([*command, str(CORE / "tme_runner.c")], capture_output=True, text=True)


def test_complete_board_header_compiles(tmp_path: Path) -> None:
    assert _compile_with_board(tmp_path, _BOARD_MACROS).returncode == 0


@pytest.mark.parametrize("missing", list(_BOARD_MACROS))
def test_missing_board_macro_fails_with_error_directive(tmp_path: Path, missing: str) -> None:
    result = _compile_with_board(tmp_path, {k: v for k, v in _BOARD_MACROS.items() if k != missing})
    assert result.returncode != 0
    assert f'#error "tme_board.h must define {missing.removesuffix("()")}' in result.stderr


def test_invalid_counter_unit_fails(tmp_path: Path) -> None:
    result = _compile_with_board(tmp_path, {**_BOARD_MACROS, "TME_PORT_COUNTER_UNIT": "7U"})
    assert (
        "TME_PORT_COUNTER_UNIT must be TME_COUNTER_UNIT_CYCLES or TME_COUNTER_UNIT_INSTRUCTIONS"
        in result.stderr
    )


def test_python_and_c_crc_agree(driver: Path) -> None:
    # The C CRC-32 (half-byte table) against zlib, on payloads of every length 0..64.
    stream = b"".join(protocol.encode_frame(1, n, bytes(range(n))) for n in range(65))
    lines = run_driver(driver, "decode", "64", stdin=stream).decode().splitlines()
    assert lines == [f"FRAME 1 {n} {n} {zlib.crc32(bytes(range(n))):08x}" for n in range(65)]
    assert struct.pack("<I", zlib.crc32(b"123456789")) == bytes.fromhex("2639f4cb")


def _rx_sim(tmp_path: Path, *defines: str) -> Path:
    exe = tmp_path / "rx_sim"
    sources = [HOST / "rx_sim.c", FIRMWARE_DIR / "boards" / "common" / "tme_uart_rx.c"]
    includes = [f"-I{CORE}", f"-I{FIRMWARE_DIR / 'boards' / 'common'}"]
    command = ["gcc", *CFLAGS, *SANITIZERS, *defines, *includes, *map(str, sources), "-o", str(exe)]
    subprocess.run(command, check=True)
    return exe


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_uart_rx_ring_full_path_never_livelocks(tmp_path: Path, seed: int) -> None:
    # The shared receive path against QEMU 7.2's USART model (a line RXNEIE cannot lower): every
    # byte arrives once and in order, and the ring was full (interrupt masked) many times.
    out = run_driver(_rx_sim(tmp_path), str(seed), "100000").decode()
    stats = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", out)}
    assert stats["received"] == 100_000
    assert stats["mask_events"] > 100


def test_uart_rx_simulation_catches_the_rxneie_only_livelock(tmp_path: Path) -> None:
    # The old port masked RXNEIE only: on QEMU 7.2 the handler is then re-entered forever.
    result = subprocess.run(
        [str(_rx_sim(tmp_path, "-DRX_SIM_MASK_RXNEIE_ONLY")), "1", "100000"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "livelock" in result.stdout


def _random_reference(seed: int, first: int, count: int) -> list[bytes]:
    """Scalar transcription of PROTOCOL.md §4.7 (independent of the numpy lanes it checks)."""
    rows = []
    for index in range(first, first + count):
        x = (seed + index * 0x9E3779B9) & 0xFFFFFFFF
        for shift, factor in ((16, 0x85EBCA6B), (13, 0xC2B2AE35)):
            x = ((x ^ (x >> shift)) * factor) & 0xFFFFFFFF
        x = (x ^ (x >> 16)) or 1
        row = bytearray()
        for _ in range(784):
            x ^= (x << 13) & 0xFFFFFFFF
            x ^= x >> 17
            x ^= (x << 5) & 0xFFFFFFFF
            row.append(x >> 24)
        rows.append(bytes(row))
    return rows


def test_infer_random_matches_the_python_generator(driver: Path) -> None:
    seed, first, count = 0xDEADBEEF, 7, 20
    inputs = protocol.random_inputs(seed, first, count, 784)
    assert [r.tobytes() for r in inputs] == _random_reference(seed, first, count)
    # Meaningful test inputs: the full int8 range, about uniformly (20 x 784 bytes, ~61 per value).
    histogram = np.bincount(inputs.reshape(-1), minlength=256)
    assert histogram.min() > 25 and histogram.max() < 110
    assert protocol.random_inputs(seed, first + 1, 1, 784)[0].tobytes() == inputs[1].tobytes()
    requests = [
        protocol.encode_frame(Command.INFER_RANDOM, 1, protocol.encode_infer_random(seed, first, count)),
        protocol.encode_frame(Command.INFER_RANDOM, 2, struct.pack("<IIH", seed, first, 0)),
        protocol.encode_frame(Command.INFER_RANDOM, 3, struct.pack("<IIH", seed, first, 4682)),
        protocol.encode_frame(Command.INFER_RANDOM, 4, bytes(9)),
    ]
    decoder = protocol.FrameDecoder(max_payload=protocol.MAX_PAYLOAD_BYTES)
    replies = decoder.feed(run_driver(driver, "app", stdin=b"".join(requests)))
    assert (replies[0].cmd, replies[0].seq) == (0x85, 1)
    results = protocol.parse_infer_random_reply(replies[0].payload, 10, count)
    assert [r.output for r in results] == [_fixture_reference(x.tobytes()) for x in inputs]
    assert {r.count for r in results} == {HOST_COUNTER_STEP}
    # 65535 // (4 + 10) = 4681 entries fit one reply; 0 or more, or a payload that is not 10 bytes, fail.
    assert protocol.max_random_count(10) == 4681
    errors = [(f.seq, protocol.parse_error(f.payload)) for f in replies[1:]]
    assert [(seq, e.code, e.command, e.detail) for seq, e in errors] == [
        (2, ErrorCode.BAD_LENGTH, Command.INFER_RANDOM, 4681),
        (3, ErrorCode.BAD_LENGTH, Command.INFER_RANDOM, 4681),
        (4, ErrorCode.BAD_LENGTH, Command.INFER_RANDOM, 10),
    ]
