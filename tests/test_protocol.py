"""The serial protocol's host side in pure Python: frames, CRCs, payloads, strict rejection."""

from __future__ import annotations

import dataclasses
import random
import struct
import zlib

import pytest

from tinyml_exp.hardware import protocol
from tinyml_exp.hardware.protocol import (
    Command,
    CounterUnit,
    DeviceInfo,
    ErrorCode,
    ErrorReply,
    Frame,
    FrameDecoder,
    ProtocolError,
    TensorInfo,
)

FIXTURE_INFO = DeviceInfo(
    protocol_version=2,
    counter_unit=CounterUnit.INSTRUCTIONS,
    max_request_payload_bytes=784,
    build_id=0x38110B6B,
    clock_hz=168_000_000,
    activation_bytes=794,
    input=TensorInfo(9, (1, 28, 28, 1), struct.unpack("<f", struct.pack("<f", 1 / 255))[0], -128, 784),
    output=TensorInfo(9, (1, 10), 0.125, 3, 10),
    model_name="fixture_sum",
    board_name="qemu_netduinoplus2",
)


def test_crc8_check_values() -> None:
    assert protocol.crc8(b"123456789") == 0xF4  # CRC-8/SMBUS catalogue check value (version 1)
    assert protocol.crc8(b"123456789", protocol.HCRC_INIT) == 0xFB  # PROTOCOL.md §2, version 2


def test_encode_frame_golden_bytes() -> None:
    # IDENTIFY, seq 7, empty payload; the C parser accepts the same bytes (test_firmware_host.py).
    frame = protocol.encode_frame(Command.IDENTIFY, 7)
    assert frame.hex() == "a50201070000fd" + "009fb19f"
    assert protocol.crc8(frame[1:6], 0xFF) == frame[6]
    assert struct.unpack("<I", frame[7:])[0] == zlib.crc32(frame[1:7])
    # A version 1 host computed HCRC from 0x00: still recognisable, to be told the version.
    assert protocol.encode_frame(Command.IDENTIFY, 7, version=1).hex() == "a5010107000062" + "7b639579"


def test_all_zero_header_is_not_a_header() -> None:
    # Version 1's zero initial value let a stray marker before zeros (the handshake filler) pass.
    assert protocol.crc8(bytes(5)) == 0 and protocol.header_crc(bytes(5)) != 0
    decoder = FrameDecoder()
    good = protocol.encode_frame(0x81, 4, b"ok")
    assert decoder.feed(b"\xa5" + bytes(6 + 4) + good) == [Frame(0x81, 4, b"ok")]
    assert decoder.stats.bad_headers == 1


def test_decoder_bounds_len_before_waiting_for_the_body() -> None:
    # A stray header with a valid HCRC and a 60 kB LEN must not make the host wait for 60 kB.
    stray = bytearray(protocol.encode_frame(0x82, 5, b""))
    stray[4:6] = (60_000).to_bytes(2, "little")
    stray[6] = protocol.header_crc(bytes(stray[1:6]))
    good = protocol.encode_frame(0x82, 6, b"reply")
    decoder = FrameDecoder(max_payload=1024)
    assert decoder.feed(bytes(stray[:7]) + good) == [Frame(0x82, 6, b"reply")]
    assert decoder.stats.bad_headers == 1
    # The same LEN is fine for a decoder told to expect it.
    big = protocol.encode_frame(0x83, 7, bytes(5000))
    assert FrameDecoder(max_payload=5000).feed(big) == [Frame(0x83, 7, bytes(5000))]


@pytest.mark.parametrize("chunking", ["whole", "bytewise", "random"])
def test_frames_round_trip_through_garbage(chunking: str) -> None:
    rng = random.Random(7)
    frames = [
        Frame(rng.randrange(256), rng.randrange(256), rng.randbytes(rng.choice([0, 1, 10, 784, 5000])))
        for _ in range(60)
    ]
    stream = bytearray()
    for frame in frames:
        # Garbage, including stray start markers whose header check fails.
        stream += bytes(b for b in rng.randbytes(rng.randrange(20)) if b != protocol.SOF)
        encoded = protocol.encode_frame(frame.cmd, frame.seq, frame.payload)
        stray = rng.randbytes(3)
        while protocol.header_crc(stray + encoded[:2]) == encoded[2]:  # one in 256 would pass
            stray = rng.randbytes(3)
        stream += bytes([protocol.SOF]) + stray + encoded
    decoder = FrameDecoder(max_payload=protocol.MAX_PAYLOAD_BYTES)  # 5000-byte frames are expected
    decoded: list[Frame] = []
    if chunking == "whole":
        decoded = decoder.feed(bytes(stream))
    else:
        i = 0
        while i < len(stream):
            n = 1 if chunking == "bytewise" else rng.randrange(1, 300)
            decoded += decoder.feed(bytes(stream[i : i + n]))
            i += n
    assert decoded == frames
    assert decoder.stats.bad_crcs == 0
    assert decoder.stats.dropped_bytes > 0


def test_decoder_drops_corrupted_frames_and_recovers() -> None:
    good = protocol.encode_frame(0x82, 3, b"\x01\x02\x03\x04")
    bad_payload = bytearray(good)
    bad_payload[8] ^= 0x10
    bad_header = bytearray(good)
    bad_header[4] ^= 0x01  # LEN changes, HCRC no longer matches
    decoder = FrameDecoder()
    frames = decoder.feed(bytes(bad_payload) + bytes(bad_header) + good)
    assert frames == [Frame(0x82, 3, b"\x01\x02\x03\x04")]
    assert decoder.stats.bad_crcs == 1
    assert decoder.stats.bad_headers >= 1


def test_decoder_drops_other_versions() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(protocol.encode_frame(0x81, 1, b"x", version=1)) == []
    assert decoder.feed(protocol.encode_frame(0x81, 1, b"x", version=3)) == []
    assert (decoder.stats.bad_versions, decoder.stats.last_bad_version) == (2, 3)


def test_bytes_wanted_tracks_the_frame() -> None:
    frame = protocol.encode_frame(0x83, 9, bytes(100))
    decoder = FrameDecoder()
    assert decoder.bytes_wanted() == protocol.HEADER_BYTES
    assert decoder.feed(frame[:7]) == []
    assert decoder.bytes_wanted() == 104
    assert decoder.feed(frame[7:]) == [Frame(0x83, 9, bytes(100))]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cmd": 256, "seq": 0}, "cmd=256"),
        ({"cmd": 1, "seq": -1}, "seq=-1"),
        ({"cmd": 1, "seq": 0, "payload": bytes(65536)}, "65536 bytes exceeds the 65535-byte limit"),
    ],
)
def test_encode_frame_rejects_out_of_range(kwargs: dict, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        protocol.encode_frame(**kwargs)


def test_identify_round_trip() -> None:
    payload = protocol.encode_identify(FIXTURE_INFO)
    assert len(payload) == 60 + 1 + len("fixture_sum") + 1 + len("qemu_netduinoplus2")
    assert protocol.parse_identify(payload) == FIXTURE_INFO


def _patched(offset: int, value: bytes) -> bytes:
    payload = bytearray(protocol.encode_identify(FIXTURE_INFO))
    payload[offset : offset + len(value)] = value
    return bytes(payload)


_IDENTIFY_CASES = [
    (protocol.encode_identify(FIXTURE_INFO)[:63], "ends inside the model name"),
    (protocol.encode_identify(FIXTURE_INFO) + b"\x00", "1 trailing bytes"),
    (protocol.encode_identify(FIXTURE_INFO)[:40], "shorter than the 62 minimum"),
    (_patched(0, b"\x01"), "protocol version 1"),
    (_patched(1, b"\x07"), "unknown counter unit 7"),
    (_patched(16, b"\x05"), "input tensor: unknown dtype code 5"),
    (_patched(17, b"\x00"), "input tensor: rank 0"),
    (_patched(39, b"\x05"), "output tensor: rank 5"),
    (_patched(38 + 6, struct.pack("<H", 4)), r"output tensor: dims beyond rank 2 must be 0"),
    (_patched(16 + 18, struct.pack("<I", 785)), r"785 bytes does not match shape \(1, 28, 28, 1\)"),
    (_patched(61, b"\xff"), "model name is not ASCII"),
    (_patched(61, b"\n"), "control characters"),
]


@pytest.mark.parametrize(("payload", "message"), _IDENTIFY_CASES, ids=[m for _, m in _IDENTIFY_CASES])
def test_identify_strict_rejection(payload: bytes, message: str) -> None:
    """Every field is checked: a reply that is off in any way is refused, naming the field."""
    with pytest.raises(ProtocolError, match=message):
        protocol.parse_identify(payload)


def test_float_tensor_size_uses_element_size() -> None:
    info = dataclasses.replace(FIXTURE_INFO, input=TensorInfo(0, (1, 3), 0.0, 0, 12))
    assert protocol.parse_identify(protocol.encode_identify(info)).input.size_bytes == 12


def test_infer_reply_parsing() -> None:
    result = protocol.parse_infer_reply(struct.pack("<I", 123456) + bytes(range(10)), 10)
    assert result == (bytes(range(10)), 123456)
    assert result.count == 123456
    with pytest.raises(ProtocolError, match="INFER reply of 13 bytes, expected 14"):
        protocol.parse_infer_reply(bytes(13), 10)


def test_error_reply_round_trip_and_rejection() -> None:
    error = ErrorReply(ErrorCode.BAD_INPUT_SIZE, Command.INFER, 784)
    assert protocol.parse_error(protocol.encode_error(error)) == error
    with pytest.raises(ProtocolError, match="unknown error code 9"):
        protocol.parse_error(bytes([9, 2, 0, 0, 0, 0]))
    with pytest.raises(ProtocolError, match="ERROR payload of 5 bytes, expected 6"):
        protocol.parse_error(bytes(5))
