"""Pareto fronts: accuracy (higher is better) against a cost (lower is better), as PNG plots.

Each axis is one stated measure: the first of a plot's measures (measured before estimated) that
at least two runs have, and only the runs that have it are drawn — an estimate and a measurement
never share an axis. Every point is named with its method.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tinyml_exp.report.table import Run, count_unit


@dataclass(frozen=True)
class Measure:
    metric: str
    label: str  # may name {backend}, {unit}, {target}, {samples}


COSTS: tuple[tuple[str, tuple[Measure, ...]], ...] = (
    # The RAM the chosen backend needs (profile.backend: the generated C's activation buffer, or
    # the smallest TFLM arena), not the layer formula, which measures something else.
    ("pareto_ram", (Measure("ram/estimate_bytes", "RAM the {backend} backend needs (B)"),)),
    (
        "pareto_flash",
        (
            Measure("flash/firmware_bytes", "firmware flash, built for {target} (B)"),
            Measure("flash/estimate_bytes", "flash, {backend} estimate (B)"),
        ),
    ),
    ("pareto_size", (Measure("size/tflite_bytes", ".tflite size (B)"),)),
    (
        "pareto_cycles",
        (
            Measure("cycles/median", "{unit} per inference, measured on {target}"),
            Measure("cycles/estimate", "{unit} per inference, {backend} estimate for {target}"),
        ),
    ),
)
# The whole test split in TFLite before the device's stated sample: the device's int8 outputs are
# the TFLite reference kernels' (the benchmark checks it), on far fewer images.
ACCURACY: tuple[Measure, ...] = (
    Measure("accuracy/tflite", "accuracy in TFLite (%{samples})"),
    Measure("accuracy/device", "accuracy on the device (%{samples})"),
    Measure("accuracy/tflm", "accuracy in TFLM (%{samples})"),
    Measure("accuracy/keras", "accuracy in Keras (%)"),
)
_SAMPLES = {
    "accuracy/tflite": "evaluate/tflite_samples",
    "accuracy/device": "benchmark/samples",
    "accuracy/tflm": "evaluate/tflm_samples",
}


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of points no other point beats: lower or equal cost and higher or equal accuracy,
    strictly better in one. Sorted by cost."""
    front = []
    for i, (cost, acc) in enumerate(points):
        dominated = any(
            (c <= cost and a >= acc) and (c < cost or a > acc) for j, (c, a) in enumerate(points) if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def choose(runs: Sequence[Run], measures: Sequence[Measure]) -> tuple[Measure | None, list[Run]]:
    """The first measure at least two runs have, and those runs."""
    for measure in measures:
        having = [r for r in runs if measure.metric in r.metrics]
        if len(having) >= 2:
            return measure, having
    return None, []


def axis_label(measure: Measure, runs: Sequence[Run]) -> str:
    """The measure's label with the runs' backend, count unit, target and sample count filled in
    (several values are listed, so a mixed axis says so)."""

    def common(key: str) -> str:
        values = sorted({r.tags.get(key, "?") for r in runs})
        return "/".join(values)

    samples = sorted({r.metrics.get(_SAMPLES.get(measure.metric, ""), -1.0) for r in runs})
    shown = f", {samples[0]:,.0f} test images" if len(samples) == 1 and samples[0] > 0 else ""
    return measure.label.format(
        backend=common("profile.backend"), unit=count_unit(runs), target=common("target"), samples=shown
    )


def point_labels(
    runs: Sequence[Run], keys: Sequence[str] = ("architecture", "target", "firmware.weights")
) -> list[str]:
    """The method, with the architecture, target and weight encoding where runs differ in them."""
    keys = [k for k in keys if len({r.tags[k] for r in runs if r.tags.get(k)}) > 1]
    return [" ".join([r.method or r.name, *(r.tags.get(k, "") for k in keys)]).strip() for r in runs]


def plot_pareto(runs: Sequence[Run], out_dir: Path) -> list[Path]:
    """One PNG per cost that at least two runs report."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter

    from tinyml_exp.report.labels import place_labels

    accuracy, scored = choose(runs, ACCURACY)
    written = []
    for stem, measures in COSTS:
        cost, usable = choose(scored, measures)
        if cost is None or accuracy is None:
            continue
        points = [(r.metrics[cost.metric], 100 * r.metrics[accuracy.metric]) for r in usable]
        front = pareto_front(points)
        fig, ax = plt.subplots(figsize=(8, 5.5))
        on_front = set(front)
        others = [p for i, p in enumerate(points) if i not in on_front]
        if others:
            ax.scatter(*zip(*others, strict=True), color="0.55", s=18, zorder=3, label="dominated")
        ax.plot(
            *zip(*(points[i] for i in front), strict=True),
            "o-",
            color="tab:red",
            ms=5,
            zorder=3,
            label="Pareto front",
        )
        ax.set_xlabel(axis_label(cost, usable))
        ax.set_ylabel(axis_label(accuracy, usable))
        ax.xaxis.set_major_formatter(EngFormatter(sep=" "))  # 20 k, 14 M: never 1e7 at the corner
        ax.grid(alpha=0.3)
        ax.margins(x=0.18, y=0.18)  # room for the labels of the outermost points
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        place_labels(ax, points, point_labels(usable), line=[points[i] for i in front])
        path = out_dir / f"{stem}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written
