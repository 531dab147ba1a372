"""A link to the benchmark firmware that survives what serial links do, for long benchmark runs.

`DeviceClient` raises precise errors for one request; `ReliableLink` decides what to do about
them, per request:

- timeout (reply lost or never sent)  → handshake again (flushes a half-received frame), retry;
- corrupted request (device: BAD_CRC) or malformed reply → retry;
- device reset (BOOT frame)          → handshake, check it still runs the same model, retry;
- link lost (port closed, TCP cut)   → reopen the port, handshake, check the model, retry.

A request is retried at most `retries` times. Then, if the link was given a `restart` (QEMU:
kill the hung emulator, start a fresh one), the device is restarted, identified again and the
same request sent again, up to `max_restarts` times in a row; each restart counts as a device
reset. Otherwise `LinkFailedError` says what was seen: how many requests the device answered
before it stopped, how often it was restarted, the last error. Inference is a pure function of
its input, so a retried request is harmless. Only the first handshake that never gets an answer
raises `DeviceNotAnsweringError` with the port and what to check (the wrong-port hint).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

import numpy as np
import serial

from tinyml_exp.errors import TinymlExpError
from tinyml_exp.hardware import protocol
from tinyml_exp.hardware.client import (
    DeviceClient,
    DeviceError,
    DeviceErrorReply,
    DeviceLinkError,
    DeviceResetError,
    DeviceTimeoutError,
)
from tinyml_exp.hardware.protocol import DeviceInfo, InferResult, TensorInfo

log = logging.getLogger(__name__)

# numpy dtype name -> TFLite TensorType code, as the IDENTIFY reply carries it.
DTYPE_CODES = {name: code for code, name in protocol.DTYPE_NAMES.items()}
# Pause before reopening a lost port: a USB device re-enumerating, a TCP server accepting again.
_REOPEN_PAUSE_S = 0.2


class LinkFailedError(DeviceError):
    """A request failed more often than `retries` allows."""


class DeviceNotAnsweringError(DeviceError):
    """The device never answered the first handshake."""


class IdentityMismatchError(TinymlExpError):
    """The device runs another model (or another version of it) than the run measures."""


@dataclass(frozen=True)
class TensorIdentity:
    dtype_code: int
    shape: tuple[int, ...]
    scale: float
    zero_point: int

    @classmethod
    def from_spec(
        cls, shape: tuple[int, ...], dtype: np.dtype, scale: float, zero_point: int
    ) -> TensorIdentity:
        return cls(
            DTYPE_CODES[np.dtype(dtype).name], tuple(int(d) for d in shape), float(scale), int(zero_point)
        )

    def differences(self, which: str, info: TensorInfo) -> list[str]:
        ours = (protocol.DTYPE_NAMES[self.dtype_code], self.shape, np.float32(self.scale), self.zero_point)
        theirs = (info.dtype_name, info.shape, np.float32(info.scale), info.zero_point)
        names = ("dtype", "shape", "scale", "zero point")
        return [
            f"{which} {n} {t} (expected {o})" for n, o, t in zip(names, ours, theirs, strict=True) if o != t
        ]


@dataclass(frozen=True)
class ModelIdentity:
    """What the device must report for the model being measured (PROTOCOL.md §4.1)."""

    build_id: int  # zlib.crc32 of the .tflite
    input: TensorIdentity
    output: TensorIdentity
    model_name: str | None = None  # None: not checked

    @classmethod
    def from_tflite(cls, tflite: bytes, model_name: str | None = None) -> ModelIdentity:
        import zlib

        from tinyml_exp.evaluate.interpreters import io_specs

        specs = io_specs(tflite)
        inp, out = (TensorIdentity.from_spec(s.shape, s.dtype, s.scale, s.zero_point) for s in specs)
        return cls(zlib.crc32(tflite) & 0xFFFFFFFF, inp, out, model_name)

    def mismatches(self, info: DeviceInfo) -> list[str]:
        problems = []
        if info.build_id != self.build_id:
            problems.append(f"build id 0x{info.build_id:08x} (expected 0x{self.build_id:08x})")
        if self.model_name is not None and info.model_name != self.model_name:
            problems.append(f"model name {info.model_name!r} (expected {self.model_name!r})")
        problems += self.input.differences("input", info.input)
        problems += self.output.differences("output", info.output)
        return problems


@dataclass
class LinkStats:
    requests: int = 0  # INFER requests sent, retries included
    retries: int = 0
    timeouts: int = 0
    corrupted: int = 0  # requests the device received damaged (BAD_CRC) + malformed replies
    device_resets: int = 0
    reconnects: int = 0  # port reopened after the link was lost
    bytes_sent: int = 0  # on the wire, framing included (successful and failed requests)
    bytes_received: int = 0  # frames of successful replies, framing included

    def metrics(self) -> dict[str, float]:
        return {
            f"link/{name}": float(value) for name, value in vars(self).items() if not name.startswith("bytes")
        }


class ReliableLink:
    """Inference requests with timeouts, retries and recovery over a port opened by `open_port`.

    `open_port` is called again after the link is lost (e.g. `lambda: serial.serial_for_url(url)`),
    so it must open a fresh connection each time. `hint` finishes the error message when the
    device never answers ("check that ...").
    """

    def __init__(
        self,
        open_port: Callable[[], serial.SerialBase],
        port_name: str,
        *,
        timeout_s: float = 5.0,
        retries: int = 3,
        connect_timeout_s: float = 20.0,
        expected: ModelIdentity | None = None,
        hint: str = "check that the board is connected and runs a tinyml_exp firmware, and the port is right",
        restart: Callable[[], None] | None = None,
        max_restarts: int = 2,
    ) -> None:
        self._open_port = open_port
        self.port_name = port_name
        self.timeout_s = timeout_s
        self.retries = retries
        self.connect_timeout_s = connect_timeout_s
        self.expected = expected
        self.hint = hint
        self._restart = restart
        self.max_restarts = max_restarts  # in a row, for one request
        self.restarts = 0  # device restarts done by the host (also counted in stats.device_resets)
        self.answered = 0  # requests the device answered
        self.stats = LinkStats()
        self.info: DeviceInfo | None = None
        self._client: DeviceClient | None = None

    def __enter__(self) -> ReliableLink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def connect(self) -> DeviceInfo:
        """Opens the port, waits for the firmware to answer and checks which model it runs."""
        try:
            self._client = DeviceClient(self._open_port(), timeout_s=self.timeout_s)
            info = self._client.connect(timeout_s=self.connect_timeout_s)
        except DeviceTimeoutError as e:
            self.close()
            raise DeviceNotAnsweringError(
                f"no answer from the device on {self.port_name} within {self.connect_timeout_s:g} s: {self.hint}"
            ) from e
        except (DeviceLinkError, serial.SerialException, OSError) as e:
            self.close()
            raise DeviceNotAnsweringError(f"cannot open {self.port_name}: {e}; {self.hint}") from e
        self._check(info)
        return info

    def infer(self, data: bytes) -> InferResult:
        """One inference, retried after recoverable failures, the device restarted when retries
        do not help and a `restart` was given (see the module docstring)."""
        in_a_row = 0
        while True:
            try:
                result = self._infer_with_retries(data)
            except LinkFailedError as e:
                if self._restart is None or in_a_row >= self.max_restarts:
                    raise self._failed(e) from e.__cause__
                in_a_row += 1
                self._restart_device(e)
                continue
            self.answered += 1
            return result

    def layers(self, layers: int | None = None) -> list[int]:
        """Per-layer counts of the last inference (a profiling firmware, PROTOCOL.md §4.6). Not
        retried: after a device restart they would describe no inference."""
        if self._client is None:
            raise LinkFailedError(
                f"no connection to the device on {self.port_name} to ask for its layer counts"
            )
        return self._client.layers(layers)

    def _failed(self, error: LinkFailedError) -> LinkFailedError:
        restarted = (
            f" (restarted by the host {self.restarts} times, at most {self.max_restarts} in a row)"
            if self._restart is not None
            else ""
        )
        return LinkFailedError(
            f"the device stopped answering mid-run after {self.answered} answered requests{restarted}: {error}"
        )

    def _restart_device(self, error: Exception) -> None:
        log.warning("the device on %s stopped answering (%s); restarting it", self.port_name, error)
        assert self._restart is not None
        self.close()
        self._restart()
        self.restarts += 1
        self.stats.device_resets += 1
        try:
            self._client = DeviceClient(self._open_port(), timeout_s=self.timeout_s)
            self._check(self._client.connect(timeout_s=self.connect_timeout_s))
        except (DeviceTimeoutError, DeviceLinkError, serial.SerialException, OSError) as e:
            self.close()  # the next attempt reopens the port
            log.warning("the restarted device does not answer yet: %s", e)

    def _infer_with_retries(self, data: bytes) -> InferResult:
        recovery: str | None = None if self._client is not None else "reopen"
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt > 0:
                self.stats.retries += 1
                log.info("retrying request (%d/%d) after %s: %s", attempt, self.retries, recovery, last)
            try:
                if recovery is not None:
                    self._recover(recovery)
                    recovery = None
                return self._request(data)
            except DeviceResetError as e:
                self.stats.device_resets += 1
                recovery, last = "handshake", e
            except DeviceTimeoutError as e:
                self.stats.timeouts += 1
                recovery, last = "handshake", e
            except DeviceErrorReply as e:
                if e.error.code != protocol.ErrorCode.BAD_CRC:
                    raise  # the device refuses this request itself: retrying cannot help
                self.stats.corrupted += 1
                last = e
            except protocol.ProtocolError as e:
                self.stats.corrupted += 1
                recovery, last = "handshake", e
            except (DeviceLinkError, serial.SerialException, OSError) as e:
                recovery, last = "reopen", e
        hint = (
            f"; if one inference takes longer than {self.timeout_s:g} s, raise benchmark.timeout_s"
            if isinstance(last, DeviceTimeoutError)
            else ""
        )
        raise LinkFailedError(
            f"request failed {self.retries + 1} times on {self.port_name} (benchmark.retries={self.retries}); "
            f"last error: {last}{hint}"
        ) from last

    # --- internals -------------------------------------------------------------------------------

    def _request(self, data: bytes) -> InferResult:
        assert self._client is not None and self.info is not None
        self.stats.requests += 1
        self.stats.bytes_sent += protocol.OVERHEAD_BYTES + len(data)
        result = self._client.infer(data, timeout_s=self.timeout_s)
        self.stats.bytes_received += protocol.OVERHEAD_BYTES + protocol.COUNT_BYTES + len(result.output)
        return result

    def _recover(self, how: str) -> None:
        if how == "reopen" or self._client is None:
            self.close()
            time.sleep(_REOPEN_PAUSE_S)
            self._client = DeviceClient(self._open_port(), timeout_s=self.timeout_s)
            self.stats.reconnects += 1
        log.info("resynchronising with the device on %s", self.port_name)
        self._check(self._client.connect(timeout_s=self.timeout_s))

    def _check(self, info: DeviceInfo) -> None:
        self.info = info
        if self.expected is None:
            return
        problems = self.expected.mismatches(info)
        if problems:
            raise IdentityMismatchError(
                f"the device on {self.port_name} runs another model than this run's: {'; '.join(problems)} "
                f"(device reports model {info.model_name!r} on board {info.board_name!r}); flash the firmware "
                "built from this model (benchmark.flash) or point benchmark.port at the board that has it"
            )
