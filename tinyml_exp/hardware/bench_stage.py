"""The pipeline's `benchmark` stage: the run's firmware on the target, the test set through it.

Inputs are quantized exactly as the model's input tensor says; the device's outputs are compared,
value for value, with the TFLite interpreter's reference kernels (BUILTIN_REF) on the same input
bytes. Before streaming, the device must report this run's model (build id = crc32 of the
.tflite, tensor shapes, dtypes and quantization): a mismatch stops the stage with the differences.

Whatever the device answered before a failure (or Ctrl-C) is kept — metrics over the completed
samples, the per-sample CSV, tag `benchmark.complete=false` — in the `BenchmarkResult` that the
stage's `BenchmarkError` (or `StageInterrupted`) carries, so the pipeline logs it first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinyml_exp.errors import StageError, StageInterrupted
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
from tinyml_exp.results import StageResult

if TYPE_CHECKING:
    from tinyml_exp.data import DatasetSplits
    from tinyml_exp.hardware.firmware_stage import FirmwareResult
    from tinyml_exp.hardware.layers import LayerCounts
    from tinyml_exp.profile.result import ProfileResult
    from tinyml_exp.targets import Target

log = logging.getLogger(__name__)


class BenchmarkError(StageError):
    """The benchmark stopped before every sample was measured (partial results are logged)."""


@dataclass
class BenchmarkResult(StageResult):
    """`metrics`: the summary's figures (`cycles/median`, `latency/ms`, `link/*` ...); `tags`: the
    port, the device's board, the count unit, `benchmark.complete`; artifact: the per-sample CSV.
    With `benchmark.layers=true` also `layers` (per kernel call: metrics, tables, plot)."""

    summary: Summary
    stream: StreamRun
    csv_path: Path
    layers: LayerCounts | None = None


def _stream(settings: BenchmarkSettings, target: Target, firmware: FirmwareResult, tflite: bytes, inputs):
    """Open the device, check it runs this model, stream; (the run, the device's info, tags)."""
    expected = ModelIdentity.from_tflite(tflite, firmware.model_name)
    with open_device(settings, firmware.build, emulated=target.emulated, expected=expected) as link:
        info = link.info
        assert info is not None
        tags = {
            "benchmark.port": link.port_name,
            "benchmark.device_board": info.board_name,
            "target": target.name,
        }
        log.info("streaming %d samples to %s on %s", len(inputs), info.model_name, link.port_name)
        run = stream(
            link, inputs, warmup=settings.warmup, repeats=settings.repeats, progress=settings.progress
        )
    return run, info, tags


def benchmark(
    cfg: Any,
    target: Target,
    tflite: bytes,
    firmware: FirmwareResult,
    data: DatasetSplits,
    out_dir: Path,
    profile: ProfileResult | None = None,
) -> BenchmarkResult:
    """Run and measure (see the module docstring); `profile` gives the per-layer estimates that
    `benchmark.layers=true` sets beside the device's per-layer counts."""
    from tinyml_exp.evaluate.interpreters import io_specs

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
    run, info, tags = _stream(settings, target, firmware, tflite, inputs)
    unit = info.counter_unit
    summary = summarize(run, labels, out_spec, clock_hz=settings.clock_hz, unit=unit, reference=reference)
    csv_path = write_csv(
        out_dir / "benchmark" / f"{firmware.model_name}_device_samples.csv", run, summary, labels
    )
    metrics, tags = dict(summary.metrics), {**tags, **summary.tags}
    result = BenchmarkResult(
        summary, run, csv_path, metrics=metrics, tags=tags, artifacts=[("benchmark", csv_path)]
    )
    _report(summary, unit, settings.clock_hz)
    if isinstance(run.error, KeyboardInterrupt):
        raise StageInterrupted(result) from run.error
    if run.error is not None:
        raise BenchmarkError(
            f"benchmark stopped after {run.completed} of {run.requested} samples "
            f"(their results are logged): {run.error}",
            partial=result,
        ) from run.error
    if cfg.benchmark.cycle_model and target.core == "cortex-m4":
        _add_cycle_model(result, target, firmware, inputs[0], in_spec.dtype, out_dir)
    if settings.layers:
        _add_layers(result, cfg, settings, target, firmware, tflite, inputs, out_dir, profile)
    return result


def _add_cycle_model(
    result: BenchmarkResult,
    target: Target,
    firmware: FirmwareResult,
    sample: bytes,
    dtype: Any,
    out_dir: Path,
) -> None:
    """Modelled Cortex-M4 cycles of one inference beside the device's count (QEMU counts
    instructions; a board's cycles include load, branch and flash wait-state costs)."""
    import numpy as np

    from tinyml_exp.export.cgen.cycle_model import cycle_metrics, cycle_model_missing

    missing = "the firmware has no generated C to model" if firmware.cgen is None else cycle_model_missing()
    if missing is not None:
        result.tags["cycles.modelled_skipped"] = missing
        return
    work = out_dir / "benchmark" / "cycle_model"
    x = np.frombuffer(sample, dtype=dtype)
    metrics = cycle_metrics(
        firmware.cgen.model_c.parent, x, work, firmware.cgen.macs, target.flash_wait_states
    )
    result.metrics.update(metrics)
    result.tags["cycles.modelled_flash_wait_states"] = str(target.flash_wait_states or 0)


def _add_layers(
    result: BenchmarkResult,
    cfg: Any,
    settings: BenchmarkSettings,
    target: Target,
    firmware: FirmwareResult,
    tflite: bytes,
    inputs: list[bytes],
    out_dir: Path,
    profile: ProfileResult | None,
) -> None:
    """`benchmark.layers=true`: per-layer counts from the profiling build, into `result`."""
    from tinyml_exp.hardware import layers as per_layer

    assert firmware.build is not None and firmware.cgen is not None
    directory = out_dir / "benchmark"
    try:
        build = per_layer.profiling_build(firmware.build, directory / "layers_firmware", cfg.firmware.jobs)
        expected = ModelIdentity.from_tflite(tflite, firmware.model_name)
        counts = per_layer.measure_layers(
            settings, build, firmware.cgen, inputs, emulated=target.emulated, expected=expected
        )
    except Exception as e:  # the whole-model figures are kept and logged first
        raise BenchmarkError(f"per-layer counts (benchmark.layers=true) failed: {e}", partial=result) from e
    counts.estimates = per_layer.profile_estimates(profile, counts.ops)
    result.layers = counts
    result.metrics.update(per_layer.layer_metrics(counts))
    tables = per_layer.write_tables(counts, directory, firmware.model_name)
    plot = per_layer.plot_layers(counts, directory / f"{firmware.model_name}_layers.png")
    result.artifacts += [("benchmark", path) for path in (*tables, plot)]
    log.info(
        "device per layer (%s): %s",
        counts.unit,
        ", ".join(f"{n} {c}" for n, c in zip(counts.names, counts.counts, strict=True)),
    )


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
