"""Stream samples through the firmware and turn what comes back into the benchmark's figures.

    inputs = quantize_samples(images, device_input_spec)        # exactly as the model expects
    run = stream(link, inputs, warmup=1, repeats=1)              # never raises: run.error
    figures = summarize(run, labels, reference_outputs, out_spec, clock_hz, unit)

`stream` keeps every reply it confirmed, even when the link fails half-way or the user presses
Ctrl-C: the error is stored in `run.error`, and the caller logs the partial figures before it
re-raises. Metric names are the project's (DESIGN.md §2): `accuracy/device`,
`agreement/device_vs_tflite`, `cycles/median` ... `latency/ms`, `throughput/fps`, `link/*`.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyml_exp.evaluate.interpreters import TensorSpec, dequantize_output, quantize_input
from tinyml_exp.hardware.link import LinkStats, ReliableLink
from tinyml_exp.hardware.protocol import CounterUnit, TensorInfo

log = logging.getLogger(__name__)

CSV_COLUMNS = ("index", "label", "prediction", "cycles", "reference_prediction", "output_matches_reference")


def tensor_spec(info: TensorInfo) -> TensorSpec:
    """The device's description of a tensor, in the form `quantize_input` takes."""
    from tinyml_exp.hardware.protocol import DTYPE_NAMES

    return TensorSpec(
        info.shape, np.dtype(DTYPE_NAMES[info.dtype_code]), float(np.float32(info.scale)), info.zero_point
    )


def quantize_samples(images: np.ndarray, spec: TensorSpec) -> list[bytes]:
    """Float images (N × ...) → one raw input tensor per sample, as TFLite's QUANTIZE would make it."""
    count = int(np.prod(spec.shape))
    flat = images.reshape(len(images), -1)
    if flat.shape[1] != count:
        raise ValueError(
            f"samples of {flat.shape[1]} values do not fit the model input {spec.shape} ({count} values)"
        )
    quantized = quantize_input(flat, spec)
    return [row.astype(spec.dtype.newbyteorder("<"), copy=False).tobytes() for row in quantized]


def reference_outputs(tflite: bytes, inputs: Sequence[bytes]) -> np.ndarray:
    """Raw output tensors of the TFLite interpreter's reference kernels (OpResolverType.BUILTIN_REF,
    which TFLite Micro matches bit for bit) on the same input bytes the device gets; N × outputs."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=tflite, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    rows = []
    for data in inputs:
        interpreter.set_tensor(inp["index"], np.frombuffer(data, dtype=inp["dtype"]).reshape(inp["shape"]))
        interpreter.invoke()
        rows.append(interpreter.get_tensor(out["index"]).reshape(-1).copy())
    return np.stack(rows) if rows else np.zeros((0, int(np.prod(out["shape"]))), dtype=out["dtype"])


@dataclass
class StreamRun:
    """What came back, sample by sample, in order: entry i is sample i. Incomplete if `error`."""

    requested: int
    outputs: list[bytes] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)  # per sample: the median over its repeats
    inconsistent: int = 0  # samples whose repeats gave different outputs (must stay 0)
    seconds: float = 0.0  # wall time of the measured part (warm-up excluded)
    wire_bytes: int = 0  # bytes on the wire both ways in that time (framing and retries included)
    stats: LinkStats = field(default_factory=LinkStats)
    error: BaseException | None = None

    @property
    def completed(self) -> int:
        return len(self.counts)


def stream(
    link: ReliableLink,
    inputs: Sequence[bytes],
    *,
    warmup: int = 0,
    repeats: int = 1,
    progress: bool = True,
    on_sample: Callable[[int], None] | None = None,
) -> StreamRun:
    """Sends every input `repeats` times (after `warmup` runs of the first one) and collects the
    outputs and counts. Never raises for the link or Ctrl-C: see `StreamRun.error`."""
    from tqdm.auto import tqdm

    run = StreamRun(requested=len(inputs), stats=link.stats)
    bar = tqdm(
        total=len(inputs), desc="device", unit="sample", disable=None if progress else True, leave=False
    )
    log_every = max(1, len(inputs) // 10)  # progress in the log too: the bar shows on a terminal only
    start, wire_start = time.perf_counter(), 0
    try:
        for _ in range(warmup if inputs else 0):
            link.infer(inputs[0])
        start, wire_start = time.perf_counter(), link.stats.bytes_sent + link.stats.bytes_received
        for index, data in enumerate(inputs):
            results = [link.infer(data) for _ in range(repeats)]
            if any(r.output != results[0].output for r in results[1:]):
                run.inconsistent += 1
                log.warning("sample %d: the device gave different outputs for the same input", index)
            run.outputs.append(results[0].output)
            run.counts.append(int(np.median([r.count for r in results])))
            bar.update(1)
            if (index + 1) % log_every == 0:
                rate = (index + 1) / (time.perf_counter() - start)
                log.info("device: %d of %d samples (%.1f samples/s)", index + 1, len(inputs), rate)
            if on_sample is not None:
                on_sample(index)
    except (Exception, KeyboardInterrupt) as e:  # kept for the caller, who logs what arrived first
        run.error = e
        log.error("benchmark stopped after %d of %d samples: %s", run.completed, run.requested, e)
    finally:
        run.seconds = time.perf_counter() - start
        run.wire_bytes = link.stats.bytes_sent + link.stats.bytes_received - wire_start
        bar.close()
    return run


def _as_real(outputs: np.ndarray, spec: TensorSpec) -> np.ndarray:
    return dequantize_output(outputs, spec).reshape(len(outputs), -1)


def decode_outputs(raw: Sequence[bytes], spec: TensorSpec) -> np.ndarray:
    dtype = spec.dtype.newbyteorder("<")
    return np.stack([np.frombuffer(b, dtype=dtype) for b in raw]) if raw else np.zeros((0, 0), dtype=dtype)


@dataclass
class Summary:
    """The benchmark's figures, and per-sample rows for the CSV."""

    metrics: dict[str, float]
    tags: dict[str, str]
    predictions: np.ndarray
    reference_predictions: np.ndarray | None
    exact: np.ndarray | None  # per sample: output bytes equal the reference's


def _agreement(
    raw: np.ndarray,
    predictions: np.ndarray,
    reference: np.ndarray,
    labels: np.ndarray | None,
    spec: TensorSpec,
) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """The device's outputs against the TFLite reference kernels' on the same inputs: metrics,
    the reference's predictions, and per sample whether the bytes are equal."""
    n = len(predictions)
    ref = reference[:n]
    ref_pred = _as_real(ref, spec).argmax(axis=1)
    exact = np.all(raw.reshape(ref.shape) == ref, axis=1)
    diff = np.abs(_as_real(raw, spec) - _as_real(ref, spec))
    metrics = {
        "agreement/device_vs_tflite": float((predictions == ref_pred).mean()),
        "agreement/device_vs_tflite_exact": float(exact.mean()),
        "error/device_vs_tflite_max_abs": float(diff.max()),
    }
    if labels is not None:
        metrics["accuracy/tflite_reference"] = float((ref_pred == labels[:n]).mean())
    return metrics, ref_pred, exact


def _count_metrics(run: StreamRun, clock_hz: float) -> dict[str, float]:
    """Cycle (or instruction) counts, latency and throughput; the link's rate."""
    counts = np.asarray(run.counts, dtype=np.float64)
    median = float(np.median(counts))
    metrics = {
        "cycles/median": median,
        "cycles/mean": float(counts.mean()),
        "cycles/min": float(counts.min()),
        "cycles/max": float(counts.max()),
        "latency/ms": 1000.0 * median / clock_hz,
        "throughput/fps": clock_hz / median if median > 0 else 0.0,
    }
    if run.seconds > 0:
        metrics["link/bytes_per_s"] = run.wire_bytes / run.seconds
        metrics["link/samples_per_s"] = run.completed / run.seconds
    return metrics


def summarize(
    run: StreamRun,
    labels: np.ndarray | None,
    out_spec: TensorSpec,
    *,
    clock_hz: float,
    unit: CounterUnit,
    reference: np.ndarray | None = None,
) -> Summary:
    """Metrics over the samples that completed. `reference` holds the TFLite reference kernels' raw
    outputs (N × outputs) for the same inputs; `labels` the true classes."""
    n = run.completed
    raw = decode_outputs(run.outputs, out_spec)
    predictions = _as_real(raw, out_spec).argmax(axis=1) if n else np.zeros(0, dtype=np.int64)
    metrics: dict[str, float] = {
        "benchmark/samples": float(n),
        "benchmark/samples_requested": float(run.requested),
    }
    if labels is not None and n:
        metrics["accuracy/device"] = float((predictions == labels[:n]).mean())
    ref_pred = exact = None
    if reference is not None and n:
        agreement, ref_pred, exact = _agreement(raw, predictions, reference, labels, out_spec)
        metrics.update(agreement)
    if n:
        metrics.update(_count_metrics(run, clock_hz))
    metrics["benchmark/inconsistent_outputs"] = float(run.inconsistent)
    metrics.update(run.stats.metrics())
    unit_name = "instructions" if unit == CounterUnit.INSTRUCTIONS else "cycles"
    tags = {
        "cycles.unit": unit_name,
        "latency.basis": f"{unit_name} / {clock_hz / 1e6:g} MHz",
        "benchmark.complete": str(n == run.requested and run.error is None).lower(),
    }
    return Summary(metrics, tags, predictions, ref_pred, exact)


def write_csv(path: Path, run: StreamRun, summary: Summary, labels: np.ndarray | None) -> Path:
    """One row per completed sample: index, label, prediction, cycles (+ the reference's view)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for i in range(run.completed):
            writer.writerow(
                [
                    i,
                    "" if labels is None else int(labels[i]),
                    int(summary.predictions[i]),
                    run.counts[i],
                    "" if summary.reference_predictions is None else int(summary.reference_predictions[i]),
                    "" if summary.exact is None else int(summary.exact[i]),
                ]
            )
    return path
