"""The exact TFLM arena of a `.tflite`: the interpreter's own report and the smallest arena that runs.

Both come from the real tflite-micro interpreter (the PyPI build: reference kernels, 64-bit host),
run in a child process (`_arena_child.py`) because a too-small arena can crash the allocator.

- reported (`ram/tflm_arena_bytes`): `print_allocations()`'s "Arena allocation total" after one
  invoke with a generous arena. It is the arena only: it leaves out the interpreter object, the op
  resolver, the stack and the model itself (flash). Pointers are 8 bytes on the host and 4 on a
  Cortex-M, so the persistent part (tail: tensor structs, node registrations) is somewhat smaller
  on the device; the non-persistent part (head: activations, scratch) is the same.
- minimum (`ram/tflm_arena_min_bytes`): the smallest `arena_size` for which initialisation and
  one invoke succeed, found by galloping down from the reported figure (or up, first, when the
  report is too small), then bisecting to 1 byte. It can exceed the report: temporary buffers of
  the kernels' Prepare and the memory planner are freed before `print_allocations()` and not
  counted (a 8→4 FULLY_CONNECTED: 960 B reported, 1,200 B needed). It is the figure to size a
  board's arena with; the course CNN needs 8 B less than reported.
  TFLM aligns the arena start to 16 bytes, so this can differ by up to 15 bytes from run to run
  with the buffer's address; give the board's arena `alignas(16)` and at least this many bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import selectors
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

_CHILD = Path(__file__).with_name("_arena_child.py")
_PROTOCOL = 1  # bump when the measurement changes, so cached results are not reused
_ALLOCATION_FAILURE = ("Failed to allocate", "Failed to resize buffer", "failed to allocate tensors")
_MAX_ARENA_BYTES = 256 * 1024 * 1024
_TIMING_RUNS = 20


@dataclass
class ArenaReport:
    """TFLM arena figures for one model (bytes), with how they were obtained."""

    ok: bool
    total_bytes: int | None = None  # interpreter's report ("Arena allocation total")
    head_bytes: int | None = None  # non-persistent: activations and scratch buffers
    tail_bytes: int | None = None  # persistent: tensor structs, node registrations, op data
    min_bytes: int | None = None  # smallest arena that initialises and runs one invoke
    error: str = ""  # why TFLM could not run the model (unsupported operator, ...)
    probe_seconds: float = 0.0
    attempts: int = 0  # arena sizes tried while probing
    crashes: int = 0  # attempts that killed the child process
    host_invoke_ms: float | None = None  # median TFLM invoke on this host (measured, not the target)
    from_cache: bool = False
    failures: list[str] = field(default_factory=list)  # one failure message per distinct kind


class _Child:
    """A running `_arena_child.py`, restarted by the caller when it dies."""

    def __init__(self, model_path: Path, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.proc = subprocess.Popen(
            [sys.executable, str(_CHILD), str(model_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )

    def ask(self, request: dict) -> dict | None:
        """The reply, or None when the child died or timed out (it is then stopped)."""
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.close()
            return None
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            ready = selector.select(self.timeout_s)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.close()
            return None
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):  # a dead child's pipe may already be broken
                stream.close()


class _Prober:
    """Asks a child whether arenas of given sizes work, restarting it after a crash."""

    def __init__(self, model_path: Path, timeout_s: float) -> None:
        self.model_path, self.timeout_s = model_path, timeout_s
        self.child: _Child | None = None
        self.attempts = self.crashes = 0
        self.failures: dict[str, str] = {}

    def ask(self, request: dict) -> dict | None:
        if self.child is None:
            self.child = _Child(self.model_path, self.timeout_s)
        reply = self.child.ask(request)
        if reply is None:
            self.crashes += 1
            self.child = None
        return reply

    def runs(self, arena: int) -> bool:
        self.attempts += 1
        reply = self.ask({"cmd": "try", "arena": arena})
        if reply is None:
            self.failures.setdefault("crash", f"arena {arena} B: child process crashed")
            return False
        if not reply["ok"]:
            self.failures.setdefault(reply["error"].split(":")[0], f"arena {arena} B: {reply['error']}")
        return bool(reply["ok"])

    def close(self) -> None:
        if self.child is not None:
            self.child.close()


def _report(prober: _Prober, model_bytes: int) -> dict | None:
    """The interpreter's report with a generous arena (grown ×4 while allocation is the problem)."""
    arena = max(10 * model_bytes, 1 << 20)
    while True:
        reply = prober.ask({"cmd": "report", "arena": arena, "runs": _TIMING_RUNS})
        if reply is None:
            return {"ok": False, "error": f"TFLM crashed initialising the model with a {arena} B arena"}
        too_small = not reply["ok"] and any(s in reply["error"] for s in _ALLOCATION_FAILURE)
        if not too_small or arena >= _MAX_ARENA_BYTES:
            return reply
        arena *= 4


def _smallest(prober: _Prober, reported: int, limit: int) -> int | None:
    """Smallest arena that runs: gallop down from `reported` (sizes close to the need fail with an
    error; far too small ones are what crash), then bisect between the last failure and success."""
    ok = reported
    while not prober.runs(ok):
        if ok >= limit:
            return None
        ok = min(limit, ok + max(16, ok // 8))
    step, fail = 16, 0
    while ok - step > 0:
        if prober.runs(ok - step):
            ok -= step
            step *= 2
        else:
            fail = ok - step
            break
    while ok - fail > 1:
        mid = (ok + fail) // 2
        if prober.runs(mid):
            ok = mid
        else:
            fail = mid
    return ok


def _cache_file(cache_dir: Path | None, model: bytes, probe: bool) -> Path | None:
    if cache_dir is None:
        return None
    try:
        from importlib.metadata import version

        tflm = version("tflite-micro")
    except Exception:
        tflm = "unknown"
    key = hashlib.sha256(model + f"|{tflm}|{_PROTOCOL}|{probe}".encode()).hexdigest()[:24]
    return Path(cache_dir) / f"arena-{key}.json"


def measure_arena(
    model: bytes, *, probe: bool = True, timeout_s: float = 60.0, cache_dir: Path | None = None
) -> ArenaReport:
    """TFLM arena figures for `model`; never raises for a model TFLM cannot run (ok=False + error).

    With `cache_dir`, results are stored per model hash and tflite-micro version.
    """
    cached = _cache_file(cache_dir, model, probe)
    if cached is not None and cached.is_file():
        report = ArenaReport(**json.loads(cached.read_text()))
        report.from_cache = True
        return report
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tinyml-arena-") as tmp:
        model_path = Path(tmp) / "model.tflite"
        model_path.write_bytes(model)
        prober = _Prober(model_path, timeout_s)
        try:
            reply = _report(prober, len(model)) or {}
            report = ArenaReport(ok=bool(reply.get("ok")), error=reply.get("error", ""))
            if report.ok:
                report.total_bytes, report.head_bytes, report.tail_bytes = (
                    reply["total"],
                    reply["head"],
                    reply["tail"],
                )
                timings = sorted(reply.get("invoke_ms") or [])
                report.host_invoke_ms = timings[len(timings) // 2] if timings else None
                if probe:
                    report.min_bytes = _smallest(prober, reply["total"], max(4 * reply["total"], 1 << 16))
        finally:
            prober.close()
    report.attempts, report.crashes = prober.attempts, prober.crashes
    report.failures = list(prober.failures.values())
    report.probe_seconds = time.perf_counter() - start
    log.info(
        "TFLM arena: reported %s B, minimum %s B (%d attempts, %d crashes, %.2f s)",
        report.total_bytes,
        report.min_bytes,
        report.attempts,
        report.crashes,
        report.probe_seconds,
    )
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps({k: v for k, v in asdict(report).items() if k != "from_cache"}))
    return report
