"""The fixture firmware on QEMU's netduinoplus2, over its emulated UART with pyserial."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import require_commands, socat_pty
from tinyml_exp.hardware import protocol
from tinyml_exp.hardware.build import (
    FIXTURE_MODEL_DIR,
    AppOptions,
    FirmwareBuild,
    FirmwareBuildError,
    build_firmware,
)
from tinyml_exp.hardware.client import DeviceClient, DeviceErrorReply
from tinyml_exp.hardware.protocol import Command, CounterUnit, ErrorCode
from tinyml_exp.hardware.qemu import QemuError, run_qemu

log = logging.getLogger(__name__)

pytestmark = [pytest.mark.firmware, require_commands("arm-none-eabi-gcc", "make", "qemu-system-arm")]

BOARD = "qemu_netduinoplus2"


@pytest.fixture(scope="module")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> FirmwareBuild:
    return build_firmware(BOARD, FIXTURE_MODEL_DIR, tmp_path_factory.mktemp("fw"))


@pytest.fixture(scope="module")
def device(firmware: FirmwareBuild) -> Iterator[DeviceClient]:
    with run_qemu(firmware.elf) as instance, DeviceClient(instance.open_serial(), timeout_s=10.0) as client:
        client.connect(timeout_s=20.0)
        yield client


def fixture_reference(x: bytes) -> bytes:
    """What the fixture model computes (firmware/tests/fixture_model/model.h)."""
    values = np.frombuffer(x, dtype=np.int8).astype(np.int32)
    sums = np.array([values[k::10].sum() for k in range(10)])
    return np.clip(sums >> 3, -128, 127).astype(np.int8).tobytes()


def test_identify(device: DeviceClient) -> None:
    info = device.identify()
    assert (info.model_name, info.board_name) == ("fixture_sum", BOARD)
    assert info.counter_unit == CounterUnit.INSTRUCTIONS
    assert info.clock_hz == 168_000_000
    assert (info.input.dtype_name, info.input.shape, info.input.zero_point) == ("int8", (1, 28, 28, 1), -128)
    assert (info.output.shape, info.output.scale, info.output.zero_point) == ((1, 10), 0.125, 3)
    assert info.activation_bytes == 794


def test_inferences_match_reference_with_repeatable_counts(device: DeviceClient) -> None:
    rng = np.random.default_rng(11)
    inputs = [rng.integers(-128, 128, 784, dtype=np.int8).tobytes() for _ in range(10)]
    inputs += [bytes([0x80]) * 784, bytes([0x7F]) * 784]  # both saturation limits
    counts = []
    for x in inputs:
        output, count = device.infer(x)
        assert output == fixture_reference(x)
        counts.append(count)
    assert device.infer(inputs[0]).count == counts[0]
    # The fixture's work does not depend on the data, and -icount makes the count exact.
    assert len(set(counts)) == 1
    # An instruction count: at least a load, an add and loop control per input byte, and far
    # fewer than 40 instructions per byte.
    assert 3 * 784 < counts[0] < 40 * 784


def test_error_replies_over_the_link(device: DeviceClient) -> None:
    with pytest.raises(DeviceErrorReply) as unknown:
        device.request(0x55)
    assert unknown.value.error.code == ErrorCode.UNKNOWN_COMMAND
    with pytest.raises(DeviceErrorReply) as wrong_size:
        device.request(Command.INFER, bytes(100))
    assert (wrong_size.value.error.code, wrong_size.value.error.detail) == (ErrorCode.BAD_INPUT_SIZE, 784)
    with pytest.raises(DeviceErrorReply) as too_long:
        device.request(Command.ECHO, bytes(785))
    assert (too_long.value.error.code, too_long.value.error.detail) == (ErrorCode.BAD_LENGTH, 784)

    corrupted = bytearray(protocol.encode_frame(Command.ECHO, 77, b"payload"))
    corrupted[9] ^= 0x04
    device.send_raw(bytes(corrupted))
    reply = device.receive(timeout_s=5.0)
    assert reply is not None and reply.cmd == protocol.DeviceFrame.ERROR and reply.seq == 77
    assert protocol.parse_error(reply.payload).code == ErrorCode.BAD_CRC
    assert device.echo(b"still in sync") == b"still in sync"


def test_resynchronises_after_garbage_and_a_partial_frame(
    device: DeviceClient, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(2)
    garbage = bytes(b for b in rng.integers(0, 256, 2000, dtype=np.uint8).tobytes() if b != protocol.SOF)
    partial = protocol.encode_frame(Command.INFER, 9, bytes(784))[:300]  # a host that died mid-frame
    device.send_raw(garbage + partial)
    with caplog.at_level(logging.INFO, logger="tinyml_exp.hardware.client"):
        info = device.connect(timeout_s=10.0, ping_interval_s=0.1)
    assert info.model_name == "fixture_sum"
    # The doubling filler flushes the ~500 missing bytes within about 6 pings; 11-byte pings alone
    # would need about 45.
    pings = int(re.search(r"answered after (\d+) ping", caplog.text).group(1))
    assert pings <= 10
    x = bytes(range(256)) * 3 + bytes(16)
    assert device.infer(x).output == fixture_reference(x)


@pytest.fixture(scope="module")
def tiny_ring_firmware(tmp_path_factory: pytest.TempPathFactory) -> FirmwareBuild:
    """The fixture firmware with an 8-byte receive ring: every frame fills it many times over."""
    return build_firmware(
        BOARD, FIXTURE_MODEL_DIR, tmp_path_factory.mktemp("fw8"), defines=["TME_RING_BYTES=8"]
    )


@pytest.mark.parametrize("ring", ["tiny", "default"])
def test_pipelined_requests_fill_the_ring_without_livelock(
    firmware: FirmwareBuild, tiny_ring_firmware: FirmwareBuild, ring: str
) -> None:
    """The host sends the next frames before reading any reply, so bytes pile up while the device
    computes and answers: the ring fills and the receive interrupt is masked (issue 11: on QEMU
    7.2 masking RXNEIE alone left the core in the USART handler for ever)."""
    rng = np.random.default_rng(13)
    elf = (tiny_ring_firmware if ring == "tiny" else firmware).elf
    with run_qemu(elf) as instance, DeviceClient(instance.open_serial(), timeout_s=10.0) as client:
        client.connect(timeout_s=20.0)
        for burst in range(6):
            inputs = [rng.integers(-128, 128, 784, dtype=np.int8).tobytes() for _ in range(4)]
            seqs = [100 + 4 * burst + i for i in range(4)]
            # 4 x 795 bytes in one write: far more than the 256-byte ring (and the 8-byte one).
            client.send_raw(
                b"".join(
                    protocol.encode_frame(Command.INFER, s, x) for s, x in zip(seqs, inputs, strict=True)
                )
            )
            for seq, x in zip(seqs, inputs, strict=True):
                reply = client.receive(timeout_s=10.0)
                assert reply is not None, f"no reply to pipelined request {seq}: the device hangs"
                assert (reply.cmd, reply.seq) == (0x82, seq)
                assert protocol.parse_infer_reply(reply.payload, 10).output == fixture_reference(x)
        assert client.echo(b"still in sync") == b"still in sync"


def test_link_speed(device: DeviceClient) -> None:
    """Round-trip time and throughput of the emulated link; logged for the report, loosely bounded."""
    rounds = 20
    start = time.perf_counter()
    for _ in range(rounds):
        device.identify()
    identify_ms = (time.perf_counter() - start) / rounds * 1e3
    x = os.urandom(784)
    start = time.perf_counter()
    for _ in range(rounds):
        device.infer(x)
    infer_ms = (time.perf_counter() - start) / rounds * 1e3
    payload = os.urandom(784)
    start = time.perf_counter()
    for _ in range(rounds):
        device.echo(payload)
    echo_s = (time.perf_counter() - start) / rounds
    kb_per_s = (len(payload) + protocol.OVERHEAD_BYTES) / echo_s / 1e3
    log.info(
        "QEMU link: identify %.2f ms, infer (784 B in, 14 B out) %.2f ms, echo 784 B %.2f ms = %.1f KB/s each way",
        identify_ms,
        infer_ms,
        echo_s * 1e3,
        kb_per_s,
    )
    assert infer_ms < 2000  # generous: a shared CI core; ~20 ms measured on an idle one


@require_commands("socat")
def test_tty_path_through_socat(firmware: FirmwareBuild, tmp_path: Path) -> None:
    """The same client on a real tty (a pty bridged to QEMU's TCP port), as with a board on USB."""
    link = tmp_path / "ttyQEMU"
    with (
        run_qemu(firmware.elf) as instance,
        socat_pty(link, instance.port),
        DeviceClient.open(str(link), timeout_s=10.0) as device,
    ):
        assert device.connect(timeout_s=20.0).board_name == BOARD
        x = bytes(range(128, 256)) * 6 + bytes(16)
        assert device.infer(x).output == fixture_reference(x)


def test_qemu_is_stopped_after_an_exception_and_counts_repeat(
    firmware: FirmwareBuild, device: DeviceClient
) -> None:
    x = bytes(range(256)) * 3 + bytes(16)
    expected_count = device.infer(x).count
    with (
        pytest.raises(RuntimeError, match="boom"),
        run_qemu(firmware.elf) as instance,
        DeviceClient(instance.open_serial()) as other,
    ):
        other.connect(timeout_s=20.0)
        assert other.infer(x).count == expected_count  # same count in a fresh emulator
        process = instance.process
        raise RuntimeError("boom")
    assert process.poll() is not None


def test_qemu_dying_in_use_is_reported_with_its_output(firmware: FirmwareBuild) -> None:
    with (
        pytest.raises(QemuError, match=r"QEMU exited with status -9") as info,
        run_qemu(firmware.elf) as instance,
        DeviceClient(instance.open_serial(), timeout_s=1.0) as client,
    ):
        client.connect(timeout_s=20.0)
        instance.process.kill()
        instance.process.wait()
        client.identify()
    assert info.value.__cause__ is not None  # the client's own error is kept as the cause


def test_qemu_start_failure_is_reported(firmware: FirmwareBuild) -> None:
    with run_qemu(firmware.elf, extra_args=["-no-such-option"]) as instance:
        instance.process.wait(timeout=10)
        with pytest.raises(QemuError, match="no-such-option: invalid option"):
            instance.open_serial()


_CHILD = """
import sys, time
from tinyml_exp.hardware.qemu import run_qemu
with run_qemu(sys.argv[1]) as instance:
    print(instance.process.pid, flush=True)
    time.sleep(60)
"""


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status  # a zombie has exited; reaping it is its new parent's business


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux (/proc, PR_SET_PDEATHSIG)")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_qemu_never_outlives_its_runner(firmware: FirmwareBuild, signum: signal.Signals) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(firmware.elf)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert child.stdout is not None
        qemu_pid = int(child.stdout.readline())
        assert not _gone(qemu_pid)
        child.send_signal(signum)
        child.wait(timeout=10)
        deadline = time.monotonic() + 5
        while not _gone(qemu_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(qemu_pid), f"QEMU pid {qemu_pid} survived its runner ({signum.name})"
    finally:
        child.kill()
        child.wait()


def test_missing_elf_is_reported(tmp_path: Path) -> None:
    with (
        pytest.raises(QemuError, match=r"firmware ELF .*nope\.elf does not exist"),
        run_qemu(tmp_path / "nope.elf"),
    ):
        pass


def test_measure_app_needs_its_inputs(tmp_path: Path) -> None:
    with pytest.raises(FirmwareBuildError, match=r"APP=measure needs INPUTS_DIR with tme_inputs\.c"):
        build_firmware(
            "qemu_netduinoplus2", FIXTURE_MODEL_DIR, tmp_path / "build", app=AppOptions(app="measure")
        )


def test_measure_app_counts_the_model_alone(tmp_path: Path) -> None:
    """APP=measure (export.cgen.qemu): the null model's invoke is one `bx lr`, so the count with the
    call overhead subtracted is exactly 1; the fixture's outputs follow its formula."""
    from tinyml_exp.export.cgen import qemu

    empty = qemu.measure(
        FIXTURE_MODEL_DIR.parent / "null_model", np.zeros((2, 1), np.uint8), tmp_path / "null"
    )
    assert empty.instructions == [1, 1]
    x = np.random.default_rng(3).integers(-128, 128, size=(3, 784), dtype=np.int8)
    run = qemu.measure(FIXTURE_MODEL_DIR, x, tmp_path / "fixture")
    sums = np.stack([x[:, k::10].astype(np.int64).sum(axis=1) >> 3 for k in range(10)], axis=1)
    assert np.array_equal(run.outputs.view(np.int8), np.clip(sums, -128, 127))
    assert len(set(run.instructions)) == 1 and run.instructions[0] > 784  # one pass over the input


def test_infer_random_inputs_made_on_the_device_match_the_python_generator(device: DeviceClient) -> None:
    # The same PRNG in C on the Cortex-M4 and in numpy (PROTOCOL.md §4.7): 20 inputs, one request.
    inputs = protocol.random_inputs(2026, 0, 20, 784)
    results = device.infer_random(2026, 0, 20)
    assert [r.output for r in results] == [fixture_reference(x.tobytes()) for x in inputs]
    assert len({r.count for r in results}) == 1  # data-independent work, exact under -icount
    assert device.infer(inputs[3].tobytes()) == results[3]  # the same input sent over the link
