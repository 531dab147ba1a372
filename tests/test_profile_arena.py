"""The TFLM arena probe: real interpreter in a child process, which may die without taking us along."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.profile_models import cnn_model, fc_model, unsupported_model
from tinyml_exp.profile.memory import _Prober, measure_arena


def _prober(tmp_path: Path, model: bytes) -> _Prober:
    path = tmp_path / "model.tflite"
    path.write_bytes(model)
    return _Prober(path, timeout_s=30)


def test_minimum_arena_runs_and_a_clearly_smaller_one_fails(tmp_path: Path) -> None:
    model = cnn_model()
    report = measure_arena(model)
    assert (
        report.ok and report.total_bytes > 0 and report.head_bytes + report.tail_bytes == report.total_bytes
    )
    assert report.min_bytes is not None and report.attempts >= 2
    prober = _prober(tmp_path, model)
    try:
        assert prober.runs(report.min_bytes)
        assert not prober.runs(report.min_bytes - 64)
        assert not prober.runs(report.min_bytes // 4)  # far too small: an error or a crash, never ours
        assert prober.runs(report.min_bytes)  # a crashed child was replaced
    finally:
        prober.close()
    assert report.probe_seconds < 30


def test_reported_total_can_be_below_what_initialisation_needs() -> None:
    """TFLM's report counts what stays allocated; Prepare's temporary buffers come on top. The probe
    finds the real need by growing from the report until the interpreter runs."""
    report = measure_arena(fc_model())
    assert report.ok and report.min_bytes is not None
    assert report.min_bytes > report.total_bytes  # 960 B reported, 1,200 B needed with this build


def test_a_crashed_child_is_restarted_and_counted(tmp_path: Path) -> None:
    prober = _prober(tmp_path, cnn_model())
    try:
        assert prober.runs(1 << 16)
        os.kill(prober.child.proc.pid, signal.SIGSEGV)  # what a too-small arena can do to TFLM
        prober.child.proc.wait()
        assert not prober.runs(1 << 16)
        assert prober.crashes == 1 and "crashed" in prober.failures["crash"]
        assert prober.runs(1 << 16)
    finally:
        prober.close()


def test_unsupported_model_reports_tflm_error() -> None:
    report = measure_arena(unsupported_model())
    assert not report.ok and report.total_bytes is None
    assert "Didn't find op for builtin opcode 'HASHTABLE_LOOKUP'" in report.error


def test_results_are_cached_per_model(tmp_path: Path) -> None:
    first = measure_arena(fc_model(), cache_dir=tmp_path)
    again = measure_arena(fc_model(), cache_dir=tmp_path)
    assert not first.from_cache and again.from_cache
    assert (again.total_bytes, again.min_bytes) == (first.total_bytes, first.min_bytes)
    other = measure_arena(fc_model(units=6), cache_dir=tmp_path)
    assert not other.from_cache
