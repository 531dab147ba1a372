"""A `ProfileResult` as MLflow metrics and tags, a per-layer table (CSV, markdown) and a summary."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING

from tinyml_exp.profile.layers import formula_peak
from tinyml_exp.profile.operators import BACKENDS
from tinyml_exp.profile.result import FIGURE_KINDS

if TYPE_CHECKING:
    from tinyml_exp.profile.result import ProfileResult

COLUMNS = (
    "index",
    "op",
    "version",
    "dtype",
    "input_shapes",
    "output_shapes",
    "params",
    "params_bytes",
    "input_bytes",
    "output_bytes",
    "formula_bytes",
    "macs",
    "window_ops",
    "elements",
    "cycles_estimate",
    "cycles_share_pct",
)


def _shapes(shapes: tuple[tuple[int, ...], ...]) -> str:
    return " ".join("x".join(str(d) for d in s) for s in shapes)


def _timing(cycles: float, result: ProfileResult) -> dict[str, float]:
    """latency (ms), fps and energy (µJ, where the target has a power figure) for a cycle count."""
    target = result.target
    if target.count_unit == "instructions":
        # Instructions on the emulator: the real chip's time is cycles ≈ instructions × CPI.
        from tinyml_exp.profile.costmodel import CORES

        cycles = cycles * CORES[target.core].cpi
    latency_ms = 1000.0 * cycles / target.clock_hz
    out = {"latency": latency_ms, "fps": 1000.0 / latency_ms if latency_ms > 0 else 0.0}
    if target.active_power_mw is not None:
        out["energy"] = target.active_power_mw * latency_ms  # mW × ms = µJ
    return out


def _backend_metrics(result: ProfileResult, backend: str) -> dict[str, float]:
    """Flash, cycles, latency, fps (and energy) estimates of one backend, suffixed with its name;
    the unsuffixed names too for `profile.backend`."""
    primary = backend == result.backend
    metrics: dict[str, float] = {}
    flash = result.flash.per_backend.get(backend)
    if flash is not None:
        metrics[f"flash/estimate_{backend}_bytes"] = float(flash)
        if primary:
            metrics["flash/estimate_bytes"] = float(flash)
    estimate = result.estimates[backend]
    if estimate.total is None:
        return metrics
    timing = _timing(estimate.total, result)
    metrics[f"cycles/estimate_{backend}"] = estimate.total
    metrics[f"latency/estimate_{backend}_ms"] = timing["latency"]
    metrics[f"throughput/estimate_{backend}_fps"] = timing["fps"]
    if "energy" in timing:
        metrics[f"energy/estimate_{backend}_uj"] = timing["energy"]
    if estimate.scale is not None:
        metrics[f"cycles/prior_{backend}"] = estimate.prior_total
    if primary:
        metrics["cycles/estimate"] = estimate.total
        metrics["latency/estimate_ms"] = timing["latency"]
        metrics["throughput/estimate_fps"] = timing["fps"]
        if "energy" in timing:
            metrics["energy/estimate_uj"] = timing["energy"]
    return metrics


def result_metrics(result: ProfileResult) -> dict[str, float]:
    layers = result.layers
    formula, _ = formula_peak(layers)
    metrics: dict[str, float] = {
        "macs/total": float(sum(layer.macs for layer in layers)),
        "params/tflite_total": float(sum(layer.params for layer in layers)),
        "ram/formula_bytes": float(formula),
        "flash/model_bytes": float(result.model_bytes),
    }
    arena = result.arena
    if arena is not None and arena.ok:
        metrics["ram/tflm_arena_bytes"] = float(arena.total_bytes)
        metrics["ram/tflm_arena_head_bytes"] = float(arena.head_bytes or 0)
        metrics["ram/tflm_arena_tail_bytes"] = float(arena.tail_bytes or 0)
        if arena.min_bytes is not None:
            metrics["ram/tflm_arena_min_bytes"] = float(arena.min_bytes)
        if arena.host_invoke_ms is not None:
            metrics["latency/host_tflm_measured_ms"] = arena.host_invoke_ms
    if arena is not None:
        metrics["time/arena_probe_s"] = arena.probe_seconds
    if result.flash.cgen is not None:
        metrics["ram/cgen_activation_bytes"] = float(result.flash.cgen.activation_bytes)
    if result.verdict.ram_need_bytes is not None:
        metrics["ram/estimate_bytes"] = float(result.verdict.ram_need_bytes)
    for backend in BACKENDS:
        metrics.update(_backend_metrics(result, backend))
    metrics.update(result.verdict.metrics())
    return metrics


def result_tags(result: ProfileResult) -> dict[str, str]:
    _, peak = formula_peak(result.layers)
    tags = {
        **result.verdict.tags(),
        **result.operators.tags(),
        "profile.backend": result.backend,
        "profile.dtype": result.dtype,
        "profile.figure_kinds": FIGURE_KINDS,
        "cycles_unit": result.target.count_unit,
    }
    if peak is not None:
        tags["ram.formula_layer"] = f"{peak.op} (op {peak.index})"
    for backend in BACKENDS:
        estimate = result.estimates[backend]
        if estimate.total is None:
            tags[f"cost_model.{backend}"] = f"not available for {result.target.core}"
        elif estimate.scale is None:
            tags[f"cost_model.{backend}"] = (
                estimate.basis or "prior (published/derived constants, profile/costmodel.py)"
            )
        else:
            s = estimate.scale
            tags[f"cost_model.{backend}"] = (
                f"calibrated ×{s.factor:.3f} from {s.points} point(s): {'; '.join(s.sources)}"
            )
            if estimate.basis:
                tags[f"cost_model.{backend}_basis"] = estimate.basis
    arena = result.arena
    if arena is not None:
        # The by-name check above cannot see types and options; TFLM's own Prepare can.
        tags["ops.tflm_initialises"] = str(arena.ok).lower()
        tags["arena.from_cache"] = str(arena.from_cache).lower()
        if not arena.ok:
            tags["arena.error"] = arena.error[:1000]
        if arena.crashes:
            tags["arena.probe_crashes"] = str(arena.crashes)
    tags["ops.cgen_generates"] = str(result.flash.cgen is not None).lower()
    if result.flash.cgen_error:
        tags["cgen.error"] = result.flash.cgen_error[:1000]
    return tags


def table_rows(result: ProfileResult) -> list[dict[str, object]]:
    cycles = result.layer_cycles()
    total = sum(cycles) if cycles else 0.0
    rows = []
    for i, layer in enumerate(result.layers):
        c = cycles[i] if cycles else None
        rows.append(
            {
                "index": layer.index,
                "op": layer.op,
                "version": layer.version,
                "dtype": layer.dtype,
                "input_shapes": _shapes(layer.input_shapes),
                "output_shapes": _shapes(layer.output_shapes),
                "params": layer.params,
                "params_bytes": layer.params_bytes,
                "input_bytes": layer.input_bytes,
                "output_bytes": layer.output_bytes,
                "formula_bytes": layer.formula_bytes,
                "macs": layer.macs,
                "window_ops": layer.window_ops,
                "elements": layer.elements,
                "cycles_estimate": round(c) if c is not None else "",
                "cycles_share_pct": round(100.0 * c / total, 1) if c is not None and total else "",
            }
        )
    totals = {
        "index": "",
        "op": "TOTAL",
        "params": sum(layer.params for layer in result.layers),
        "params_bytes": sum(layer.params_bytes for layer in result.layers),
        "formula_bytes": f"max {formula_peak(result.layers)[0]}",
        "macs": sum(layer.macs for layer in result.layers),
        "cycles_estimate": round(total) if cycles else "",
    }
    rows.append({column: totals.get(column, "") for column in COLUMNS})
    return rows


def table_csv(result: ProfileResult) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(table_rows(result))
    return buffer.getvalue()


def table_markdown(result: ProfileResult) -> str:
    rows = table_rows(result)
    head = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    return head + "".join("| " + " | ".join(str(row[c]) for c in COLUMNS) + " |\n" for row in rows)


def _fmt(value: float | int | None, unit: str = "B") -> str:
    return "n/a" if value is None else f"{value:,.0f} {unit}".rstrip()


def _compute_lines(result: ProfileResult) -> list[str]:
    """One line per backend with a cost model: cycles, latency, fps, energy."""
    m, unit, lines = result.metrics, result.target.count_unit, []
    for backend in BACKENDS:
        key = f"cycles/estimate_{backend}"
        if key not in m:
            continue
        energy = m.get(f"energy/estimate_{backend}_uj")
        lines.append(
            f"{'Compute' if backend == BACKENDS[0] else '':8}{backend:15} {m[key]:>14,.0f} {unit}  "
            f"{m[f'latency/estimate_{backend}_ms']:9.3f} ms  {m[f'throughput/estimate_{backend}_fps']:9.1f} fps"
            + (f"  {energy:9.1f} µJ" if energy is not None else "")
            + ("  (calibrated)" if result.estimates[backend].scale is not None else "")
            + ("  (fitted per kernel)" if result.estimates[backend].basis else "")
            + ("  <- profile.backend" if backend == result.backend else "")
        )
    return lines


def summary_text(result: ProfileResult) -> str:
    """A readable multi-line summary (what the CLI prints above the table)."""
    t, m, v, arena = result.target, result.metrics, result.verdict, result.arena
    formula, peak = formula_peak(result.layers)
    lines = [
        f"Model   {result.name}: {result.model_bytes:,} B, {result.dtype}, {len(result.layers)} operators",
        f"Target  {t.name}: {t.board} ({t.mcu}, {t.core} @ {t.clock_hz / 1e6:g} MHz, "
        f"{t.ram_bytes // 1024} KB RAM, {t.flash_bytes // 1024} KB flash)",
        f"Ops     {result.operators.operator_list}",
        "        by name: "
        + ", ".join(f"{b} {result.operators.tags()[f'ops.{b}_supported']}" for b in BACKENDS)
        + ("" if arena is None else f"; TFLM initialises it: {'yes' if arena.ok else 'no'}"),
        f"MACs    {m['macs/total']:,.0f}   params {m['params/tflite_total']:,.0f}",
        f"RAM     formula maxₗ(in+out+params) {formula:,} B at {peak.op if peak else '-'} (op {peak.index if peak else '-'})",
    ]
    if arena is not None and arena.ok:
        minimum = _fmt(arena.min_bytes) if arena.min_bytes is not None else "not probed"
        lines.append(
            f"        TFLM arena {arena.total_bytes:,} B reported (head {arena.head_bytes:,} + tail "
            f"{arena.tail_bytes:,}), minimum that runs {minimum} "
            f"[{arena.probe_seconds:.2f} s{', cached' if arena.from_cache else ''}]"
        )
    elif arena is not None:
        lines.append(f"        TFLM cannot run the model: {arena.error}")
    if result.flash.cgen is not None:
        lines.append(f"        generated C activations {result.flash.cgen.activation_bytes:,} B")
    lines.append(
        "Flash   "
        + ", ".join(f"{b} {_fmt(result.flash.per_backend.get(b))}" for b in BACKENDS)
        + " (model + inference code, estimated)"
    )
    lines.extend(_compute_lines(result))
    lines.append(f"Verdict {'FITS' if v.fits else 'DOES NOT FIT'} ({result.backend}): {v.reason}")
    if v.fits:
        lines.append(
            f"        RAM {_fmt(v.ram_need_bytes)} of {v.ram_available_bytes:,} B available, "
            f"flash {_fmt(v.flash_need_bytes)} of {v.flash_available_bytes:,} B available"
        )
    lines.extend(f"        note: {note}" for note in v.notes)
    return "\n".join(lines)


def operators_markdown(table: str, tflm: str, cgen: str) -> str:
    """The by-name support table plus what initialising TFLM and running the generator said."""
    return f"{table}\n- TFLM initialisation: {tflm}\n- C generator: {cgen}\n"


def write_artifacts(result: ProfileResult, out_dir: Path, plot: bool = True) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(result.name).stem
    paths = {
        "layers_csv": out_dir / f"{stem}_layers.csv",
        "layers_md": out_dir / f"{stem}_layers.md",
        "operators_md": out_dir / f"{stem}_operators.md",
    }
    paths["layers_csv"].write_text(table_csv(result))
    paths["layers_md"].write_text(
        f"# Profile of {result.name} on {result.target.name}\n\n```\n{summary_text(result)}\n```\n\n"
        + table_markdown(result)
    )
    arena = result.arena
    tflm = "not run" if arena is None else ("ok" if arena.ok else arena.error)
    paths["operators_md"].write_text(
        operators_markdown(result.operators.markdown(), tflm, result.flash.cgen_error or "ok")
    )
    if plot:
        from tinyml_exp.profile.plot import plot_memory

        paths["memory_png"] = plot_memory(result, out_dir / f"{stem}_memory.png")
    return paths
