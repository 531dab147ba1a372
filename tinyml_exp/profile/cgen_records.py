"""Recorded per-layer QEMU counts (tests/data/cgen_cost_counts.json, written by
benchmarks/cost_calibration.py): the fit of `cgen_costs.json` from them, and the estimate the
profile gives for a recorded model (what the calibration checks against the measured count).

Record format: {"source": str, "models": [{"name", "reference", "macs", "measured": the plain APP=bench
build's INFER count, "profiling_build_whole", "items": [WorkItem fields per TFLite operator],
"steps": [{"kernel", "label", "ops", "count": the LAYERS count of the call}]}]}
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping

from tinyml_exp.profile.cgen_costs import fit_costs, step_counts
from tinyml_exp.profile.costmodel import CORES, WorkItem, model_cycles


def record_items(record: Mapping) -> list[WorkItem]:
    """The recorded model's work items (one per TFLite operator, in graph order)."""
    return [WorkItem(**item) for item in record["items"]]


def fit_records(records: Mapping) -> dict:
    """The `cgen_costs.json` content for recorded counts: the per-kernel fits, and the
    per-inference term (the plain build's count minus the profiling build's layer sum, median
    over the models; it can be negative by the profiling build's few counter reads per call)."""
    rows, outside = [], {}
    for record in records["models"]:
        items, steps = record_items(record), [tuple(s["ops"]) for s in record["steps"]]
        counts = [s["count"] for s in record["steps"]]
        rows += step_counts(items, steps, counts)
        outside.setdefault(items[steps[0][0]].dtype, []).append(record["measured"] - sum(counts))
    invoke = {dtype: statistics.median(values) for dtype, values in outside.items()}
    names = ", ".join(sorted({r["name"] for r in records["models"]}))
    return fit_costs(rows, invoke, f"{records['source']}; models {names}")


def recorded_estimate(record: Mapping, prior: bool = False) -> tuple[float, list[float]]:
    """The estimate on the QEMU target (instructions: Cortex-M4 cycles ÷ its CPI, as the profile
    does) for a recorded model, in total and per kernel call; `prior`: with costmodel's constants."""
    items = record_items(record)
    if prior:
        items = [dataclasses.replace(item, kernel=None) for item in items]
    cpi = CORES["cortex-m4"].cpi
    per_op = [c / cpi for c in model_cycles(items, "cgen", "cortex-m4", True, True)]
    return sum(per_op), [sum(per_op[i] for i in step["ops"]) for step in record["steps"]]
