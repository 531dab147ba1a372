"""The course's result-summary table, built from MLflow runs (never from figures pasted in code)."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


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


@dataclass(frozen=True)
class Column:
    title: str
    value: Callable[[Run], object]
    fmt: str = "{}"


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.2f}"


def _int(x: float | None) -> str:
    return "" if x is None else f"{round(x):,}"


def _times(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}×"


def _float(x: float | None, digits: int = 2) -> str:
    return "" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


COLUMNS: tuple[Column, ...] = (
    Column("method", lambda r: r.tags.get("compression", r.params.get("compression.name", ""))),
    Column("architecture", lambda r: r.tags.get("architecture", "")),
    Column("target", lambda r: r.tags.get("target", "")),
    Column("status", lambda r: r.status),
    Column("acc keras %", lambda r: _pct(r.metric("accuracy/keras"))),
    Column("acc tflite %", lambda r: _pct(r.metric("accuracy/tflite"))),
    Column("acc tflm %", lambda r: _pct(r.metric("accuracy/tflm"))),
    Column("acc device %", lambda r: _pct(r.metric("accuracy/device"))),
    Column("loss", lambda r: _float(r.metric("loss/tflite", "loss/keras"), 3)),
    Column("tflite bytes", lambda r: _int(r.metric("size/tflite_bytes"))),
    Column("gzip bytes", lambda r: _int(r.metric("size/tflite_gzip_bytes"))),
    Column("× tflite", lambda r: _times(r.metric("compression/factor_tflite"))),
    Column("× gzip", lambda r: _times(r.metric("compression/factor_gzip"))),
    Column("× h5", lambda r: _times(r.metric("compression/factor_h5"))),
    Column("sparsity %", lambda r: _pct(r.metric("sparsity/weights"))),
    Column("RAM formula B", lambda r: _int(r.metric("ram/formula_bytes"))),
    Column("TFLM arena B", lambda r: _int(r.metric("ram/tflm_arena_bytes"))),
    Column("flash B", lambda r: _int(r.metric("flash/firmware_bytes", "flash/estimate_bytes"))),
    Column("cycles", lambda r: _int(r.metric("cycles/median", "cycles/estimate"))),
    Column("latency ms", lambda r: _float(r.metric("latency/ms", "latency/estimate_ms"), 3)),
    Column("fits", lambda r: r.tags.get("fits_target", "")),
)


def table_rows(runs: Sequence[Run]) -> tuple[list[str], list[list[str]]]:
    """Header and rows; columns that are empty for every run are left out."""
    cells = [[str(c.value(r)) for c in COLUMNS] for r in runs]
    keep = [i for i, c in enumerate(COLUMNS) if i < 4 or any(row[i] for row in cells)]
    return [COLUMNS[i].title for i in keep], [[row[i] for i in keep] for row in cells]


def to_markdown(header: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    numeric = [i > 3 for i in range(len(header))]
    rule = ["---:" if n else "---" for n in numeric]
    return "\n".join([line(header), line(rule), *(line(r) for r in rows)]) + "\n"


def write_table(runs: Sequence[Run], out_dir: Path) -> list[Path]:
    header, rows = table_rows(runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, csv_path = out_dir / "summary.md", out_dir / "summary.csv"
    md.write_text(to_markdown(header, rows))
    with csv_path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return [md, csv_path]
