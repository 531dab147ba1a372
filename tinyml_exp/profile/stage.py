"""The pipeline's `preflight` and `profile` stages: run the profiler, return what it found.

`preflight` runs right after conversion (the export stage), so an operator no backend supports
is a tag and a warning before evaluation, firmware build or device start-up. `profile` runs after
`evaluate`; a model that does not fit is a FINISHED run with `fits_target=false` and the reason.
Neither logs to MLflow: the pipeline logs the results they return.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tinyml_exp.profile.footprint import cgen_footprint
from tinyml_exp.profile.memory import measure_arena
from tinyml_exp.profile.operators import OperatorCheck, check_operators
from tinyml_exp.profile.profiler import profile_model
from tinyml_exp.profile.report import operators_markdown, summary_text, write_artifacts
from tinyml_exp.profile.result import ProfileResult
from tinyml_exp.results import StageResult
from tinyml_exp.tflite_graph import read_graph

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from tinyml_exp.targets import Target

log = logging.getLogger(__name__)


@dataclass
class PreflightResult(StageResult):
    """The operator check; tags `ops.*`, artifact `profile/<stem>_operators.md`."""

    check: OperatorCheck


def preflight(tflite: bytes, out_dir: Path, stem: str, timeout_s: float = 60.0) -> PreflightResult:
    """Operators and versions of the converted model and each backend's support: by name, then by
    really initialising TFLM (child process, ≈ 0.3 s) and running the C generator, which also see
    data types and options. Tags + a markdown table; warnings, never an exception."""
    check = check_operators(read_graph(tflite))
    tags = check.tags()
    arena = measure_arena(tflite, probe=False, timeout_s=timeout_s)
    tags["ops.tflm_initialises"] = str(arena.ok).lower()
    footprint, cgen_error = cgen_footprint(tflite)
    tags["ops.cgen_generates"] = str(footprint is not None).lower()
    for what, error in (("TFLM", arena.error), ("the C generator", cgen_error)):
        if error:
            log.warning("pre-flight: %s cannot run the model: %s", what, error)
    path = out_dir / "profile" / f"{stem}_operators.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        operators_markdown(check.markdown(), "ok" if arena.ok else arena.error, cgen_error or "ok")
    )
    log.info("operators: %s", check.operator_list)
    return PreflightResult(check, tags=tags, artifacts=[("profile", path)])


def profile(cfg: DictConfig, target: Target, tflite: bytes, out_dir: Path, stem: str) -> ProfileResult:
    """Profile the exported model on the run's target (with the points of
    `profile.calibration_file` when set) and write its artifacts under `out_dir/profile`."""
    calibration = None
    if cfg.profile.calibration_file:
        from tinyml_exp.profile.calibration import load_points

        calibration = load_points(cfg.profile.calibration_file)
    result = profile_model(
        tflite,
        target,
        backend=cfg.profile.backend,
        name=f"{stem}.tflite",
        arena_probe=cfg.profile.arena_probe,
        probe_timeout_s=cfg.profile.probe_timeout_s,
        calibration=calibration,
        calibrate=cfg.profile.calibrate,
        cache_dir=Path(cfg.cache.dir) / "profile" if cfg.cache.enabled else None,
        reference=cfg.firmware.reference,  # the firmware's generated C: the kernels the estimate prices
    )
    paths = write_artifacts(result, out_dir / "profile", plot=cfg.profile.plot)
    result.artifacts = [("profile", path) for path in paths.values()]
    log.info("profile:\n%s", summary_text(result))
    if not result.verdict.fits:
        log.warning("model does not fit %s: %s", target.name, result.verdict.reason)
    return result
