"""Reach the board a benchmark runs on: start QEMU, or flash a real board and open its port.

    with open_device(settings, build, emulated=True, expected=identity) as link:
        link.infer(...)

On an emulated target with no port given, QEMU is started with the run's ELF on a free local
port and always stopped when the block ends (normally, on an error or on Ctrl-C); an emulator
that stops answering mid-run is restarted (`QemuSupervisor`, counted in `link/device_resets`). On a real
board the firmware is flashed with the configured command unless `flash` is None, then the port
is opened. Either way the block starts only once the firmware answered and runs the expected
model.
"""

from __future__ import annotations

import logging
import shlex
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import serial

from tinyml_exp.errors import ConfigError, TinymlExpError
from tinyml_exp.hardware.build import FirmwareBuild
from tinyml_exp.hardware.link import ModelIdentity, ReliableLink
from tinyml_exp.hardware.qemu import QemuSupervisor
from tinyml_exp.hardware.tools import require_tools

log = logging.getLogger(__name__)

# firmware board -> QEMU machine that runs it
QEMU_MACHINES = {"qemu_netduinoplus2": "netduinoplus2"}
_FLASH_TIMEOUT_S = 180.0
_POLL_S = 0.05


class FlashError(TinymlExpError):
    """The flash command failed."""


@dataclass(frozen=True)
class BenchmarkSettings:
    """`benchmark.*` with the target's defaults filled in (see settings.BenchmarkConfig)."""

    port: str | None
    baudrate: int
    flash: str | None
    timeout_s: float
    retries: int
    connect_timeout_s: float
    samples: int | None
    warmup: int
    repeats: int
    clock_hz: float
    progress: bool
    layers: bool = False  # also measure every kernel call (a profiling build, hardware/layers.py)

    @classmethod
    def from_config(cls, bench: Any, target_clock_hz: float) -> BenchmarkSettings:
        return cls(
            port=bench.port,
            baudrate=int(bench.baudrate),
            flash=bench.flash,
            timeout_s=float(bench.timeout_s),
            retries=int(bench.retries),
            connect_timeout_s=float(bench.connect_timeout_s),
            samples=bench.samples,
            warmup=int(bench.warmup),
            repeats=int(bench.repeats),
            clock_hz=float(bench.clock_hz or target_clock_hz),
            progress=bool(bench.progress),
            layers=bool(bench.get("layers", False)),
        )


def open_port(url: str, baudrate: int = 115200) -> serial.SerialBase:
    """A pyserial port for a tty path or URL; TCP without Nagle's delay for socket:// URLs."""
    port = serial.serial_for_url(url, baudrate=baudrate, timeout=_POLL_S)
    sock = getattr(port, "_socket", None)  # pyserial's socket:// keeps it there, with no option for this
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return port


def flash_command(template: str, build: FirmwareBuild, port: str | None) -> list[str]:
    """The flash command line: the template split like a shell line, {elf} {bin} {port} filled in
    per argument (so paths with spaces stay one argument)."""
    values = {"elf": str(build.elf), "bin": str(build.bin), "port": port or ""}
    try:
        return [arg.format(**values) for arg in shlex.split(template)]
    except (KeyError, IndexError, ValueError) as e:
        raise ConfigError(
            f"benchmark.flash={template!r} is not a valid command template ({e}); "
            "placeholders are {elf}, {bin} and {port}"
        ) from e


def flash_board(template: str, build: FirmwareBuild, port: str | None) -> None:
    command = flash_command(template, build, port)
    if not command:
        raise ConfigError("benchmark.flash is empty: give a command or null to skip flashing")
    require_tools(command[0])
    log.info("flashing: %s", " ".join(shlex.quote(c) for c in command))
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_FLASH_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as e:
        raise FlashError(
            f"flash command did not finish within {_FLASH_TIMEOUT_S:g} s: {' '.join(command)}"
        ) from e
    if done.returncode != 0:
        tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-5:])
        raise FlashError(
            f"flashing failed (exit {done.returncode}): {' '.join(command)}: {tail}; is the board connected "
            "(ST-LINK: try --connect-under-reset)? Set benchmark.flash=null if it is flashed already"
        )


def board_hint(settings: BenchmarkSettings) -> str:
    return (
        "check that the board is plugged in and powered, that it runs this run's firmware "
        f"(benchmark.flash={settings.flash!r}), and that benchmark.port={settings.port} and "
        f"benchmark.baudrate={settings.baudrate} are right"
    )


@contextmanager
def open_device(
    settings: BenchmarkSettings,
    build: FirmwareBuild | None,
    *,
    emulated: bool,
    expected: ModelIdentity | None,
) -> Iterator[ReliableLink]:
    """A connected `ReliableLink` to the board running `build` (see the module docstring); `build`
    may be None for a board that is flashed already (a port given, `settings.flash` None)."""
    common = {
        "timeout_s": settings.timeout_s,
        "retries": settings.retries,
        "connect_timeout_s": settings.connect_timeout_s,
        "expected": expected,
    }
    if build is None and (settings.port is None or settings.flash):
        raise ConfigError(
            "no firmware to start on QEMU or to flash: set benchmark.port and benchmark.flash=null"
        )
    if settings.port is None:
        assert build is not None
        if not emulated:
            raise ConfigError(
                "benchmark.port is not set: give the board's serial port, e.g. benchmark.port=/dev/ttyACM0"
            )
        machine = QEMU_MACHINES.get(build.board)
        if machine is None:
            raise ConfigError(f"no QEMU machine runs firmware board {build.board!r}; set benchmark.port")
        with QemuSupervisor(build.elf, machine=machine) as qemu:
            hint = f"QEMU ({machine}) runs {build.elf} but the firmware does not answer; is it a tinyml_exp firmware?"
            with ReliableLink(qemu.open_serial, qemu.url, hint=hint, restart=qemu.restart, **common) as link:
                link.connect()
                yield link
        return
    if settings.flash and build is not None:
        flash_board(settings.flash, build, settings.port)
    port, baudrate = settings.port, settings.baudrate
    with ReliableLink(lambda: open_port(port, baudrate), port, hint=board_hint(settings), **common) as link:
        link.connect()
        yield link
