"""A run's key figures for people: the terminal table, the one-line description, the registry's
version tags, and where to look at the run in MLflow's UI. Pure functions of the logged metrics
and tags (nothing here imports MLflow).
"""

from __future__ import annotations

from collections.abc import Mapping

# (section, label, metric, kind): the rows the table shows when the run logged the metric.
# kind: "pct" a fraction shown in %, "int" a count with thousands separators, "ms" milliseconds,
# "x" a ratio. The "cycles" section is named "instructions" on a target that counts those (QEMU).
_ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("accuracy", "keras", "accuracy/keras", "pct"),
    ("accuracy", "tflite", "accuracy/tflite", "pct"),
    ("accuracy", "tflm", "accuracy/tflm", "pct"),
    ("accuracy", "device", "accuracy/device", "pct"),
    ("bytes", ".tflite", "size/tflite_bytes", "int"),
    ("bytes", ".tflite gzip", "size/tflite_gzip_bytes", "int"),
    ("RAM", "estimate", "ram/estimate_bytes", "int"),
    ("RAM", "TFLM arena", "ram/tflm_arena_bytes", "int"),
    ("RAM", "firmware", "ram/firmware_bytes", "int"),
    ("RAM", "activations (C)", "ram/c_bytes", "int"),
    ("flash", "estimate", "flash/estimate_bytes", "int"),
    ("flash", "firmware", "flash/firmware_bytes", "int"),
    ("flash", "C weights", "flash/c_weights_bytes", "int"),
    ("flash", "C weights vs dense", "flash/c_weights_ratio", "x"),
    ("cycles", "estimate", "cycles/estimate", "int"),
    ("cycles", "device median", "cycles/median", "int"),
    ("latency", "estimate", "latency/estimate_ms", "ms"),
    ("latency", "device", "latency/ms", "ms"),
)
_UNITS = {"pct": "%", "int": "", "ms": "ms", "x": "×"}


def format_value(value: float, kind: str) -> str:
    """96.80 for a 0.968 "pct", 517,504 for an "int" (never 5.175e+05), 4.75 for "ms", 0.38 for "x"."""
    if kind in ("ms", "x"):
        return f"{value:,.2f}"
    if kind == "pct":
        return f"{100 * value:.2f}"
    return f"{value:,.0f}"


def summary_rows(metrics: Mapping[str, float], tags: Mapping[str, str]) -> list[tuple[str, str, str, str]]:
    """(section, label, value, unit) for each key figure the run has; bytes units say "B"."""
    rows = []
    counts = "instructions" if tags.get("cycles_unit") == "instructions" else "cycles"
    for section, label, name, kind in _ROWS:
        if name in metrics:
            unit = "B" if name.endswith("_bytes") else _UNITS[kind]
            shown = counts if section == "cycles" else section
            rows.append((shown, label, format_value(float(metrics[name]), kind), unit))
    if "fits_target" in tags:
        fits = "yes" if tags["fits_target"] == "true" else "NO"
        reason = tags.get("fits_target.reason", "")
        rows.append(("fits", tags.get("target", "target"), fits, "" if reason == "fits" else reason))
    return rows


def format_table(rows: list[tuple[str, str, str, str]]) -> str:
    """Aligned columns: section (only where it changes), label, value right-aligned, unit."""
    if not rows:
        return ""
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines, previous = [], None
    for section, label, value, unit in rows:
        shown = section if section != previous else ""
        previous = section
        lines.append(f"  {shown:<{widths[0]}}  {label:<{widths[1]}}  {value:>{widths[2]}} {unit}".rstrip())
    return "\n".join(lines)


def summary_line(metrics: Mapping[str, float], tags: Mapping[str, str]) -> str:
    """One line for the run's description: what ran, and its figures."""
    what = " · ".join(tags[k] for k in ("architecture", "compression", "dataset", "target") if k in tags)
    figures = [
        f"{section} {label} {value} {unit}".rstrip()
        for section, label, value, unit in summary_rows(metrics, tags)
        if section != "fits"
    ]
    if "fits_target" in tags:
        figures.append("fits" if tags["fits_target"] == "true" else "does not fit")
    return f"{what}: {', '.join(figures)}" if what else ", ".join(figures)


def key_figures(metrics: Mapping[str, float], tags: Mapping[str, str]) -> dict[str, str]:
    """Tags for a logged / registered model: the table's figures by metric name as plain numbers
    (sortable, comparable), plus the fit."""
    figures = {name: _plain(float(metrics[name])) for _, _, name, _ in _ROWS if name in metrics}
    if "fits_target" in tags:
        figures["fits_target"] = tags["fits_target"]
    return figures


def _plain(value: float) -> str:
    return str(int(value)) if value.is_integer() else f"{value:.6g}"


def ui_hint(uri: str, experiment_id: str | None, run_id: str, port: int = 5000) -> tuple[str | None, str]:
    """(the `mlflow ui` command to start for a local store or None for a server, the run's URL)."""
    if uri.startswith(("http://", "https://")):
        return None, f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    command = f"mlflow ui --backend-store-uri {uri} --port {port}"
    return command, f"http://127.0.0.1:{port}/#/experiments/{experiment_id}/runs/{run_id}"
