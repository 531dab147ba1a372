"""The pipeline's `preflight` and `profile` stages: run the profiler, log what it returns.

`preflight` runs right after conversion (the export stage), so an operator no backend supports
is a tag and a warning before evaluation, firmware build or device start-up. `profile` runs after
`evaluate`; a model that does not fit is a FINISHED run with `fits_target=false` and the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from tinyml_exp.profile.footprint import cgen_footprint
from tinyml_exp.profile.memory import measure_arena
from tinyml_exp.profile.operators import OperatorCheck, check_operators
from tinyml_exp.profile.profiler import ProfileResult, profile_model
from tinyml_exp.profile.report import operators_markdown
from tinyml_exp.profile.verdict import estimate_errors
from tinyml_exp.tflite_graph import read_graph

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from tinyml_exp.targets import Target
    from tinyml_exp.tracking import Tracker

log = logging.getLogger(__name__)


def preflight(
    tflite: bytes, tracker: Tracker, out_dir: Path, stem: str, timeout_s: float = 60.0
) -> OperatorCheck:
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
    tracker.set_tags(tags)
    path = out_dir / "profile" / f"{stem}_operators.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        operators_markdown(check.markdown(), "ok" if arena.ok else arena.error, cgen_error or "ok")
    )
    tracker.log_artifact(path, "profile")
    log.info("operators: %s", check.operator_list)
    return check


def profile_stage(
    cfg: DictConfig,
    target: Target,
    tflite: bytes,
    out_dir: Path,
    stem: str,
    tracker: Tracker,
    measured: Mapping[str, float],
) -> ProfileResult:
    """Profile the exported model on the run's target; log metrics, tags, artifacts and, where a
    measured counterpart is already in `measured`, the estimates' errors."""
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
    )
    tracker.log_metrics(result.metrics)
    tracker.set_tags(result.tags)
    errors = estimate_errors({**measured, **result.metrics})
    if errors:
        tracker.log_metrics(errors)
        result.metrics.update(errors)
    for path in result.write_artifacts(out_dir / "profile", plot=cfg.profile.plot).values():
        tracker.log_artifact(path, "profile")
    log.info("profile:\n%s", result.summary())
    if not result.verdict.fits:
        log.warning("model does not fit %s: %s", target.name, result.verdict.reason)
    return result
