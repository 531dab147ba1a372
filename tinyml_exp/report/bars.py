"""Firmware flash and instructions (or cycles) per method as bars, dense weights beside encoded
ones when the runs have encodings (`export.weights`): what an encoding buys on the device."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tinyml_exp.report.pareto import point_labels
from tinyml_exp.report.table import Run, count_unit


@dataclass
class Pair:
    """One method's runs: with dense weights and with an encoding (either may be missing)."""

    label: str
    dense: Run | None = None
    encoded: Run | None = None

    def flash(self) -> tuple[float | None, bool, float | None]:
        """(dense flash, whether that figure is computed rather than built, encoded flash)."""
        encoded = self.encoded.metric("flash/firmware_bytes") if self.encoded else None
        if self.dense is not None:
            return self.dense.metric("flash/firmware_bytes"), False, encoded
        if self.encoded is None:
            return None, False, None
        weights = self.encoded.metric("flash/c_weights_bytes")
        dense_weights = self.encoded.metric("flash/c_weights_dense_bytes")
        if encoded is None or weights is None or dense_weights is None:
            return None, False, encoded
        # The same image with its weight arrays dense again (the kernels' code is not swapped back).
        return encoded - weights + dense_weights, True, encoded

    def count(self) -> tuple[float | None, float | None]:
        def of(run: Run | None) -> float | None:
            return run.metric("cycles/median") if run is not None else None

        return of(self.dense), of(self.encoded)


def weights_mode(run: Run) -> str:
    return run.tags.get("firmware.weights") or run.params.get("export.weights") or "dense"


def pairs(runs: Sequence[Run]) -> list[Pair]:
    """The runs with a built firmware, one Pair per method (the newest run of each kind wins)."""
    built = [r for r in runs if "flash/firmware_bytes" in r.metrics]
    found: dict[str, Pair] = {}
    for run, label in zip(built, point_labels(built, ("architecture", "target")), strict=True):
        pair = found.setdefault(label, Pair(label))
        if weights_mode(run) == "dense":
            pair.dense = run
        else:
            pair.encoded = run
    return sorted(found.values(), key=lambda p: p.label)


def plot_device_bars(runs: Sequence[Run], out_dir: Path) -> list[Path]:
    """device_bars.png when at least one run built a firmware: flash per method, and the count
    per inference measured on the device when it ran."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    found = pairs(runs)
    if not found:
        return []
    encodings = any(p.encoded is not None for p in found)
    measured = [
        r for p in found for r in (p.dense, p.encoded) if r is not None and "cycles/median" in r.metrics
    ]
    panels = 2 if measured else 1
    fig, axes = plt.subplots(
        1, panels, figsize=(6 * panels, 0.55 * len(found) + 1.6), sharey=True, squeeze=False
    )
    ys = range(len(found))
    flash = [p.flash() for p in found]
    dense, computed, encoded = zip(*flash, strict=True)
    _bars(axes[0][0], ys, dense, encoded, encodings, 1e3, "kB", hatched=computed)
    axes[0][0].set_xlabel("firmware flash (kB = 1,000 B)")
    if measured:
        unit = count_unit(measured)
        counts = [p.count() for p in found]
        largest = max(v for pair in counts for v in pair if v is not None)
        scale, prefix, words = (1e6, "M", "millions") if largest >= 1e6 else (1e3, "k", "thousands")
        _bars(axes[0][1], ys, *zip(*counts, strict=True), encodings, scale, prefix)
        targets = "/".join(sorted({r.tags.get("target", "?") for r in measured}))
        axes[0][1].set_xlabel(f"{unit} per inference on {targets}, measured ({words})")
    axes[0][0].set_yticks(list(ys), [p.label for p in found])
    axes[0][0].invert_yaxis()
    _legend(fig, encodings, any(f[1] for f in flash))
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    path = out_dir / "device_bars.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]


def _legend(fig, encodings: bool, computed: bool) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(color="tab:blue", label="dense weights")]
    if encodings:
        handles.append(Patch(color="tab:orange", label="encoded weights (export.weights)"))
    if computed:
        handles.append(
            Patch(
                fc="white",
                ec="tab:blue",
                hatch="///",
                label="dense, computed from the C weights (flash only)",
            )
        )
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=8, frameon=False)


def _bars(ax, ys, dense, encoded, encodings: bool, scale: float, unit: str, hatched=None) -> None:
    """Dense (and encoded) bars per row, each with its value at its end; a missing figure gets no
    bar and the label "—"."""
    height = 0.38 if encodings else 0.7
    series = [(dense, "tab:blue", -height / 2 if encodings else 0.0)]
    if encodings:
        series.append((encoded, "tab:orange", height / 2))
    top = max((v for values, _, _ in series for v in values if v is not None), default=1.0) / scale
    for values, color, shift in series:
        for i, (y, value) in enumerate(zip(ys, values, strict=True)):
            if value is None:
                ax.text(0, y + shift, " —", va="center", fontsize=7, color="0.4")
                continue
            computed = bool(hatched and hatched[i] and color == "tab:blue")
            style = {"fc": "white", "ec": color, "hatch": "///"} if computed else {"color": color}
            ax.barh(y + shift, value / scale, height=height, **style)
            ax.text(
                value / scale + top * 0.01,
                y + shift,
                f"{_short(value / scale)} {unit}",
                va="center",
                fontsize=7,
            )
    ax.set_xlim(0, top * 1.2)
    ax.grid(axis="x", alpha=0.3)


def _short(x: float) -> str:
    """Three significant digits, never an exponent: 0.427, 14.2, 89.4, 117, 1,234."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"
