"""A small client for the firmware's serial protocol, over any pyserial port.

    with DeviceClient.open("socket://127.0.0.1:4321") as device:   # or "/dev/ttyACM0"
        info = device.connect()                 # pings IDENTIFY until the device answers
        output, count = device.infer(input_bytes)

One request at a time; each reply is matched on its sequence number, so a late reply to an
earlier, timed-out request is recognised and dropped. Retries, progress and metrics belong to the
caller (the benchmark stage); this class only raises precise errors.
"""

from __future__ import annotations

import logging
import time
from types import TracebackType

import serial

from tinyml_exp.errors import TinymlExpError
from tinyml_exp.hardware import protocol
from tinyml_exp.hardware.protocol import Command, DeviceFrame, DeviceInfo, Frame, InferResult

log = logging.getLogger(__name__)

# The IDENTIFY pings of connect() all carry this sequence number and requests never use it, so a
# late answer to a ping can never be taken for the reply to a request.
HANDSHAKE_SEQ = 0
# Upper bound on one pyserial read; reads return earlier as soon as the bytes asked for are there.
_POLL_S = 0.05
# Handshake filler: grows by doubling, so a partial frame of n bytes is flushed after about
# log2(n / 16) pings with at most 2n bytes sent; 4 KB takes 0.36 s at 115200 baud.
_FILLER_MIN_BYTES = 16
_FILLER_MAX_BYTES = 4096


class DeviceError(TinymlExpError):
    """The device did not answer as the protocol requires."""


class DeviceLinkError(DeviceError):
    """The serial port itself failed (closed by the other end, unplugged)."""


class DeviceTimeoutError(DeviceError):
    """No (matching) reply within the timeout."""


class DeviceResetError(DeviceError):
    """The device sent a BOOT frame while a reply was awaited: it restarted and the request is lost."""


class DeviceErrorReply(DeviceError):
    """The device answered a request with an ERROR frame."""

    def __init__(self, request: int, error: protocol.ErrorReply) -> None:
        self.error = error
        try:
            name = Command(request).name
        except ValueError:
            name = f"0x{request:02X}"
        super().__init__(
            f"device rejected {name}: {error.code.name} (detail {error.detail}, "
            f"request cmd 0x{error.command:02X})"
        )


class DeviceClient:
    """Requests and replies over an open pyserial port (socket://, rfc2217:// or a tty)."""

    def __init__(self, port: serial.SerialBase, *, timeout_s: float = 5.0) -> None:
        self._port = port
        self._port.timeout = _POLL_S
        self._decoder = protocol.FrameDecoder()
        self._pending: list[Frame] = []
        self._seq = HANDSHAKE_SEQ
        self.timeout_s = timeout_s
        self.info: DeviceInfo | None = None

    @classmethod
    def open(cls, url: str, *, baudrate: int = 115200, timeout_s: float = 5.0) -> DeviceClient:
        """Opens a pyserial URL (`socket://127.0.0.1:PORT`) or a tty path (`/dev/ttyACM0`, 8N1)."""
        try:
            port = serial.serial_for_url(url, baudrate=baudrate, timeout=_POLL_S)
        except (serial.SerialException, OSError) as e:
            raise DeviceLinkError(f"cannot open serial port {url!r}: {e}") from e
        return cls(port, timeout_s=timeout_s)

    def close(self) -> None:
        self._port.close()

    def __enter__(self) -> DeviceClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- handshake and commands ------------------------------------------------------------------

    def connect(self, *, timeout_s: float = 10.0, ping_interval_s: float = 0.25) -> DeviceInfo:
        """Pings IDENTIFY until the device answers; returns (and keeps) its description.

        Needed once after the port opens: bytes sent before the firmware enables its UART are lost,
        and the device may still be collecting a frame cut short by a host that died. After each
        unanswered ping, a run of 0x00 bytes (16, 32, 64 ... up to 4 KB) goes before the next one:
        it completes such a partial frame (the device rejects it and then hunts again) and is
        discarded by a device that is already hunting (PROTOCOL.md §5).
        """
        deadline = time.monotonic() + timeout_s
        try:
            self._port.reset_input_buffer()
        except (serial.SerialException, OSError) as e:
            raise DeviceLinkError(f"cannot flush {self._port.name}: {e}") from e
        self._pending.clear()
        self._decoder.discard()  # a frame cut short before the handshake never completes
        pings, filler = 0, 0
        while time.monotonic() < deadline:
            self._write(bytes(filler) + protocol.encode_frame(Command.IDENTIFY, HANDSHAKE_SEQ))
            pings += 1
            filler = min(max(2 * filler, _FILLER_MIN_BYTES), _FILLER_MAX_BYTES)
            wait_until = min(deadline, time.monotonic() + ping_interval_s)
            while (frame := self._next_frame(wait_until)) is not None:
                if frame.cmd == protocol.reply_code(Command.IDENTIFY) and frame.seq == HANDSHAKE_SEQ:
                    self._learn(protocol.parse_identify(frame.payload))
                    log.info(
                        "device answered after %d ping(s): model %s (build 0x%08x) on %s",
                        pings,
                        self.info.model_name,
                        self.info.build_id,
                        self.info.board_name,
                    )
                    return self.info
                log.debug("handshake: ignored frame cmd=0x%02x seq=%d", frame.cmd, frame.seq)
        version = self._decoder.stats.last_bad_version
        other = (
            f": the device sends protocol version {version} frames, this host speaks version "
            f"{protocol.PROTOCOL_VERSION}; rebuild and flash the firmware from this checkout"
            if version is not None
            else ""
        )
        # No guess about the cause here: the caller knows whether the device ever answered.
        raise DeviceTimeoutError(
            f"no IDENTIFY reply within {timeout_s:g} s ({pings} pings) on {self._port.name}{other}"
        )

    def identify(self) -> DeviceInfo:
        return self._learn(protocol.parse_identify(self.request(Command.IDENTIFY).payload))

    def _learn(self, info: DeviceInfo) -> DeviceInfo:
        """Keeps the device's description; replies may now be as long as it says (ECHO, INFER)."""
        self.info = info
        self._decoder.max_payload = max(
            protocol.DEFAULT_MAX_REPLY_PAYLOAD_BYTES,
            info.max_request_payload_bytes,
            protocol.COUNT_BYTES + info.output.size_bytes,
        )
        return info

    def infer(self, input_bytes: bytes, *, timeout_s: float | None = None) -> InferResult:
        """Runs one inference: raw input tensor bytes in, raw output tensor bytes + count out."""
        info = self.info if self.info is not None else self.identify()
        if len(input_bytes) != info.input.size_bytes:
            raise ValueError(
                f"input of {len(input_bytes)} bytes, the device's model {info.model_name!r} expects "
                f"{info.input.size_bytes} ({info.input.dtype_name} {info.input.shape})"
            )
        reply = self.request(Command.INFER, bytes(input_bytes), timeout_s=timeout_s)
        return protocol.parse_infer_reply(reply.payload, info.output.size_bytes)

    def infer_random(
        self, seed: int, first: int, count: int, *, timeout_s: float | None = None
    ) -> list[InferResult]:
        """Runs the model on inputs `first` ... `first + count - 1` that the device generates from
        `seed` (INFER_RANDOM, PROTOCOL.md §4.7; `protocol.random_inputs` makes the same bytes):
        one request, one reply with every count and output. A firmware without it refuses."""
        info = self.info if self.info is not None else self.identify()
        limit = protocol.max_random_count(info.output.size_bytes)
        if not 1 <= count <= limit:
            raise ValueError(
                f"count {count}: one INFER_RANDOM reply carries 1 ... {limit} outputs of this model"
            )
        self._decoder.max_payload = max(
            self._decoder.max_payload, count * (protocol.COUNT_BYTES + info.output.size_bytes)
        )
        try:
            reply = self.request(
                Command.INFER_RANDOM, protocol.encode_infer_random(seed, first, count), timeout_s=timeout_s
            )
        except DeviceErrorReply as e:
            if e.error.code != protocol.ErrorCode.UNKNOWN_COMMAND:
                raise
            raise DeviceError(
                "the firmware does not answer INFER_RANDOM: rebuild it from this checkout (APP=bench)"
            ) from e
        return protocol.parse_infer_random_reply(reply.payload, info.output.size_bytes, count)

    def layers(self, layers: int | None = None) -> list[int]:
        """Per-layer counts of the last inference (LAYERS, PROTOCOL.md §4.6); `layers` is the
        expected number. A firmware built without TME_PROFILE_LAYERS refuses: one clear error."""
        try:
            reply = self.request(Command.LAYERS)
        except DeviceErrorReply as e:
            if e.error.code != protocol.ErrorCode.UNKNOWN_COMMAND:
                raise
            raise DeviceError(
                "the firmware does not answer LAYERS: build it with -DTME_PROFILE_LAYERS "
                "(build_firmware(..., defines=['TME_PROFILE_LAYERS']); benchmark.layers=true does)"
            ) from e
        return protocol.parse_layers_reply(reply.payload, layers)

    def echo(self, payload: bytes) -> bytes:
        """The device sends `payload` back: a link test."""
        reply = self.request(Command.ECHO, payload).payload
        if reply != payload:
            raise DeviceError(f"ECHO returned {len(reply)} different bytes for {len(payload)} sent")
        return reply

    def request(self, cmd: int, payload: bytes = b"", *, timeout_s: float | None = None) -> Frame:
        """Sends one request and returns its successful reply frame.

        Raises DeviceErrorReply for an ERROR answer, DeviceResetError if the device announces a
        restart meanwhile, DeviceTimeoutError if nothing matching arrives in time. Frames for
        other sequence numbers (late replies) are dropped.
        """
        seq = self._next_seq()
        self._write(protocol.encode_frame(cmd, seq, payload))
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        while (frame := self._next_frame(deadline)) is not None:
            if frame.cmd == DeviceFrame.BOOT:
                raise DeviceResetError(
                    f"device restarted (BOOT frame) while waiting for reply {seq} to 0x{cmd:02X}"
                )
            if frame.seq != seq:
                log.debug("dropped stale frame cmd=0x%02x seq=%d (waiting for %d)", frame.cmd, frame.seq, seq)
                continue
            if frame.cmd == DeviceFrame.ERROR:
                raise DeviceErrorReply(cmd, protocol.parse_error(frame.payload))
            if frame.cmd != protocol.reply_code(cmd):
                raise protocol.ProtocolError(
                    f"reply {seq} has cmd 0x{frame.cmd:02X}, expected 0x{cmd | 0x80:02X}"
                )
            return frame
        raise DeviceTimeoutError(
            f"no reply to 0x{cmd:02X} (seq {seq}) within {self.timeout_s if timeout_s is None else timeout_s} s"
        )

    # --- raw access, for link tests and recovery logic ---------------------------------------------

    def send_raw(self, data: bytes) -> None:
        """Writes bytes as they are (e.g. a deliberately corrupted frame)."""
        self._write(data)

    def receive(self, timeout_s: float) -> Frame | None:
        """The next valid frame from the device, whatever it is, or None after `timeout_s`."""
        return self._next_frame(time.monotonic() + timeout_s)

    # --- internals -------------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = self._seq % 255 + 1  # 1..255; 0 is the handshake's
        return self._seq

    def _write(self, data: bytes) -> None:
        try:
            self._port.write(data)
        except (serial.SerialException, OSError) as e:
            raise DeviceLinkError(f"writing to {self._port.name} failed: {e}") from e

    def _next_frame(self, deadline: float) -> Frame | None:
        """The next decoded frame, or None once `deadline` (time.monotonic) has passed."""
        while not self._pending:
            if time.monotonic() >= deadline:
                return None
            try:
                data = self._port.read(self._decoder.bytes_wanted())
            except (serial.SerialException, OSError) as e:
                raise DeviceLinkError(f"reading from {self._port.name} failed: {e}") from e
            if data:
                self._pending.extend(self._decoder.feed(data))
        return self._pending.pop(0)
