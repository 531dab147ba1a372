"""A benchmark link that heals (issue 11): long streams on QEMU, quiet and beside CPU hogs; a
firmware that hangs on purpose after N requests, healed by its watchdog or by the host
restarting the emulator; and what the error says when nothing helps."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from tests.bench_models import small_model
from tests.helpers import require_commands
from tinyml_exp.hardware.bench import reference_outputs, stream
from tinyml_exp.hardware.build import FIXTURE_MODEL_DIR, FirmwareBuild, build_firmware
from tinyml_exp.hardware.link import LinkFailedError, ReliableLink
from tinyml_exp.hardware.qemu import QemuSupervisor

log = logging.getLogger(__name__)

pytestmark = [pytest.mark.firmware, require_commands("arm-none-eabi-gcc", "make", "qemu-system-arm")]

BOARD = "qemu_netduinoplus2"
HANG_AFTER = 40  # INFER requests the test firmware answers after each boot
SOAK_SAMPLES = 3000
HOG_SECONDS = 300  # upper bound on a hog's life; the test stops them as soon as it is done


def fixture_reference(x: bytes) -> bytes:
    """What the fixture model computes (firmware/tests/fixture_model/model.h)."""
    values = np.frombuffer(x, dtype=np.int8).astype(np.int32)
    sums = np.array([values[k::10].sum() for k in range(10)])
    return np.clip(sums >> 3, -128, 127).astype(np.int8).tobytes()


def fixture_inputs(n: int, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, 784, dtype=np.int8).tobytes() for _ in range(n)]


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FirmwareBuild]:
    def build(name: str, *defines: str) -> FirmwareBuild:
        return build_firmware(BOARD, FIXTURE_MODEL_DIR, tmp_path_factory.mktemp(name), defines=defines)

    return {
        "normal": build("normal"),
        "hang": build("hang", f"TME_TEST_HANG_AFTER={HANG_AFTER}"),
        "hang_no_watchdog": build(
            "hang_nowd", f"TME_TEST_HANG_AFTER={HANG_AFTER}", "TME_PORT_HAVE_WATCHDOG=0"
        ),
    }


@contextmanager
def qemu_link(elf: Path, **kwargs) -> Iterator[ReliableLink]:
    """As the benchmark opens QEMU (session.open_device): restartable, a connected link."""
    with QemuSupervisor(elf) as qemu:
        options = {"timeout_s": 10.0, "retries": 3, "connect_timeout_s": 20.0, "restart": qemu.restart}
        with ReliableLink(qemu.open_serial, qemu.url, **{**options, **kwargs}) as link:
            link.connect()
            yield link


@contextmanager
def cpu_hogs(count: int = 2) -> Iterator[None]:
    """Busy-loop processes beside the emulator, each bounded in time and stopped at the end."""
    code = f"import time\nend = time.monotonic() + {HOG_SECONDS}\nwhile time.monotonic() < end:\n    pass\n"
    hogs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(count)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def check_complete(run, inputs: list[bytes]) -> None:
    assert run.error is None, run.error
    assert run.completed == len(inputs)
    assert run.outputs == [fixture_reference(x) for x in inputs]
    assert len(set(run.counts)) == 1  # -icount: the same exact instruction count for every sample


@pytest.mark.slow
def test_soak_thousands_of_samples_on_a_busy_machine() -> None:
    """Issue 11: the stream used to stop after a few hundred samples (USART livelock) when the
    machine was loaded. With two busy loops beside the emulator it must pass every time, with no
    timeout and no reset: the link does not merely heal, it holds. (A quiet-machine run of the
    same soak was dropped for suite time: the busy one is the stricter timing.) The small CNN of
    the benchmark tests (256-byte int8 inputs, the receive ring's size) keeps 3,000 samples to
    about a minute."""
    model = small_model("int8")
    rng = np.random.default_rng(1)
    inputs = [rng.integers(-128, 128, 256, dtype=np.int8).tobytes() for _ in range(SOAK_SAMPLES)]
    expected = [row.tobytes() for row in reference_outputs(model.tflite, inputs)]
    with cpu_hogs(2), qemu_link(model.firmware.elf) as link:
        run = stream(link, inputs, warmup=1, progress=False)
    assert run.error is None, run.error
    assert run.completed == SOAK_SAMPLES and run.outputs == expected  # bit-exact with TFLite
    metrics = run.stats.metrics()
    assert metrics["link/device_resets"] == 0 and metrics["link/timeouts"] == 0, metrics
    assert link.restarts == 0
    log.info(
        "soak (two CPU hogs): %d samples in %.1f s = %.1f samples/s, %.0f B/s on the wire",
        run.completed,
        run.seconds,
        run.completed / run.seconds,
        run.wire_bytes / run.seconds,
    )


@pytest.mark.slow
def test_a_hang_is_healed_by_the_watchdog(builds: dict[str, FirmwareBuild]) -> None:
    """The firmware stops answering (and kicking) after 40 requests: the software watchdog resets
    it, it sends BOOT, the host identifies it again and resends the lost sample."""
    inputs = fixture_inputs(100, seed=2)
    with qemu_link(builds["hang"].elf) as link:
        run = stream(link, inputs, progress=False)
    check_complete(run, inputs)
    metrics = run.stats.metrics()
    assert metrics["link/device_resets"] >= 2  # hangs at requests 41 and 81
    assert link.restarts == 0  # healed on the device: the emulator was never restarted


@pytest.mark.slow
def test_a_hang_without_watchdog_is_healed_by_restarting_the_emulator(
    builds: dict[str, FirmwareBuild],
) -> None:
    inputs = fixture_inputs(60, seed=3)
    with qemu_link(builds["hang_no_watchdog"].elf, timeout_s=1.0, retries=1) as link:
        run = stream(link, inputs, progress=False)
    check_complete(run, inputs)
    assert link.restarts == 1 and run.stats.metrics()["link/device_resets"] >= 1


def test_a_device_that_stops_answering_says_so_not_wrong_port(builds: dict[str, FirmwareBuild]) -> None:
    inputs = fixture_inputs(HANG_AFTER + 5, seed=4)
    with qemu_link(builds["hang_no_watchdog"].elf, timeout_s=0.5, retries=1, max_restarts=0) as link:
        run = stream(link, inputs, progress=False)
    assert run.completed == HANG_AFTER and isinstance(run.error, LinkFailedError)
    message = str(run.error)
    assert message.startswith(
        f"the device stopped answering mid-run after {HANG_AFTER} answered requests "
        "(restarted by the host 0 times, at most 0 in a row): request failed 2 times on socket://"
    )
    assert "port" not in message.split(": request failed")[0] and "port right" not in message
