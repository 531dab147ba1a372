"""Serial-link throughput to the benchmark firmware: samples per second, and the per-request
overhead on the host versus the bytes on the wire.

ECHO requests of growing size (the device only copies them back) separate the fixed cost of a
request (host stack, QEMU's event loop or USB latency, the firmware's dispatch) from the marginal
cost per byte on the wire. Host CPU time per request (time.process_time) is what pyserial,
framing and CRCs cost this process. INFER rows
run the model too, through `DeviceClient` and through the benchmark's `ReliableLink`; the
INFER_RANDOM row runs it on inputs the device makes itself (PROTOCOL.md §4.7), per input.

Usage: python benchmarks/device_throughput.py [--requests 200] [--port URL]
  default: the fixture firmware (784-byte input) on QEMU's netduinoplus2, started here
  --port:  a board already running any tinyml_exp firmware (tty path or socket://host:port)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tinyml_exp.hardware import protocol  # noqa: E402
from tinyml_exp.hardware.build import FIXTURE_MODEL_DIR, build_firmware  # noqa: E402
from tinyml_exp.hardware.client import DeviceClient  # noqa: E402
from tinyml_exp.hardware.link import ReliableLink  # noqa: E402
from tinyml_exp.hardware.qemu import run_qemu  # noqa: E402
from tinyml_exp.hardware.session import open_port  # noqa: E402

ECHO_SIZES = (0, 16, 64, 128, 256, 512, 784)
RANDOM_BATCH = 50  # inputs per INFER_RANDOM request


@contextmanager
def device_url(port: str | None) -> Iterator[str]:
    if port is not None:
        yield port
        return
    with tempfile.TemporaryDirectory() as tmp:
        build = build_firmware("qemu_netduinoplus2", FIXTURE_MODEL_DIR, Path(tmp) / "fw", jobs=2)
        with run_qemu(build.elf) as qemu:
            yield qemu.url


def timed(requests: int, call: Callable[[], object]) -> tuple[float, float]:
    """(median wall seconds per request, mean host CPU seconds per request)."""
    walls = []
    cpu_start = time.process_time()
    for _ in range(requests):
        start = time.perf_counter()
        call()
        walls.append(time.perf_counter() - start)
    return statistics.median(walls), (time.process_time() - cpu_start) / requests


def row(name: str, wire_bytes: int, wall_s: float, cpu_s: float) -> str:
    return (
        f"| {name:<24} | {wire_bytes:>6} | {wall_s * 1e3:>8.2f} | {1 / wall_s:>9.1f} | "
        f"{wire_bytes / wall_s / 1e3:>7.1f} | {cpu_s * 1e6:>7.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--port", help="a board running a tinyml_exp firmware (default: QEMU, started here)")
    parser.add_argument("--baudrate", type=int, default=115200)
    args = parser.parse_args()
    with device_url(args.port) as url:
        client = DeviceClient(open_port(url, args.baudrate), timeout_s=10.0)
        info = client.connect(timeout_s=20.0)
        print(f"device: {info.model_name} on {info.board_name} via {url}, {args.requests} requests per row\n")
        print("| request                  | wire B | ms/req   | req/s     | kB/s    | host µs |")
        print("|---|---:|---:|---:|---:|---:|")
        points = []
        for size in (s for s in ECHO_SIZES if s <= info.max_request_payload_bytes):
            payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
            wire = 2 * (protocol.OVERHEAD_BYTES + size)
            wall, cpu = timed(args.requests, lambda p=payload: client.echo(p))
            points.append((wire, wall, cpu))
            print(row(f"ECHO {size} B", wire, wall, cpu))
        x = bytes(info.input.size_bytes)
        wire = (
            2 * protocol.OVERHEAD_BYTES
            + protocol.COUNT_BYTES
            + info.input.size_bytes
            + info.output.size_bytes
        )
        wall, cpu = timed(args.requests, lambda: client.infer(x))
        print(row("INFER (DeviceClient)", wire, wall, cpu))
        # Inputs made on the device (PROTOCOL.md §4.7): only the request and the outputs travel.
        n = min(RANDOM_BATCH, protocol.max_random_count(info.output.size_bytes))
        wire = 2 * protocol.OVERHEAD_BYTES + 10 + n * (protocol.COUNT_BYTES + info.output.size_bytes)
        wall, cpu = timed(max(1, args.requests // n), lambda: client.infer_random(1, 0, n))
        print(row(f"INFER_RANDOM x{n}, per input", wire // n, wall / n, cpu / n))
        client.close()
        with ReliableLink(lambda: open_port(url, args.baudrate), url, timeout_s=10.0) as link:
            link.connect()
            wall, cpu = timed(args.requests, lambda: link.infer(x))
        print(row("INFER (ReliableLink)", wire, wall, cpu))
    (w0, t0, c0), (w1, t1, c1), (w2, t2, c2) = points[0], points[-2], points[-1]
    print(
        f"\nfixed cost of a request (ECHO 0 B, {w0} wire bytes): {t0 * 1e3:.2f} ms wall, {c0 * 1e6:.0f} µs host CPU"
        f"\nmarginal cost per wire byte (ECHO {(w1 - 22) // 2} -> {(w2 - 22) // 2} B): "
        f"{(t2 - t1) / (w2 - w1) * 1e6:.1f} µs wall, {(c2 - c1) / (w2 - w1) * 1e6:.2f} µs host CPU"
        f"\nOn QEMU the guest's UART output reaches the socket in small pieces (about 200 segments for a"
        f" 795-byte reply), so reply bytes cost more than request bytes; INFER replies are short"
    )


if __name__ == "__main__":
    main()
