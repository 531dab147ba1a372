"""Host side of the firmware's binary serial protocol, version 2 (normative: `firmware/PROTOCOL.md`).

Python and numpy, no I/O: frame encoding, an incremental frame decoder that resynchronises after
garbage, and strict parsers for the reply payloads. Anything that does not match the frozen
layout exactly raises `ProtocolError`; numbers travel as little-endian integers (the tensor scale
as its IEEE-754 bit pattern).
"""

from __future__ import annotations

import logging
import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

import numpy as np

from tinyml_exp.errors import TinymlExpError

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 2
# Header CRC-8 initial value; version 1 used 0x00 (which let `A5 00 00 00 00 00 00` pass as a
# header) and a VER 1 header is still checked that way, only to recognise a version 1 peer.
HCRC_INIT = 0xFF
HCRC_INIT_V1 = 0x00
SOF = 0xA5
HEADER_BYTES = 7  # SOF, VER, CMD, SEQ, LEN (u16), HCRC
CRC_BYTES = 4
OVERHEAD_BYTES = HEADER_BYTES + CRC_BYTES
MAX_PAYLOAD_BYTES = 0xFFFF
# Largest reply payload the decoder waits for before it knows the device (IDENTIFY replies are
# at most 572 bytes); a header announcing more is taken for a stray one (PROTOCOL.md §2.1).
DEFAULT_MAX_REPLY_PAYLOAD_BYTES = 4096
REPLY_FLAG = 0x80
COUNT_BYTES = 4  # the instruction / cycle count in front of an INFER reply's output tensor
MAX_RANK = 4


class Command(IntEnum):
    """Request codes (host -> device)."""

    IDENTIFY = 0x01
    INFER = 0x02
    ECHO = 0x03
    LAYERS = 0x04  # addition to version 2 (PROTOCOL.md §4.6): profiling firmware only
    INFER_RANDOM = 0x05  # addition to version 2 (PROTOCOL.md §4.7): inputs made on the device


class DeviceFrame(IntEnum):
    """Device -> host codes that are not a request code with REPLY_FLAG set."""

    ERROR = 0xF0
    BOOT = 0xF1


class ErrorCode(IntEnum):
    BAD_CRC = 0x01
    BAD_LENGTH = 0x02
    UNKNOWN_COMMAND = 0x03
    BAD_INPUT_SIZE = 0x04
    UNSUPPORTED_VERSION = 0x05


class CounterUnit(IntEnum):
    """What the 32-bit count of an INFER reply measures."""

    CYCLES = 0
    INSTRUCTIONS = 1


# TFLite TensorType code -> bytes per element, for the dtypes a model's I/O can have.
DTYPE_ITEMSIZE: dict[int, int] = {0: 4, 2: 4, 3: 1, 7: 2, 9: 1}
DTYPE_NAMES: dict[int, str] = {0: "float32", 2: "int32", 3: "uint8", 7: "int16", 9: "int8"}


class ProtocolError(TinymlExpError, ValueError):
    """Bytes that do not follow the protocol (malformed frame or payload): usually firmware and
    host of different versions."""


def crc8(data: bytes, init: int = 0) -> int:
    """CRC-8, poly 0x07, no reflection, no final XOR; init 0 is CRC-8/SMBUS."""
    crc = init
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def header_crc(header: bytes) -> int:
    """HCRC of header bytes 1..5 (VER first): initial value 0xFF, 0x00 for a version 1 header."""
    return crc8(header, HCRC_INIT_V1 if header[0] == 1 else HCRC_INIT)


def reply_code(command: int) -> int:
    """The CMD byte of a successful reply to `command`."""
    return command | REPLY_FLAG


@dataclass(frozen=True)
class Frame:
    cmd: int
    seq: int
    payload: bytes = b""


def encode_frame(cmd: int, seq: int, payload: bytes = b"", *, version: int = PROTOCOL_VERSION) -> bytes:
    """One complete frame. `version` exists only so tests can send another version."""
    for name, value in (("cmd", cmd), ("seq", seq), ("version", version)):
        if not 0 <= value <= 0xFF:
            raise ProtocolError(f"{name}={value} does not fit in one byte (expected 0..255)")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(f"payload of {len(payload)} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte limit")
    body = struct.pack("<BBBH", version, cmd, seq, len(payload))
    body += bytes([header_crc(body)])
    body += payload
    return bytes([SOF]) + body + struct.pack("<I", zlib.crc32(body))


@dataclass
class DecoderStats:
    """What the decoder threw away: bytes outside frames, and frames failing their CRC."""

    dropped_bytes: int = 0
    bad_headers: int = 0
    bad_crcs: int = 0
    bad_versions: int = 0
    last_bad_version: int | None = None  # VER of the last frame dropped for its version


class FrameDecoder:
    """Incremental decoder of device -> host frames.

    `feed()` accepts any chunking of the byte stream and returns the complete, checked frames.
    Bytes before a start marker, headers failing their CRC-8 and frames failing their CRC-32 are
    dropped (counted in `stats`) and the hunt restarts at the next start marker, so a stream that
    begins mid-frame or holds garbage recovers by itself. After a CRC-32 failure the hunt resumes
    right after the failed frame's start marker, not after its claimed length: when bytes were
    lost, the next real frame begins inside that length. A header announcing more than
    `max_payload` bytes is taken for a stray one too, so it cannot make the decoder wait for
    65 kB that never come.
    """

    def __init__(self, max_payload: int = DEFAULT_MAX_REPLY_PAYLOAD_BYTES) -> None:
        self._buffer = bytearray()
        self.max_payload = max_payload
        self.stats = DecoderStats()

    def bytes_wanted(self) -> int:
        """How many more bytes could complete the frame being received (at least 1)."""
        if len(self._buffer) < HEADER_BYTES:
            return HEADER_BYTES - len(self._buffer)
        length = min(int.from_bytes(self._buffer[4:6], "little"), self.max_payload)
        return max(1, HEADER_BYTES + length + CRC_BYTES - len(self._buffer))

    def discard(self) -> None:
        """Forgets a partially received frame (after a timeout: its missing bytes never come)."""
        self.stats.dropped_bytes += len(self._buffer)
        self._buffer.clear()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        while True:
            start = self._buffer.find(SOF)
            if start < 0:
                self.stats.dropped_bytes += len(self._buffer)
                self._buffer.clear()
                return frames
            if start > 0:
                self.stats.dropped_bytes += start
                del self._buffer[:start]
            if len(self._buffer) < HEADER_BYTES:
                return frames
            header = self._buffer[:HEADER_BYTES]
            length = int.from_bytes(header[4:6], "little")
            if header_crc(header[1:6]) != header[6] or length > self.max_payload:
                self.stats.bad_headers += 1
                self.stats.dropped_bytes += 1
                del self._buffer[:1]  # a stray 0xA5: look for the next marker
                continue
            total = HEADER_BYTES + length + CRC_BYTES
            if len(self._buffer) < total:
                return frames
            frame_bytes = bytes(self._buffer[:total])
            if not self._crc_ok(frame_bytes):
                self.stats.dropped_bytes += 1
                del self._buffer[:1]  # resume the hunt inside the rejected frame
                continue
            del self._buffer[:total]
            frame = self._check_version(frame_bytes)
            if frame is not None:
                frames.append(frame)

    def _crc_ok(self, frame_bytes: bytes) -> bool:
        if zlib.crc32(frame_bytes[1:-CRC_BYTES]) == int.from_bytes(frame_bytes[-CRC_BYTES:], "little"):
            return True
        self.stats.bad_crcs += 1
        log.debug("dropped a frame failing its CRC-32: %s", frame_bytes[:16].hex())
        return False

    def _check_version(self, frame_bytes: bytes) -> Frame | None:
        body = frame_bytes[1:-CRC_BYTES]
        if body[0] != PROTOCOL_VERSION:
            self.stats.bad_versions += 1
            self.stats.last_bad_version = body[0]
            log.warning("dropped a frame of protocol version %d (expected %d)", body[0], PROTOCOL_VERSION)
            return None
        return Frame(cmd=body[1], seq=body[2], payload=bytes(body[HEADER_BYTES - 1 :]))


# --- payloads -------------------------------------------------------------------------------------

_TENSOR = struct.Struct("<BB4HIiI")  # dtype, rank, dims[4], scale bits, zero point, bytes
_IDENTIFY_FIXED = struct.Struct("<BBHIII")  # version, counter unit, max payload, build id, clock, act.
_ERROR = struct.Struct("<BBI")  # error code, request cmd, detail


@dataclass(frozen=True)
class TensorInfo:
    """One model input or output as the device describes it; `real = scale * (q - zero_point)`."""

    dtype_code: int  # TFLite TensorType: 0 float32, 9 int8, ...
    shape: tuple[int, ...]
    scale: float
    zero_point: int
    size_bytes: int

    @property
    def dtype_name(self) -> str:
        return DTYPE_NAMES[self.dtype_code]


@dataclass(frozen=True)
class DeviceInfo:
    """The IDENTIFY reply."""

    protocol_version: int
    counter_unit: CounterUnit
    max_request_payload_bytes: int  # largest request payload the device accepts
    build_id: int  # zlib.crc32 of the .tflite the firmware's model was generated from
    clock_hz: int  # core clock the firmware configured
    activation_bytes: int  # the model's statically planned activation buffer, not the stack
    input: TensorInfo
    output: TensorInfo
    model_name: str
    board_name: str


class InferResult(NamedTuple):
    output: bytes
    count: int  # cycles or instructions (DeviceInfo.counter_unit) of one tme_model_invoke()


@dataclass(frozen=True)
class ErrorReply:
    code: ErrorCode
    command: int  # the CMD of the request that failed
    detail: int  # BAD_LENGTH: max length; BAD_INPUT_SIZE: expected size; BAD_CRC: device's CRC


def _encode_tensor(info: TensorInfo) -> bytes:
    dims = list(info.shape) + [0] * (MAX_RANK - len(info.shape))
    scale_bits = struct.unpack("<I", struct.pack("<f", info.scale))[0]
    return _TENSOR.pack(info.dtype_code, len(info.shape), *dims, scale_bits, info.zero_point, info.size_bytes)


def _decode_tensor(data: bytes, which: str) -> TensorInfo:
    dtype, rank, *rest = _TENSOR.unpack(data)
    dims, (scale_bits, zero_point, size_bytes) = rest[:MAX_RANK], rest[MAX_RANK:]
    if dtype not in DTYPE_ITEMSIZE:
        raise ProtocolError(
            f"{which} tensor: unknown dtype code {dtype} (expected one of {sorted(DTYPE_ITEMSIZE)})"
        )
    if not 1 <= rank <= MAX_RANK:
        raise ProtocolError(f"{which} tensor: rank {rank} outside 1..{MAX_RANK}")
    if any(dims[rank:]):
        raise ProtocolError(f"{which} tensor: dims beyond rank {rank} must be 0, got {dims}")
    shape = tuple(dims[:rank])
    expected = DTYPE_ITEMSIZE[dtype]
    for d in shape:
        expected *= d
    if size_bytes != expected:
        raise ProtocolError(
            f"{which} tensor: {size_bytes} bytes does not match shape {shape} of {DTYPE_NAMES[dtype]} ({expected})"
        )
    (scale,) = struct.unpack("<f", struct.pack("<I", scale_bits))
    return TensorInfo(dtype, shape, scale, zero_point, size_bytes)


def _take_string(payload: bytes, offset: int, which: str) -> tuple[str, int]:
    if offset >= len(payload):
        raise ProtocolError(f"IDENTIFY payload ends before the {which} length byte")
    length = payload[offset]
    raw = payload[offset + 1 : offset + 1 + length]
    if len(raw) != length:
        raise ProtocolError(f"IDENTIFY payload ends inside the {which} ({len(raw)} of {length} bytes)")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as e:
        raise ProtocolError(f"IDENTIFY {which} is not ASCII: {raw!r}") from e
    if not text.isprintable():
        raise ProtocolError(f"IDENTIFY {which} holds control characters: {text!r}")
    return text, offset + 1 + length


def encode_identify(info: DeviceInfo) -> bytes:
    """The IDENTIFY reply payload (what the firmware sends); used by tests and simulators."""
    fixed = _IDENTIFY_FIXED.pack(
        info.protocol_version,
        info.counter_unit,
        info.max_request_payload_bytes,
        info.build_id,
        info.clock_hz,
        info.activation_bytes,
    )
    strings = b""
    for text in (info.model_name, info.board_name):
        raw = text.encode("ascii")
        if len(raw) > 0xFF:
            raise ProtocolError(f"name {text!r} is longer than 255 bytes")
        strings += bytes([len(raw)]) + raw
    return fixed + _encode_tensor(info.input) + _encode_tensor(info.output) + strings


def parse_identify(payload: bytes) -> DeviceInfo:
    """Strict parser of the IDENTIFY reply payload."""
    tensors_end = _IDENTIFY_FIXED.size + 2 * _TENSOR.size
    if len(payload) < tensors_end + 2:
        raise ProtocolError(
            f"IDENTIFY payload of {len(payload)} bytes is shorter than the {tensors_end + 2} minimum"
        )
    version, unit, max_payload, build_id, clock_hz, activation = _IDENTIFY_FIXED.unpack_from(payload)
    if version != PROTOCOL_VERSION:
        raise ProtocolError(f"device speaks protocol version {version}, this host {PROTOCOL_VERSION}")
    try:
        counter_unit = CounterUnit(unit)
    except ValueError as e:
        raise ProtocolError(f"unknown counter unit {unit} (expected 0 cycles or 1 instructions)") from e
    tensor_at = _IDENTIFY_FIXED.size
    input_info = _decode_tensor(payload[tensor_at : tensor_at + _TENSOR.size], "input")
    output_info = _decode_tensor(payload[tensor_at + _TENSOR.size : tensors_end], "output")
    model_name, offset = _take_string(payload, tensors_end, "model name")
    board_name, offset = _take_string(payload, offset, "board name")
    if offset != len(payload):
        raise ProtocolError(f"IDENTIFY payload has {len(payload) - offset} trailing bytes")
    return DeviceInfo(
        protocol_version=version,
        counter_unit=counter_unit,
        max_request_payload_bytes=max_payload,
        build_id=build_id,
        clock_hz=clock_hz,
        activation_bytes=activation,
        input=input_info,
        output=output_info,
        model_name=model_name,
        board_name=board_name,
    )


def parse_infer_reply(payload: bytes, output_bytes: int) -> InferResult:
    """Strict parser of the INFER reply payload: u32 count, then exactly `output_bytes` bytes."""
    if len(payload) != COUNT_BYTES + output_bytes:
        raise ProtocolError(
            f"INFER reply of {len(payload)} bytes, expected {COUNT_BYTES + output_bytes} "
            f"(4-byte count + {output_bytes}-byte output)"
        )
    return InferResult(output=payload[COUNT_BYTES:], count=int.from_bytes(payload[:COUNT_BYTES], "little"))


def encode_layers_reply(counts: list[int] | tuple[int, ...]) -> bytes:
    """The LAYERS reply payload (what a profiling firmware sends): one little-endian u32 per layer."""
    if any(not 0 <= c <= 0xFFFFFFFF for c in counts):
        raise ProtocolError(f"layer counts must be u32 values, got {list(counts)}")
    return struct.pack(f"<{len(counts)}I", *counts)


def parse_layers_reply(payload: bytes, layers: int | None = None) -> list[int]:
    """Strict parser of the LAYERS reply payload; `layers`, when known, is the expected count."""
    if len(payload) % 4:
        raise ProtocolError(f"LAYERS reply of {len(payload)} bytes is not a whole number of u32 counts")
    if layers is not None and len(payload) != 4 * layers:
        raise ProtocolError(f"LAYERS reply has {len(payload) // 4} counts, the model has {layers} layers")
    return list(struct.unpack(f"<{len(payload) // 4}I", payload))


# --- INFER_RANDOM (PROTOCOL.md §4.7) ---------------------------------------------------------------

_RANDOM_REQUEST = struct.Struct("<IIH")  # seed, index of the first input, count
_GOLDEN = 0x9E3779B9
_MASK32 = 0xFFFFFFFF


def encode_infer_random(seed: int, first: int, count: int) -> bytes:
    """The INFER_RANDOM request payload: inputs `first` ... `first + count - 1` of `seed`."""
    if not (0 <= seed <= _MASK32 and 0 <= first <= _MASK32 and 1 <= count <= 0xFFFF):
        raise ProtocolError(
            f"INFER_RANDOM needs u32 seed and first index and 1 <= count <= 65535, got {seed}, {first}, {count}"
        )
    return _RANDOM_REQUEST.pack(seed, first, count)


def max_random_count(output_bytes: int) -> int:
    """The most inputs one INFER_RANDOM reply can carry (its payload is at most 65535 bytes)."""
    return MAX_PAYLOAD_BYTES // (COUNT_BYTES + output_bytes)


def parse_infer_random_reply(payload: bytes, output_bytes: int, count: int) -> list[InferResult]:
    """Strict parser of the INFER_RANDOM reply: `count` entries of u32 count + output bytes."""
    entry = COUNT_BYTES + output_bytes
    if len(payload) != count * entry:
        raise ProtocolError(
            f"INFER_RANDOM reply of {len(payload)} bytes, expected {count} x {entry} "
            f"(4-byte count + {output_bytes}-byte output per input)"
        )
    return [parse_infer_reply(payload[i * entry : (i + 1) * entry], output_bytes) for i in range(count)]


def random_states(seed: int, first: int, count: int) -> np.ndarray:
    """The PRNG state each input starts from: murmur3's fmix32 of seed + index * 0x9E3779B9, 0 -> 1."""
    x = (seed + np.arange(first, first + count, dtype=np.uint64) * _GOLDEN) & _MASK32
    x = x.astype(np.uint32)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x85EBCA6B)
    x ^= x >> np.uint32(13)
    x *= np.uint32(0xC2B2AE35)
    x ^= x >> np.uint32(16)
    x[x == 0] = 1
    return x


def random_inputs(seed: int, first: int, count: int, input_bytes: int) -> np.ndarray:
    """The raw input bytes INFER_RANDOM makes on the device, one row per input (uint8,
    `count` x `input_bytes`): byte k is the top byte of the state after the (k + 1)-th
    xorshift32 (13, 17, 5) step. The inputs are the lanes of one vector, so this is fast in numpy
    although each stream is sequential."""
    x = random_states(seed, first, count)
    out = np.empty((count, input_bytes), dtype=np.uint8)
    for k in range(input_bytes):
        x ^= x << np.uint32(13)
        x ^= x >> np.uint32(17)
        x ^= x << np.uint32(5)
        out[:, k] = x >> np.uint32(24)
    return out


def encode_error(error: ErrorReply) -> bytes:
    return _ERROR.pack(error.code, error.command, error.detail)


def parse_error(payload: bytes) -> ErrorReply:
    """Strict parser of an ERROR frame's payload."""
    if len(payload) != _ERROR.size:
        raise ProtocolError(f"ERROR payload of {len(payload)} bytes, expected {_ERROR.size}")
    code, command, detail = _ERROR.unpack(payload)
    try:
        return ErrorReply(ErrorCode(code), command, detail)
    except ValueError as e:
        raise ProtocolError(f"unknown error code {code}") from e
