"""The course's result-summary table, built from MLflow runs (never from figures pasted in code).

Each column is one measure (an estimate and a measurement never share a column); a column shows
when at least one run has its figure, and a run without it shows "—" there, never 0. The device
columns (firmware flash, activation RAM, weight encodings, instructions) so appear only when a
firmware was built or the device ran.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

MISSING = "—"  # a figure the run does not have (not 0)


@dataclass(frozen=True)
class Run:
    """What the report needs from one MLflow run."""

    run_id: str
    name: str
    status: str
    metrics: dict[str, float]
    tags: dict[str, str]
    params: dict[str, str]

    def metric(self, *names: str) -> float | None:
        """The first of `names` the run has (e.g. measured before estimated)."""
        for name in names:
            if name in self.metrics:
                return self.metrics[name]
        return None

    @property
    def method(self) -> str:
        return self.tags.get("compression", self.params.get("compression.name", ""))


@dataclass(frozen=True)
class Column:
    """`value` gives the cell, or None when the run lacks the figure; `title` may depend on the
    runs shown (the count unit of the target, say)."""

    title: str | Callable[[Sequence[Run]], str]
    value: Callable[[Run], str | None]

    def title_for(self, runs: Sequence[Run]) -> str:
        return self.title if isinstance(self.title, str) else self.title(runs)


def _pct(x: float | None) -> str | None:
    return None if x is None else f"{100 * x:.2f}"


def _int(x: float | None) -> str | None:
    return None if x is None else f"{round(x):,}"


def _times(x: float | None) -> str | None:
    return None if x is None else f"{x:.2f}×"


def _float(x: float | None, digits: int = 2) -> str | None:
    return None if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _tag(name: str) -> Callable[[Run], str | None]:
    return lambda r: r.tags.get(name) or None


def count_unit(runs: Sequence[Run]) -> str:
    """ "instructions" when every run that says so counts instructions (QEMU), else "cycles"."""
    units = {r.tags["cycles_unit"] for r in runs if r.tags.get("cycles_unit")}
    return "instructions" if units == {"instructions"} else "cycles"


def _count_title(kind: str) -> Callable[[Sequence[Run]], str]:
    return lambda runs: f"{count_unit(runs)} {kind}"


def encodings_summary(run: Run) -> str | None:
    """The run's `firmware.encodings` tag ("op0_CONV_2D=dense, op5_FULLY_CONNECTED=sparse") as a
    count per encoding, after the `export.weights` mode when it is not the only encoding:
    "dense ×2", "auto: dense ×1, sparse ×1"."""
    tag = run.tags.get("firmware.encodings")
    if not tag:
        return None
    counts = Counter(item.rpartition("=")[2] for item in tag.split(", ") if "=" in item)
    listed = ", ".join(f"{name} ×{n}" for name, n in counts.items())
    mode = run.tags.get("firmware.weights", "")
    return listed if not mode or set(counts) == {mode} else f"{mode}: {listed}"


COLUMNS: tuple[Column, ...] = (
    Column("method", lambda r: r.method),
    Column("architecture", lambda r: r.tags.get("architecture", "")),
    Column("target", lambda r: r.tags.get("target", "")),
    Column("status", lambda r: r.status),
    Column("acc keras %", lambda r: _pct(r.metric("accuracy/keras"))),
    Column("acc tflite %", lambda r: _pct(r.metric("accuracy/tflite"))),
    Column("acc tflm %", lambda r: _pct(r.metric("accuracy/tflm"))),
    Column("acc device %", lambda r: _pct(r.metric("accuracy/device"))),
    Column("device samples", lambda r: _int(r.metric("benchmark/samples"))),
    Column("loss", lambda r: _float(r.metric("loss/tflite", "loss/keras"), 3)),
    Column("tflite B", lambda r: _int(r.metric("size/tflite_bytes"))),
    Column("gzip B", lambda r: _int(r.metric("size/tflite_gzip_bytes"))),
    Column("× tflite", lambda r: _times(r.metric("compression/factor_tflite"))),
    Column("× gzip", lambda r: _times(r.metric("compression/factor_gzip"))),
    Column("× h5", lambda r: _times(r.metric("compression/factor_h5"))),
    Column("sparsity %", lambda r: _pct(r.metric("sparsity/weights"))),
    # Built firmware and device (measured).
    Column("firmware flash B", lambda r: _int(r.metric("flash/firmware_bytes"))),
    Column("C weights B", lambda r: _int(r.metric("flash/c_weights_bytes"))),
    Column("C weights dense B", lambda r: _int(r.metric("flash/c_weights_dense_bytes"))),
    Column("weights vs dense", lambda r: _times(r.metric("flash/c_weights_ratio"))),
    Column("weight encodings", encodings_summary),
    Column("activation RAM B", lambda r: _int(r.metric("ram/c_bytes"))),
    Column("firmware RAM B", lambda r: _int(r.metric("ram/firmware_bytes"))),
    Column(_count_title("on device"), lambda r: _int(r.metric("cycles/median"))),
    Column("latency device ms", lambda r: _float(r.metric("latency/ms"), 3)),
    # Profile (before any board): estimates, and the two RAM figures of the course.
    Column("profile backend", _tag("profile.backend")),
    Column("RAM est. B", lambda r: _int(r.metric("ram/estimate_bytes"))),
    Column("RAM formula B", lambda r: _int(r.metric("ram/formula_bytes"))),
    Column("TFLM arena B", lambda r: _int(r.metric("ram/tflm_arena_bytes"))),
    Column("flash est. B", lambda r: _int(r.metric("flash/estimate_bytes"))),
    Column(_count_title("est."), lambda r: _int(r.metric("cycles/estimate"))),
    Column("latency est. ms", lambda r: _float(r.metric("latency/estimate_ms"), 3)),
    Column("fits", _tag("fits_target")),
)
_ALWAYS = 4  # method, architecture, target, status
_TEXT = {"method", "architecture", "target", "status", "profile backend", "weight encodings", "fits"}


def table_rows(runs: Sequence[Run]) -> tuple[list[str], list[list[str]]]:
    """Header and rows; columns that are empty for every run are left out, a missing figure in a
    column kept is "—"."""
    values = [[c.value(r) for c in COLUMNS] for r in runs]
    keep = [i for i in range(len(COLUMNS)) if i < _ALWAYS or any(row[i] for row in values)]
    header = [COLUMNS[i].title_for(runs) for i in keep]
    rows = [[row[i] or ("" if i < _ALWAYS else MISSING) for i in keep] for row in values]
    return header, rows


def to_markdown(header: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    rule = ["---" if h in _TEXT else "---:" for h in header]
    return "\n".join([line(header), line(rule), *(line(r) for r in rows)]) + "\n"


# The course's result table, measured end to end: written as device.md when the device ran.
DEVICE_COLUMNS = (
    "method",
    "status",
    "acc keras %",
    "acc tflite %",
    "acc device %",
    "device samples",
    "tflite B",
    "gzip B",
    "firmware flash B",
    "weights vs dense",
    "weight encodings",
    "activation RAM B",
    "instructions on device",
    "cycles on device",
)


def device_table(runs: Sequence[Run]) -> tuple[list[str], list[list[str]]] | None:
    """The summary's device columns (those some run has), or None when no run reached the device."""
    if not any("cycles/median" in r.metrics or "accuracy/device" in r.metrics for r in runs):
        return None
    header, rows = table_rows(runs)
    keep = [i for i, title in enumerate(header) if title in DEVICE_COLUMNS]
    return [header[i] for i in keep], [[row[i] for i in keep] for row in rows]


def write_table(runs: Sequence[Run], out_dir: Path) -> list[Path]:
    """summary.md and .csv (every column some run has), and device.md when the device ran."""
    header, rows = table_rows(runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, csv_path = out_dir / "summary.md", out_dir / "summary.csv"
    md.write_text(to_markdown(header, rows))
    with csv_path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    written = [md, csv_path]
    device = device_table(runs)
    if device is not None:
        written.append(out_dir / "device.md")
        written[-1].write_text(to_markdown(*device))
    return written
