"""Per-layer memory and compute plot of a `ProfileResult` (PNG, matplotlib's Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tinyml_exp.profile.result import ProfileResult

_KB = 1024.0


def plot_memory(result: ProfileResult, path: Path) -> Path:
    """Top: each layer's inputs + outputs + params (the course formula's terms), with the formula
    peak, the TFLM arena and the target's available RAM as lines. Bottom: estimated cycles per
    layer for the chosen backend. Returns `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = result.layers
    labels = [f"{layer.index}\n{layer.op.replace('_', ' ').lower()}" for layer in layers]
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(max(7.0, 1.1 * len(layers) + 2), 7.5), sharex=True, height_ratios=(3, 2)
    )
    _memory_panel(top, result)
    _cycles_panel(bottom, result)
    bottom.set_xticks(list(range(len(layers))), labels, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _memory_panel(top, result: ProfileResult) -> None:
    layers = result.layers
    x = range(len(layers))
    inputs = [layer.input_bytes / _KB for layer in layers]
    outputs = [layer.output_bytes / _KB for layer in layers]
    params = [layer.params_bytes / _KB for layer in layers]
    top.bar(x, inputs, label="input activations", color="#8fb8de")
    top.bar(x, outputs, bottom=inputs, label="output activations", color="#3a7ab8")
    top.bar(
        x,
        params,
        bottom=[a + b for a, b in zip(inputs, outputs, strict=True)],
        label="parameters",
        color="#f2a65a",
    )
    peak = max((layer.formula_bytes for layer in layers), default=0) / _KB
    top.axhline(peak, color="#555555", linestyle="--", linewidth=1, label=f"formula max {peak:,.1f} KB")
    arena = result.arena
    arena_kb = arena.total_bytes / _KB if arena is not None and arena.ok else 0.0
    if arena_kb:
        top.axhline(arena_kb, color="#2e8b57", linewidth=1.5, label=f"TFLM arena {arena_kb:,.1f} KB")
    if result.flash.cgen is not None:
        cgen_kb = result.flash.cgen.activation_bytes / _KB
        top.axhline(
            cgen_kb,
            color="#7d5ba6",
            linewidth=1.5,
            linestyle=":",
            label=f"generated C buffer {cgen_kb:,.1f} KB",
        )
    _available_line(top, result, max(peak, arena_kb))
    top.set_ylabel("KB (artifact dtypes)")
    verdict = "fits" if result.verdict.fits else "does NOT fit"
    top.set_title(
        f"{result.name} on {result.target.name} ({result.dtype}): {verdict} with {result.backend}",
        fontsize=10,
    )
    top.legend(fontsize=8, loc="upper left")
    top.grid(axis="y", alpha=0.3)


def _available_line(top, result: ProfileResult, ceiling: float) -> None:
    """The target's available RAM, as a line when it is near the bars, else in the legend only
    (a line far above the bars would flatten them)."""
    available = result.verdict.ram_available_bytes / _KB
    label = f"{result.target.name} RAM available {available:,.0f} KB"
    on_scale = available <= 5 * ceiling
    if on_scale:
        top.axhline(available, color="#c0392b", linewidth=1.5, label=label)
    else:
        top.plot([], [], color="#c0392b", linewidth=1.5, label=f"{label} (off scale)")
    shown = [ceiling, 1e-3, *([available] if on_scale else [])]
    top.set_ylim(0, 1.1 * max(shown))  # headroom so the top line is not on the frame


def _cycles_panel(bottom, result: ProfileResult) -> None:
    cycles = result.layer_cycles()
    if cycles:
        total = sum(cycles)
        bottom.bar(range(len(cycles)), [c / 1e3 for c in cycles], color="#7d5ba6")
        for i, c in enumerate(cycles):
            if total and c / total >= 0.02:
                bottom.text(i, c / 1e3, f"{100 * c / total:.0f}%", ha="center", va="bottom", fontsize=8)
        unit = "k instructions" if result.target.count_unit == "instructions" else "k cycles"
        bottom.set_ylabel(f"{unit} (estimate)")
        bottom.set_title(
            f"{result.backend}: {total / 1e6:,.3f} M {unit.split()[-1]} per inference", fontsize=9
        )
    else:
        bottom.text(0.5, 0.5, f"no cost model for {result.backend} on {result.target.core}", ha="center")
    bottom.margins(y=0.15)  # room for the percentage labels
    bottom.grid(axis="y", alpha=0.3)
