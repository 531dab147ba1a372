"""The types a profile is made of: data only, no logic (the profiler fills them, `report` and
`plot` read them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tinyml_exp.results import StageResult

if TYPE_CHECKING:
    from tinyml_exp.profile.calibration import Scale
    from tinyml_exp.profile.footprint import FlashEstimate
    from tinyml_exp.profile.layers import LayerProfile
    from tinyml_exp.profile.memory import ArenaReport
    from tinyml_exp.profile.operators import OperatorCheck
    from tinyml_exp.profile.verdict import Verdict
    from tinyml_exp.targets import Target

# Logged as the `profile.figure_kinds` tag: which figure is computed, measured, planned, estimated.
FIGURE_KINDS = (
    "computed: macs/total params/tflite_total ram/formula_bytes flash/model_bytes; "
    "measured on host by tflite-micro: ram/tflm_arena_* latency/host_tflm_measured_ms; "
    "planned by cgen: ram/cgen_activation_bytes; "
    "estimated: */estimate* cycles/prior_* ram/estimate_bytes"
)


@dataclass
class BackendEstimate:
    """Cycle-model output for one backend (None cycles: the backend does not exist for the core)."""

    layer_cycles: list[float] | None
    prior_total: float | None  # before calibration
    scale: Scale | None = None
    basis: str | None = None  # what priced it when not the prior constants (cgen: the fitted costs)

    @property
    def total(self) -> float | None:
        return None if self.layer_cycles is None else sum(self.layer_cycles)


@dataclass
class ProfileResult(StageResult):
    """The profile of one model on one target; `metrics` / `tags` are ready for MLflow and
    `artifacts` lists the files the profile stage wrote (per-layer table, operators, plot)."""

    name: str
    target: Target
    backend: str
    dtype: str
    model_bytes: int
    layers: list[LayerProfile]
    estimates: dict[str, BackendEstimate]
    arena: ArenaReport | None
    flash: FlashEstimate
    operators: OperatorCheck
    verdict: Verdict

    def layer_cycles(self, backend: str | None = None) -> list[float] | None:
        return self.estimates[backend or self.backend].layer_cycles
