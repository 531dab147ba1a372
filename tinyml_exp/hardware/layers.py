"""Per-layer counts on the device (`benchmark.layers=true`, issue 14).

The model's C is built a second time with -DTME_PROFILE_LAYERS, which reads the counter between
its kernel calls (the run's main firmware and its counts stay the default build's); a few samples
go through it, each INFER followed by LAYERS (PROTOCOL.md §4.6). Layer i is the generated code's
i-th kernel call, named `<index>_<label>` (`00_conv_2d_max_pool_2d`), and compared with the
profile stage's cost-model estimate of the TFLite operators it runs (RESHAPE, free in the
generated code, has no call; the profile's per-inference overhead is in its first layer).

Metrics: `layer/<index>_<op>/<unit>` (instructions under QEMU, cycles on a board; the median over
the samples), `layers/sum` (their total) and `layers/untimed` (the profiling build's whole count
minus that sum: the call and one counter read). Artifacts: a CSV and a markdown table, a bar plot.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tinyml_exp.hardware.build import build_firmware
from tinyml_exp.hardware.link import ModelIdentity
from tinyml_exp.hardware.protocol import CounterUnit
from tinyml_exp.hardware.session import BenchmarkSettings, open_device

if TYPE_CHECKING:
    from tinyml_exp.export.cgen import CGenResult
    from tinyml_exp.hardware.build import FirmwareBuild
    from tinyml_exp.profile.result import ProfileResult

log = logging.getLogger(__name__)

LAYER_SAMPLES = 3  # QEMU's counts are exact; a board's vary a little: the median of a few
PROFILE_DEFINE = "TME_PROFILE_LAYERS"
TABLE_COLUMNS = ("layer", "name", "kernel", "tflite_ops", "count", "share_pct", "estimate", "error_pct")


@dataclass
class LayerCounts:
    """One row per kernel call of the generated code, in call order."""

    names: list[str]  # MLflow-safe: `00_conv_2d_max_pool_2d`
    labels: list[str]  # the generator's label: `CONV_2D+MAX_POOL_2D`
    ops: list[tuple[int, ...]]  # TFLite operator indices per call
    counts: list[int]  # median over the samples
    whole: int  # median INFER count of the profiling build
    unit: str  # "instructions" or "cycles"
    samples: int
    estimates: list[float] | None = None  # the profile's estimate per call, same unit


def layer_names(labels: Sequence[str]) -> list[str]:
    """`<index>_<label>` in lower case with anything but letters, digits and `_` made `_`."""
    width = max(2, len(str(max(len(labels) - 1, 0))))
    return [
        f"{i:0{width}d}_{re.sub(r'[^a-z0-9_]+', '_', label.lower()).strip('_')}"
        for i, label in enumerate(labels)
    ]


def profile_estimates(profile: ProfileResult | None, ops: Sequence[tuple[int, ...]]) -> list[float] | None:
    """The cgen cost model's estimate per kernel call: the sum over the operators it runs."""
    if profile is None:
        return None
    cycles = profile.layer_cycles("cgen")
    if cycles is None:
        return None
    by_op = {layer.index: c for layer, c in zip(profile.layers, cycles, strict=True)}
    return [float(sum(by_op.get(op, 0.0) for op in step)) for step in ops]


def profiling_build(build: FirmwareBuild, out_dir: Path, jobs: int) -> FirmwareBuild:
    """The run's firmware again, with the model's kernel calls timed."""
    return build_firmware(build.board, build.model_dir, out_dir, jobs=jobs, defines=[PROFILE_DEFINE])


def measure_layers(
    settings: BenchmarkSettings,
    build: FirmwareBuild,
    cgen: CGenResult,
    inputs: Sequence[bytes],
    *,
    emulated: bool,
    expected: ModelIdentity,
) -> LayerCounts:
    """INFER + LAYERS on the first `LAYER_SAMPLES` inputs through the profiling `build`."""
    labels = list(cgen.step_labels)
    rows, wholes = [], []
    with open_device(settings, build, emulated=emulated, expected=expected) as link:
        assert link.info is not None
        unit = "instructions" if link.info.counter_unit == CounterUnit.INSTRUCTIONS else "cycles"
        for data in inputs[:LAYER_SAMPLES]:
            wholes.append(link.infer(data).count)
            counts = link.layers(len(labels))
            if sum(counts) == 0:
                raise ValueError("the device reports no layer counts after an inference (did it restart?)")
            rows.append(counts)
    medians = [int(v) for v in np.median(np.asarray(rows, dtype=np.float64), axis=0)]
    return LayerCounts(
        layer_names(labels), labels, list(cgen.step_ops), medians, int(np.median(wholes)), unit, len(rows)
    )


def layer_metrics(layers: LayerCounts) -> dict[str, float]:
    metrics = {
        f"layer/{name}/{layers.unit}": float(c) for name, c in zip(layers.names, layers.counts, strict=True)
    }
    metrics["layers/sum"] = float(sum(layers.counts))
    metrics["layers/untimed"] = float(layers.whole - sum(layers.counts))
    return metrics


def _rows(layers: LayerCounts) -> list[list[str]]:
    total = sum(layers.counts) or 1
    rows = []
    for i, (name, label, ops, count) in enumerate(
        zip(layers.names, layers.labels, layers.ops, layers.counts, strict=True)
    ):
        estimate = layers.estimates[i] if layers.estimates is not None else None
        error = 100.0 * (estimate - count) / count if estimate is not None and count else None
        rows.append(
            [
                str(i),
                name,
                label,
                " ".join(map(str, ops)),
                str(count),
                f"{100.0 * count / total:.1f}",
                "" if estimate is None else f"{estimate:.0f}",
                "" if error is None else f"{error:+.1f}",
            ]
        )
    return rows


def write_tables(layers: LayerCounts, directory: Path, stem: str) -> list[Path]:
    """`<stem>_layers.csv` and `<stem>_layers.md`: count, share and the profile's estimate per layer."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = _rows(layers)
    csv_path, md_path = directory / f"{stem}_layers.csv", directory / f"{stem}_layers.md"
    with csv_path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(TABLE_COLUMNS)
        writer.writerows(rows)
    lines = [
        f"Per-layer {layers.unit} on the device (median of {layers.samples} samples, profiling build: "
        f"whole inference {layers.whole}, layers {sum(layers.counts)})",
        "",
        "| " + " | ".join(TABLE_COLUMNS) + " |",
        "|" + "---|" * len(TABLE_COLUMNS),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    md_path.write_text("\n".join(lines) + "\n")
    return [csv_path, md_path]


def plot_layers(layers: LayerCounts, path: Path) -> Path:
    """Bars per layer: the device's count, and the profile's estimate beside it when there is one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(layers.counts)
    x = np.arange(n)
    width = 0.4 if layers.estimates is not None else 0.7
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * n + 2), 4.5))
    ax.bar(x - (width / 2 if layers.estimates is not None else 0), layers.counts, width, label="device")
    if layers.estimates is not None:
        ax.bar(x + width / 2, layers.estimates, width, label="profile estimate (cgen)")
    ax.set_xticks(
        list(x),
        [f"{i}\n{label.replace('_', ' ').lower()}" for i, label in enumerate(layers.labels)],
        fontsize=7,
    )
    ax.set_ylabel(layers.unit)
    ax.set_title(f"{layers.unit} per kernel call (median of {layers.samples} samples)")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
