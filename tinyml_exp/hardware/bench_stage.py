"""The pipeline's `benchmark` stage: the run's firmware on the target, the test set through it.

Inputs are quantized exactly as the model's input tensor says; the device's outputs are compared,
value for value, with the TFLite interpreter's reference kernels (BUILTIN_REF) on the same input
bytes. Before streaming, the device must report this run's model (build id = crc32 of the
.tflite, tensor shapes, dtypes and quantization): a mismatch stops the stage with the differences.

Whatever the device answered before a failure (or Ctrl-C) is logged — metrics over the completed
samples, the per-sample CSV, tag `benchmark.complete=false` — before the stage fails.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tinyml_exp.errors import StageError
from tinyml_exp.hardware.bench import (
    StreamRun,
    Summary,
    quantize_samples,
    reference_outputs,
    stream,
    summarize,
    write_csv,
)
from tinyml_exp.hardware.link import ModelIdentity
from tinyml_exp.hardware.protocol import CounterUnit
from tinyml_exp.hardware.session import BenchmarkSettings, open_device

if TYPE_CHECKING:
    from tinyml_exp.data import DatasetSplits
    from tinyml_exp.hardware.firmware_stage import FirmwareStageResult
    from tinyml_exp.targets import Target
    from tinyml_exp.tracking import Tracker

log = logging.getLogger(__name__)


class BenchmarkError(StageError):
    """The benchmark stopped before every sample was measured (partial results are logged)."""


def log_summary(
    tracker: Tracker, run: StreamRun, summary: Summary, labels: np.ndarray, csv_path: Path
) -> None:
    tracker.log_metrics(summary.metrics)
    tracker.set_tags(summary.tags)
    write_csv(csv_path, run, summary, labels)
    tracker.log_artifact(csv_path, "benchmark")


def benchmark_stage(
    cfg: Any,
    target: Target,
    tflite: bytes,
    firmware: FirmwareStageResult,
    data: DatasetSplits,
    out_dir: Path,
    tracker: Tracker,
    measured: Mapping[str, float],
) -> Summary:
    """Run, measure, log; returns the figures (see the module docstring)."""
    from tinyml_exp.evaluate.interpreters import io_specs
    from tinyml_exp.profile.verdict import estimate_errors

    if firmware.build is None:
        raise BenchmarkError(
            f"no firmware to benchmark: {firmware.skipped or 'the firmware stage did not run'}"
        )
    settings = BenchmarkSettings.from_config(cfg.benchmark, target.clock_hz)
    count = len(data.y_test) if settings.samples is None else min(settings.samples, len(data.y_test))
    labels = data.y_test[:count]
    in_spec, out_spec = io_specs(tflite)
    inputs = quantize_samples(data.x_test[:count], in_spec)
    reference = reference_outputs(tflite, inputs)
    expected = ModelIdentity.from_tflite(tflite, firmware.model_name)
    run: StreamRun | None = None
    with open_device(settings, firmware.build, emulated=target.emulated, expected=expected) as link:
        info = link.info
        assert info is not None
        tracker.set_tags(
            {
                "benchmark.port": link.port_name,
                "benchmark.device_board": info.board_name,
                "target": target.name,
            }
        )
        log.info("streaming %d samples to %s on %s", count, info.model_name, link.port_name)
        run = stream(
            link, inputs, warmup=settings.warmup, repeats=settings.repeats, progress=settings.progress
        )
    unit = info.counter_unit
    summary = summarize(run, labels, out_spec, clock_hz=settings.clock_hz, unit=unit, reference=reference)
    summary.metrics.update(estimate_errors({**measured, **summary.metrics}))
    log_summary(
        tracker, run, summary, labels, out_dir / "benchmark" / f"{firmware.model_name}_device_samples.csv"
    )
    _report(summary, unit, settings.clock_hz)
    if isinstance(run.error, KeyboardInterrupt):
        raise run.error
    if run.error is not None:
        raise BenchmarkError(
            f"benchmark stopped after {run.completed} of {run.requested} samples "
            f"(their results are logged): {run.error}"
        ) from run.error
    return summary


def _report(summary: Summary, unit: CounterUnit, clock_hz: float) -> None:
    m = summary.metrics
    if "cycles/median" not in m:
        return
    log.info(
        "device: accuracy %.4f on %d samples (TFLite reference agreement %.4f), median %.0f %s, "
        "%.2f ms / %.2f fps at %.0f MHz, link %.0f B/s",
        m.get("accuracy/device", float("nan")),
        int(m["benchmark/samples"]),
        m.get("agreement/device_vs_tflite", float("nan")),
        m["cycles/median"],
        unit.name.lower(),
        m["latency/ms"],
        m["throughput/fps"],
        clock_hz / 1e6,
        m.get("link/bytes_per_s", float("nan")),
    )
