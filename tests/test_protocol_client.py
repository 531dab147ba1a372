"""DeviceClient against a simulated device on a fake serial port (no emulator, no hardware)."""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

import pytest
import serial

from tests.test_protocol import FIXTURE_INFO
from tinyml_exp.hardware import protocol
from tinyml_exp.hardware.client import (
    HANDSHAKE_SEQ,
    DeviceClient,
    DeviceError,
    DeviceErrorReply,
    DeviceLinkError,
    DeviceResetError,
    DeviceTimeoutError,
)
from tinyml_exp.hardware.protocol import Command, DeviceFrame, ErrorCode, ErrorReply, Frame

Handler = Callable[[Frame], bytes]


class FakePort:
    """A pyserial-like port; `handler` turns each complete host frame into the device's bytes."""

    name = "fake"

    def __init__(self, handler: Handler, *, drop_first: int = 0, preamble: bytes = b"") -> None:
        self.timeout = 0.0
        self.handler = handler
        self.drop_first = drop_first  # frames lost as if sent before the device enabled its UART
        self.received: list[Frame] = []
        self._decoder = protocol.FrameDecoder()
        self._out = bytearray(preamble)

    def write(self, data: bytes) -> int:
        for frame in self._decoder.feed(data):
            if self.drop_first > 0:
                self.drop_first -= 1
                continue
            self.received.append(frame)
            self._out += self.handler(frame)
        return len(data)

    def read(self, size: int) -> bytes:
        if not self._out:
            time.sleep(min(self.timeout, 0.01))
            return b""
        chunk = bytes(self._out[:size])
        del self._out[:size]
        return chunk

    def reset_input_buffer(self) -> None:
        self._out.clear()

    def close(self) -> None:
        pass


def fixture_device(frame: Frame) -> bytes:
    """Answers like the firmware with the fixture model."""
    if frame.cmd == Command.IDENTIFY:
        return protocol.encode_frame(0x81, frame.seq, protocol.encode_identify(FIXTURE_INFO))
    if frame.cmd == Command.INFER:
        if len(frame.payload) != 784:
            error = ErrorReply(ErrorCode.BAD_INPUT_SIZE, frame.cmd, 784)
            return protocol.encode_frame(DeviceFrame.ERROR, frame.seq, protocol.encode_error(error))
        return protocol.encode_frame(0x82, frame.seq, struct.pack("<I", 4242) + frame.payload[:10])
    error = ErrorReply(ErrorCode.UNKNOWN_COMMAND, frame.cmd, 0)
    return protocol.encode_frame(DeviceFrame.ERROR, frame.seq, protocol.encode_error(error))


def test_connect_pings_until_the_device_answers() -> None:
    port = FakePort(fixture_device, drop_first=2, preamble=b"\x00garbage\xa5\x01")
    client = DeviceClient(port)  # type: ignore[arg-type]
    info = client.connect(timeout_s=5.0, ping_interval_s=0.02)
    assert info == FIXTURE_INFO
    assert all(f.seq == HANDSHAKE_SEQ and f.cmd == Command.IDENTIFY for f in port.received)


def test_connect_times_out_with_a_clear_message() -> None:
    client = DeviceClient(FakePort(lambda frame: b""))  # type: ignore[arg-type]
    with pytest.raises(DeviceTimeoutError, match=r"no IDENTIFY reply within 0.2 s \(\d+ pings\) on fake"):
        client.connect(timeout_s=0.2, ping_interval_s=0.05)


def test_infer_returns_output_and_count() -> None:
    client = DeviceClient(FakePort(fixture_device))  # type: ignore[arg-type]
    output, count = client.infer(bytes(range(256)) * 3 + bytes(16))
    assert output == bytes(range(10))
    assert count == 4242


def test_infer_checks_the_input_size_first() -> None:
    client = DeviceClient(FakePort(fixture_device))  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"input of 10 bytes, .*'fixture_sum' expects 784 \(int8 \(1, 28, 28, 1\)\)"
    ):
        client.infer(bytes(10))


def test_error_frames_raise_with_code_and_detail() -> None:
    client = DeviceClient(FakePort(fixture_device))  # type: ignore[arg-type]
    with pytest.raises(DeviceErrorReply, match="device rejected INFER: BAD_INPUT_SIZE \\(detail 784") as info:
        client.request(Command.INFER, bytes(3))
    assert info.value.error == ErrorReply(ErrorCode.BAD_INPUT_SIZE, Command.INFER, 784)
    with pytest.raises(DeviceErrorReply, match="device rejected 0x55: UNKNOWN_COMMAND"):
        client.request(0x55)


def test_stale_replies_are_dropped() -> None:
    def late_then_right(frame: Frame) -> bytes:
        stale = protocol.encode_frame(0x81, (frame.seq - 1) % 256, b"old")
        return stale + fixture_device(frame)

    client = DeviceClient(FakePort(late_then_right))  # type: ignore[arg-type]
    assert client.identify() == FIXTURE_INFO


def test_boot_frame_while_waiting_means_reset() -> None:
    client = DeviceClient(FakePort(lambda f: protocol.encode_frame(DeviceFrame.BOOT, 0)))  # type: ignore[arg-type]
    with pytest.raises(DeviceResetError, match="device restarted"):
        client.request(Command.IDENTIFY)


def test_timeout_names_the_request() -> None:
    client = DeviceClient(FakePort(lambda f: b""), timeout_s=0.1)  # type: ignore[arg-type]
    with pytest.raises(DeviceTimeoutError, match=r"no reply to 0x02 \(seq 1\) within 0.1 s"):
        client.request(Command.INFER, bytes(784))


def test_wrong_reply_code_is_a_protocol_error() -> None:
    client = DeviceClient(FakePort(lambda f: protocol.encode_frame(0x83, f.seq)))  # type: ignore[arg-type]
    with pytest.raises(protocol.ProtocolError, match="has cmd 0x83, expected 0x81"):
        client.request(Command.IDENTIFY)


def test_sequence_numbers_skip_the_handshake_value() -> None:
    port = FakePort(fixture_device)
    client = DeviceClient(port)  # type: ignore[arg-type]
    for _ in range(300):
        client.request(Command.IDENTIFY)
    seqs = [f.seq for f in port.received]
    assert HANDSHAKE_SEQ not in seqs
    assert seqs[:3] == [1, 2, 3]
    assert seqs[254:257] == [255, 1, 2]


def test_a_failing_port_is_a_link_error() -> None:
    class DeadPort(FakePort):
        def read(self, size: int) -> bytes:
            raise serial.SerialException("socket disconnected")

    client = DeviceClient(DeadPort(fixture_device))  # type: ignore[arg-type]
    with pytest.raises(DeviceLinkError, match="reading from fake failed: socket disconnected"):
        client.identify()


def test_infer_random_takes_a_reply_longer_than_the_default_bound() -> None:
    def random_device(frame: Frame) -> bytes:
        if frame.cmd != Command.INFER_RANDOM:
            return fixture_device(frame)
        seed, first, count = struct.unpack("<IIH", frame.payload)
        entries = b"".join(struct.pack("<I", first + i) + bytes([seed & 0xFF]) * 10 for i in range(count))
        return protocol.encode_frame(0x85, frame.seq, entries)

    client = DeviceClient(FakePort(random_device))  # type: ignore[arg-type]
    results = client.infer_random(7, 100, 400)  # 5,600 reply bytes > the 4,096 of an unknown device
    assert [r.count for r in results] == list(range(100, 500))
    assert {r.output for r in results} == {bytes([7]) * 10}
    with pytest.raises(ValueError, match=r"count 4682: one INFER_RANDOM reply carries 1 \.\.\. 4681"):
        client.infer_random(7, 0, 4682)


def test_infer_random_on_an_older_firmware_names_the_fix() -> None:
    client = DeviceClient(FakePort(fixture_device))  # type: ignore[arg-type]
    with pytest.raises(DeviceError, match="does not answer INFER_RANDOM: rebuild it"):
        client.infer_random(1, 0, 5)
