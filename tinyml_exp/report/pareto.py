"""Pareto fronts: accuracy (higher is better) against a cost (lower is better), as PNG plots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tinyml_exp.report.table import Run

# (file stem, x label, metric names tried in order: measured before estimated)
COSTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "pareto_ram",
        "RAM (bytes): TFLM arena, else layer formula",
        ("ram/tflm_arena_bytes", "ram/formula_bytes"),
    ),
    ("pareto_size", ".tflite size (bytes)", ("size/tflite_bytes",)),
    (
        "pareto_cycles",
        "cycles per inference (measured, else estimated)",
        ("cycles/median", "cycles/estimate"),
    ),
)
ACCURACY = ("accuracy/device", "accuracy/tflm", "accuracy/tflite", "accuracy/keras")


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


def label(run: Run) -> str:
    parts = [run.tags.get("compression", ""), run.tags.get("architecture", ""), run.tags.get("target", "")]
    return "/".join(p for p in parts if p) or run.name


def plot_pareto(runs: Sequence[Run], out_dir: Path) -> list[Path]:
    """One PNG per cost that at least two runs report; the front is drawn and its points named."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for stem, xlabel, names in COSTS:
        usable = [(r, r.metric(*names), r.metric(*ACCURACY)) for r in runs]
        usable = [(r, c, a) for r, c, a in usable if c is not None and a is not None]
        if len(usable) < 2:
            continue
        points = [(c, a) for _, c, a in usable]
        front = pareto_front(points)
        fig, ax = plt.subplots(figsize=(7, 4.5))
        ax.scatter([p[0] for p in points], [100 * p[1] for p in points], color="0.6", label="runs")
        ax.plot(
            [points[i][0] for i in front],
            [100 * points[i][1] for i in front],
            "o-",
            color="tab:red",
            label="Pareto front",
        )
        for i in front:
            ax.annotate(
                label(usable[i][0]),
                (points[i][0], 100 * points[i][1]),
                fontsize=8,
                xytext=(4, 4),
                textcoords="offset points",
            )
        ax.set_xlabel(xlabel)
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
        fig.tight_layout()
        path = out_dir / f"{stem}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written
