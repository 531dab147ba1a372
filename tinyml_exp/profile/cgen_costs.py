"""The generated C's cost per kernel, fitted to per-layer instruction counts measured under QEMU.

What it predicts: **instructions** of the generated C (`tinyml_exp.export.cgen`) as QEMU counts
them (netduinoplus2, Cortex-M4, `-icount shift=0`, the APP=bench firmware: the count the
benchmark logs as `cycles/median` on `qemu_netduinoplus2`). Not cycles: `costmodel.layer_cycles`
turns them into Cortex-M4 cycles with the core's CPI (`costmodel.CORES`, an assumption), and
`export/cgen/cycle_model.py` (`cycles/modelled`, a benchmark figure) models the cycles of one
inference from the instruction stream instead.

The model, per TFLite operator that a kernel call runs (`WorkItem`, a fused call's operators
share its kernel; the call is counted on its first operator):

    instructions = Σ_f coefficient[kernel][f] × feature_f,   f ∈ FEATURES
    (macs, output elements, pooling-window elements, calls, outputs requantized in double,
     convolution taps: output pixels × filter window)

plus a per-inference term. `COSTS_PATH` (`cgen_costs.json`, written by
`benchmarks/cost_calibration.py`, fitted by `cgen_records.fit_records`) holds the coefficients
per dtype: per kernel function, per TFLite operator (the fallback for a kernel the file does not
know, e.g. one added after the last calibration) and the per-inference term. Operators that neither match are priced by the prior
constants of `costmodel.COSTS`. The format names its features, so a re-run after a kernel change
only changes numbers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tinyml_exp.profile.costmodel import WorkItem

log = logging.getLogger(__name__)

FORMAT = 1
FEATURES = ("macs", "outputs", "window_ops", "calls", "double_outputs", "taps")
COSTS_PATH = Path(__file__).with_name("cgen_costs.json")
# Kernels none of the five calibration models runs, priced from one-off QEMU counts of dense-only
# models 2028->10, 512->10, 2028->40 (2026-12-02, random inputs) instead of the fit (the file's
# entries win; benchmarks/cost_calibration.py does not refit these):
#  - tme_fc_hybrid (dynamic-range FULLY_CONNECTED): 1.41 instructions per MAC + 27.4 per input
#    element (quantizing the input) + 770 per call. FEATURES has no per-input term, so it is folded
#    into `macs` at the course CNN's 10 outputs (1.41 + 27.4 / 10): exact for ptq_dynamic's seed
#    CNN, too high for layers with many more outputs;
#  - tme_fc_f16w_f32 (float16 weights in flash): 7.0 per MAC + 170 per call.
MEASURED_ONCE: dict[tuple[str, str], dict[str, float]] = {
    ("float32", "tme_fc_hybrid"): {"macs": 4.15, "calls": 770.0},
    ("float32", "tme_fc_f16w_f32"): {"macs": 7.0, "calls": 170.0},
}


@dataclass(frozen=True)
class CgenCosts:
    """Coefficients (instructions per unit of each feature) read from a `cgen_costs.json`."""

    kernels: Mapping[tuple[str, str], Mapping[str, float]]  # (dtype, kernel) -> feature -> coefficient
    ops: Mapping[tuple[str, str], Mapping[str, float]]  # (dtype, TFLite opcode) -> ...
    invoke: Mapping[str, float]  # dtype -> instructions per inference outside the kernel calls
    source: str
    path: Path

    def coefficients(self, item: WorkItem) -> Mapping[str, float] | None:
        """The kernel's coefficients, else the operator's, else None (price it by the prior)."""
        if item.kernel is None:
            return None
        first = item.step_label.split("+")[0] or item.op  # the fallback is fitted per call's first operator
        return (
            self.kernels.get((item.dtype, kernel_key(item.kernel, item.window)))
            or self.kernels.get((item.dtype, item.kernel))
            or self.ops.get((item.dtype, first))
        )


def kernel_key(kernel: str, window: int) -> str:
    """A convolution kernel's fit is kept per filter window ("tme_conv_im2col_s8@k9"): its loops
    differ between 1 × 1, 3 × 3 and larger filters more than any one linear model follows."""
    return f"{kernel}@k{window}" if window else kernel


def features(item: WorkItem) -> tuple[float, ...]:
    """The item's value of each of `FEATURES`."""
    return tuple(float(getattr(item, name)) for name in FEATURES)


def price(coefficients: Mapping[str, float], values: Sequence[float]) -> float:
    return sum(coefficients.get(name, 0.0) * value for name, value in zip(FEATURES, values, strict=True))


def instructions(item: WorkItem, costs: CgenCosts | None) -> float | None:
    """Fitted instructions of one operator, 0 when the generated C runs no code for it (RESHAPE
    aliases: `kernel == ""`), None when the fit cannot price it."""
    if item.kernel == "":
        return 0.0
    coefficients = costs.coefficients(item) if costs is not None else None
    return None if coefficients is None else price(coefficients, features(item))


def basis(items: Sequence[WorkItem], costs: CgenCosts | None) -> str | None:
    """What prices a model's generated C (the `cost_model.cgen` tag), None when the prior does."""
    run = [item for item in items if item.kernel]
    fitted = [item for item in run if costs is not None and costs.coefficients(item) is not None]
    if costs is None or not fitted:
        return None
    by_kernel = sum(1 for item in fitted if (item.dtype, item.kernel) in costs.kernels)
    return (
        f"fitted to QEMU instruction counts ({costs.path.name}: {costs.source}); "
        f"{by_kernel} of {len(run)} operators by their kernel's coefficients, "
        f"{len(fitted) - by_kernel} by their operator's, {len(run) - len(fitted)} by the prior"
    )


def _table(entries: Mapping[str, Mapping[str, Mapping[str, float]]], path: Path, key: str):
    table = {}
    for dtype, by_name in entries.items():
        for name, coefficients in by_name.get(key, {}).items():
            unknown = set(coefficients) - set(FEATURES)
            if unknown:
                raise ValueError(f"{path}: {dtype}.{key}.{name} has unknown features {sorted(unknown)}")
            table[(dtype, name)] = dict(coefficients)
    return table


@lru_cache(maxsize=8)
def load_costs(path: Path) -> CgenCosts | None:
    """The coefficients at `path`; None (the prior prices everything) when the file is missing."""
    if not path.is_file():
        log.warning("%s is missing: the cgen estimate uses the prior constants", path)
        return None
    data = json.loads(path.read_text())
    if data.get("format") != FORMAT or data.get("unit") != "instructions":
        raise ValueError(
            f"{path}: format {data.get('format')!r} / unit {data.get('unit')!r}, expected {FORMAT} / "
            "'instructions'; re-run benchmarks/cost_calibration.py"
        )
    dtypes = data["dtypes"]
    return CgenCosts(
        kernels={**MEASURED_ONCE, **_table(dtypes, path, "kernels")},
        ops=_table(dtypes, path, "ops"),
        invoke={dtype: float(entry.get("invoke", 0.0)) for dtype, entry in dtypes.items()},
        source=data.get("source", ""),
        path=path,
    )


def active_costs() -> CgenCosts | None:
    """The coefficients the estimate uses: the file at `COSTS_PATH` (read once)."""
    return load_costs(COSTS_PATH)


# --- fitting (benchmarks/cost_calibration.py) ---------------------------------------------------


@dataclass(frozen=True)
class StepCount:
    """One measured kernel call: its kernel, the features of the operators it runs, its count."""

    dtype: str
    kernel: str
    op: str  # the first TFLite operator of the call (the fallback key)
    window: int  # the first operator's filter window (0: not a convolution)
    values: tuple[float, ...]  # `features` summed over the call's operators
    count: float  # measured instructions


def step_counts(
    items: Sequence[WorkItem], steps: Sequence[tuple[int, ...]], counts: Sequence[float]
) -> list[StepCount]:
    """`StepCount`s of one model: `items` per TFLite operator (index = operator index), `steps` the
    operators of each kernel call, `counts` each call's measured instructions."""
    rows = []
    for ops, count in zip(steps, counts, strict=True):
        first = items[ops[0]]
        values = [sum(features(items[i])[f] for i in ops) for f in range(len(FEATURES))]
        row = StepCount(first.dtype, first.kernel or "", first.op, first.window, tuple(values), float(count))
        rows.append(row)
    return rows


def _fit_group(rows: Sequence[StepCount]) -> dict[str, float]:
    """Non-negative least squares on the relative error of each call (a small layer weighs as
    much as a large one), over the features that vary in the group; rounded for a readable file."""
    import numpy as np
    from scipy.optimize import nnls

    x = np.array([r.values for r in rows], dtype=np.float64)
    y = np.array([r.count for r in rows], dtype=np.float64)
    used = [f for f in range(len(FEATURES)) if x[:, f].any()]
    scale = x[:, used].max(axis=0)  # unit columns: nnls is better conditioned
    weights = 1.0 / np.maximum(y, 1.0)
    solution, _ = nnls((x[:, used] / scale) * weights[:, None], y * weights)
    return {FEATURES[f]: round(float(c / s), 4) for f, c, s in zip(used, solution, scale, strict=True)}


def fit_costs(rows: Iterable[StepCount], invoke: Mapping[str, float], source: str) -> dict:
    """The `cgen_costs.json` content for measured calls: per kernel and per operator, per dtype."""
    rows = list(rows)
    dtypes: dict[str, dict] = {}
    keys = (
        ("kernels", lambda r: kernel_key(r.kernel, r.window)),
        ("kernels", lambda r: r.kernel),  # the fallback for a window not measured
        ("ops", lambda r: r.op),
    )
    for key_name, key in keys:
        groups: dict[tuple[str, str], list[StepCount]] = {}
        for row in rows:
            groups.setdefault((row.dtype, key(row)), []).append(row)
        for (dtype, name), group in sorted(groups.items()):
            entry = dtypes.setdefault(dtype, {"invoke": round(float(invoke.get(dtype, 0.0)), 1)})
            entry.setdefault(key_name, {})[name] = _fit_group(group)
    return {
        "format": FORMAT,
        "unit": "instructions",
        "features": list(FEATURES),
        "source": source,
        "dtypes": dtypes,
    }


def write_costs(data: Mapping, path: Path = COSTS_PATH) -> Path:
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    load_costs.cache_clear()
    return path
