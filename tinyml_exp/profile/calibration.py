"""Calibrating the cost model against measured counts, per (target, backend, dtype).

A `CalibrationPoint` is one measured inference: the target, the backend that ran, the model's
work (its `WorkItem`s, so the prior can be recomputed whenever the constants change) and the
measured count (cycles from DWT CYCCNT on a board, instructions from QEMU icount). The fitted
scale for a (target, backend, dtype) is the geometric mean of measured / prior over its points;
estimates for other models on that target and backend are multiplied by it.

Sources of points: `BUILTIN_POINTS` (published figures, approximate: not measured by this
project), and a YAML file (`profile.calibration_file`, a list of mappings with the fields of
`CalibrationPoint`, work given as a list of WorkItem mappings). A pipeline run that benchmarks
the firmware, with `profile.calibration_file` set, turns its measured median into a point
(`tinyml_exp.profile.profiler.calibration_point(result, measured, source, backend="cgen")`) and
appends it to that file (`append_point`); `fit_scales` uses it in every later profile for that
target and backend.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

from tinyml_exp.profile.costmodel import WorkItem, model_cycles

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalibrationPoint:
    target: str  # Target.name
    backend: str
    dtype: str  # "int8" | "float32"
    work: tuple[WorkItem, ...]
    measured: float  # cycles, or instructions on a target whose count_unit is "instructions"
    source: str


# The course's CNN (Reshape → Conv2D 12@3×3 → MaxPool 2 → Flatten → Dense 10), int8 PTQ.
COURSE_CNN_INT8 = (
    WorkItem("RESHAPE", "int8", None, 0, copy_bytes=784),
    WorkItem("CONV_2D", "int8", "conv", 73_008),
    WorkItem("MAX_POOL_2D", "int8", None, 0, window_ops=8_112),
    WorkItem("RESHAPE", "int8", None, 0, copy_bytes=2_028),
    WorkItem("FULLY_CONNECTED", "int8", "fc", 20_280),
)

BUILTIN_POINTS: tuple[CalibrationPoint, ...] = (
    CalibrationPoint(
        target="b_l475e_iot01a",
        backend="tflm_reference",
        dtype="int8",
        work=COURSE_CNN_INT8,
        # The course document's rounded figure ("around 14M cycles"); its build settings (compiler,
        # flags, TFLM version) are unknown, so it is a published approximation, not a measurement.
        measured=14_000_000.0,
        source="published, approximate: the course document's 'around 14M cycles', TFLM reference "
        "kernels on the B-L475E-IOT01A at 80 MHz, build settings unknown",
    ),
)


@dataclass(frozen=True)
class Scale:
    factor: float
    points: int
    sources: tuple[str, ...]


def prior_cycles(point: CalibrationPoint, core: str, fpu: bool, dsp: bool, cpi: float = 1.0) -> float:
    """The uncalibrated estimate for a point's work (in its count unit when `cpi` is given)."""
    return sum(model_cycles(list(point.work), point.backend, core, fpu, dsp)) / cpi


def fit_scales(
    points: tuple[CalibrationPoint, ...] | list[CalibrationPoint],
    target_name: str,
    core: str,
    fpu: bool,
    dsp: bool,
    cpi: float = 1.0,
) -> dict[tuple[str, str], Scale]:
    """(backend, dtype) -> measured/prior scale from the points measured on `target_name`."""
    ratios: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for point in points:
        if point.target != target_name:
            continue
        prior = prior_cycles(point, core, fpu, dsp, cpi)
        if prior <= 0 or point.measured <= 0:
            continue
        ratios.setdefault((point.backend, point.dtype), []).append((point.measured / prior, point.source))
    return {
        key: Scale(
            factor=math.exp(sum(math.log(r) for r, _ in values) / len(values)),
            points=len(values),
            sources=tuple(s for _, s in values),
        )
        for key, values in ratios.items()
    }


def load_points(path: str | Path) -> list[CalibrationPoint]:
    """Points from a YAML list (see module docstring); a missing file is an error with the path."""
    from omegaconf import OmegaConf

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"profile.calibration_file={str(path)!r}: no such file")
    entries = OmegaConf.to_container(OmegaConf.load(file), resolve=True)
    points = []
    for entry in entries or []:
        work = tuple(WorkItem(**item) for item in entry.pop("work"))
        points.append(CalibrationPoint(work=work, **entry))
    log.info("loaded %d calibration points from %s", len(points), file)
    return points


def save_points(points: list[CalibrationPoint], path: str | Path) -> None:
    """Write points as the YAML list `load_points` reads (append by loading, extending, saving)."""
    from dataclasses import asdict

    from omegaconf import OmegaConf

    Path(path).write_text(OmegaConf.to_yaml([asdict(p) for p in points]))


def append_point(point: CalibrationPoint, path: str | Path) -> int:
    """Add `point` to the YAML list at `path` (created if missing), under a lock so parallel
    sweep jobs do not lose each other's points; returns how many points the file now holds."""
    import fcntl

    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.with_name(file.name + ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        points = load_points(file) if file.is_file() else []
        points.append(point)
        save_points(points, file)
    return len(points)
