"""The benchmark stage through a fault-injecting TCP proxy between the host and QEMU's UART: bytes
dropped, corrupted and delayed in both directions, the connection cut once. Either the run
completes with the right results, or it ends with a clear error and the results it already had
are logged."""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from tests.bench_models import quantized_inputs, small_model
from tests.helpers import compose_config, require_commands
from tinyml_exp.config import to_object
from tinyml_exp.hardware.bench import reference_outputs
from tinyml_exp.hardware.bench_stage import BenchmarkError, benchmark
from tinyml_exp.hardware.firmware_stage import FirmwareResult
from tinyml_exp.hardware.qemu import run_qemu
from tinyml_exp.tracking import Tracker

log = logging.getLogger(__name__)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.firmware,
    require_commands("arm-none-eabi-gcc", "make", "qemu-system-arm"),
]


@dataclass
class Faults:
    """Per-byte probabilities (to the device, to the host; seeded), a delay, and byte counts after
    which the link breaks."""

    drop: tuple[float, float] = (0.0, 0.0)
    corrupt: tuple[float, float] = (0.0, 0.0)
    delay: float = 0.0  # probability per chunk of holding it back `delay_s`
    delay_s: float = 0.0
    cut_after_bytes: int | None = None  # close both sides once, after this many bytes to the device
    silent_after_bytes: int | None = None  # then forward nothing to the device any more


FORCED_DROP_BYTE, FORCED_CORRUPT_BYTE, FORCED_DELAY_CHUNK = 1500, 3000, 100


class FaultProxy:
    """A real TCP proxy: accepts the host, connects to QEMU's UART for each connection, and pumps
    bytes both ways through `Faults`. QEMU's chardev server accepts a new connection after a cut."""

    def __init__(self, upstream_port: int, faults: Faults, seed: int = 0) -> None:
        self.upstream_port = upstream_port
        self.faults = faults
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.to_device_bytes = 0
        self.seen = [0, 0]  # bytes (to the device, to the host) and chunks mangled so far
        self.chunks = 0
        self.counts = {"connections": 0, "cuts": 0, "delayed": 0}
        self.counts |= {
            f"{kind}_to_{end}": 0 for kind in ("dropped", "corrupted") for end in ("device", "host")
        }
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.1)
        self.port = self.server.getsockname()[1]
        self.stop = threading.Event()
        self.sockets: list[socket.socket] = []
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def close(self) -> None:
        self.stop.set()
        for sock in [*self.sockets, self.server]:
            sock.close()
        for thread in self.threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                client, _ = self.server.accept()
            except (TimeoutError, OSError):
                continue
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sockets += [client, upstream]
            self.counts["connections"] += 1
            for src, dst, to_device in ((client, upstream, True), (upstream, client, False)):
                thread = threading.Thread(target=self._pump, args=(src, dst, to_device), daemon=True)
                self.threads.append(thread)
                thread.start()

    def _mangle(self, data: bytes, to_device: bool) -> bytes:
        out = bytearray()
        way = 0 if to_device else 1
        end = "device" if to_device else "host"
        drop, corrupt = self.faults.drop[way], self.faults.corrupt[way]
        with self.lock:
            self.chunks += 1
            for byte in data:
                self.seen[way] += 1
                r = self.rng.random()
                # besides the random ones, one drop and one corruption each way at fixed bytes, so
                # that no kind is missing by chance (the draws follow the threads' chunking)
                if self.seen[way] == FORCED_DROP_BYTE and drop:
                    r = 0.0
                elif self.seen[way] == FORCED_CORRUPT_BYTE and corrupt:
                    r = drop
                if r < drop:
                    self.counts[f"dropped_to_{end}"] += 1
                elif r < drop + corrupt:
                    self.counts[f"corrupted_to_{end}"] += 1
                    out.append(byte ^ (1 << self.rng.randrange(8)))
                else:
                    out.append(byte)
            delay = self.rng.random() < self.faults.delay or (
                self.chunks == FORCED_DELAY_CHUNK and self.faults.delay > 0
            )
        if delay:
            self.counts["delayed"] += 1
            time.sleep(self.faults.delay_s)
        return bytes(out)

    def _pump(self, src: socket.socket, dst: socket.socket, to_device: bool) -> None:
        f = self.faults
        try:
            while not self.stop.is_set():
                data = src.recv(4096)
                if not data:
                    break
                if to_device:
                    self.to_device_bytes += len(data)
                    if f.silent_after_bytes is not None and self.to_device_bytes > f.silent_after_bytes:
                        continue
                    if f.cut_after_bytes is not None and self.to_device_bytes > f.cut_after_bytes:
                        f.cut_after_bytes = None
                        self.counts["cuts"] += 1
                        break
                dst.sendall(self._mangle(data, to_device))
        except OSError:
            pass
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@pytest.fixture
def qemu_port() -> Iterator[int]:
    with run_qemu(small_model("int8").firmware.elf) as qemu:
        yield qemu.port


@pytest.fixture
def proxy_factory(qemu_port: int) -> Iterator:
    proxies: list[FaultProxy] = []

    def make(faults: Faults, seed: int = 0) -> FaultProxy:
        proxies.append(FaultProxy(qemu_port, faults, seed))
        return proxies[-1]

    yield make
    for proxy in proxies:
        proxy.close()


def run_stage(tmp_path: Path, proxy: FaultProxy, samples: int, *overrides: str):
    """The pipeline's benchmark stage on the small int8 model, its port being the proxy."""
    model = small_model("int8")
    cfg = compose_config(
        [
            "target=qemu_netduinoplus2",
            "benchmark.enabled=true",
            f"benchmark.port=socket://127.0.0.1:{proxy.port}",
            f"benchmark.samples={samples}",
            "benchmark.progress=false",
            *overrides,
        ]
    )
    firmware = FirmwareResult(model_name=model.name, build=model.firmware)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    error: BaseException | None = None
    try:
        with Tracker(uri, "faults", "run") as tracker:
            try:  # log the result, or the partial one the error carries, as the pipeline does
                tracker.log_result(
                    benchmark(cfg, to_object(cfg.target), model.tflite, firmware, model.data, tmp_path)
                )
            except BenchmarkError as e:
                tracker.log_result(e.partial)
                raise
    except BenchmarkError as e:
        error = e
    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("faults").experiment_id])
    return run, error, tmp_path / "benchmark" / f"{model.name}_device_samples.csv"


def test_run_completes_with_exact_results_through_a_faulty_link(tmp_path: Path, proxy_factory) -> None:
    model, n = small_model("int8"), 150
    # ≈ 40 kB go to the device and 5 kB come back: a few drops and corruptions each way, a few
    # delays beyond the request timeout (their late replies must be recognised as stale), and the
    # connection cut once half-way. Each fault costs about one timeout.
    faults = Faults(
        drop=(1e-4, 6e-4), corrupt=(1e-4, 6e-4), delay=0.004, delay_s=0.8, cut_after_bytes=n * 270 // 2
    )
    proxy = proxy_factory(faults, seed=7)
    run, error, csv_path = run_stage(
        tmp_path, proxy, n, "benchmark.timeout_s=0.5", "benchmark.retries=8", "benchmark.connect_timeout_s=5"
    )
    assert error is None, error
    assert min(proxy.counts.values()) > 0, proxy.counts
    assert proxy.counts["cuts"] == 1 and proxy.counts["connections"] == 2
    m = run.data.metrics
    assert run.data.tags["benchmark.complete"] == "true" and m["benchmark/samples"] == n
    assert m["agreement/device_vs_tflite_exact"] == 1.0
    assert m["accuracy/device"] == m["accuracy/tflite_reference"]
    assert m["link/reconnects"] >= 1 and m["link/retries"] >= 3
    assert m["benchmark/inconsistent_outputs"] == 0
    log.info("faults %s, link %s", proxy.counts, {k: v for k, v in m.items() if k.startswith("link/")})
    rows = np.loadtxt(csv_path, delimiter=",", skiprows=1, dtype=np.int64)
    assert len(rows) == n and (rows[:, 5] == 1).all()
    expected = reference_outputs(model.tflite, quantized_inputs(model, n)).argmax(axis=1)
    assert np.array_equal(rows[:, 2], expected)


def test_a_link_that_goes_silent_ends_with_a_clear_error_and_partial_results(
    tmp_path: Path, proxy_factory
) -> None:
    n, silent_after = 60, 25 * 270  # ≈ 25 requests of 256 + 11 bytes get through (plus handshake)
    proxy = proxy_factory(Faults(silent_after_bytes=silent_after))
    run, error, csv_path = run_stage(tmp_path, proxy, n, "benchmark.timeout_s=0.3", "benchmark.retries=2")
    assert error is not None
    message = str(error)
    done = int(run.data.metrics["benchmark/samples"])
    assert 10 < done < n
    assert message.startswith(f"benchmark stopped after {done} of {n} samples (their results are logged): ")
    assert f"request failed 3 times on socket://127.0.0.1:{proxy.port} (benchmark.retries=2)" in message
    assert run.info.status == "FAILED" and run.data.tags["benchmark.complete"] == "false"
    assert "accuracy/device" in run.data.metrics and "cycles/median" in run.data.metrics
    assert len(csv_path.read_text().splitlines()) == done + 1
