"""The pipeline's `firmware` stage: the model's C, the benchmark firmware for the target's board,
and what `arm-none-eabi-size` says it takes.

Metrics: `flash/firmware_bytes` (text + data), `ram/firmware_bytes` (data + bss; the stack is not
included), `ram/c_bytes` (the generated code's static activation buffer), `flash/c_weights_bytes`;
with `firmware.measure_app`, `flash/firmware_app_bytes` (the same firmware with no model) and
`flash/firmware_model_bytes` (the difference: model data + inference code, what the profile's
`flash/estimate_bytes` estimates; the pipeline compares the two as `error/flash_estimate_pct`).
Artifacts: the generated `model.c` / `model.h`, `firmware.elf`, `size.txt`.

A model the generator cannot translate (an unsupported operator), a firmware that does not fit the
board, or a missing toolchain when the firmware is optional, is not a failed run: the run is
tagged `firmware_skipped=<reason>` and goes on, so a sweep still gets every other figure. When the
firmware is required (`firmware.enabled=true` or `benchmark.enabled=true`) the stage fails with
that reason instead (a `FirmwareUnavailableError` carrying what was generated).
"""

from __future__ import annotations

import fcntl
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinyml_exp.errors import StageError
from tinyml_exp.hardware.build import FIRMWARE_DIR, FirmwareBuild, FirmwareBuildError
from tinyml_exp.hardware.build import build_firmware as build_image
from tinyml_exp.hardware.tools import FIRMWARE_BUILD_TOOLS, missing_tools_reason
from tinyml_exp.results import StageResult

if TYPE_CHECKING:
    from tinyml_exp.export.cgen import CGenResult
    from tinyml_exp.targets import Target

log = logging.getLogger(__name__)

NULL_MODEL_DIR = FIRMWARE_DIR / "tests" / "null_model"
# GNU ld: "region `RAM' overflowed by N bytes"; our linker scripts' ASSERT says "RAM overflow";
# firmware/core/tme_app.c refuses tensors larger than a protocol frame.
_OVERFLOW = re.compile(
    r"region `?\w+'? overflowed by \d+ bytes|RAM overflow[^\n]*|protocol v\d+ carries at most \d+ payload bytes[^\n\"]*"
)


class FirmwareUnavailableError(StageError):
    """The firmware is required but cannot be built for this model / machine."""


@dataclass
class FirmwareResult(StageResult):
    """What the stage built (`build`, `cgen`), or why it did not (`skipped`)."""

    model_name: str
    build: FirmwareBuild | None = None
    cgen: CGenResult | None = None
    skipped: str | None = None


def firmware_metrics(build: FirmwareBuild, cgen: CGenResult, app: FirmwareBuild | None) -> dict[str, float]:
    metrics = {
        "flash/firmware_bytes": float(build.flash_bytes),
        "ram/firmware_bytes": float(build.ram_bytes),
        "ram/c_bytes": float(cgen.activation_bytes),
        "flash/c_weights_bytes": float(cgen.weights_bytes),
        "flash/c_weights_dense_bytes": float(cgen.dense_weights_bytes),
    }
    if cgen.dense_weights_bytes:
        metrics["flash/c_weights_ratio"] = cgen.weights_bytes / cgen.dense_weights_bytes
    if app is not None:
        metrics["flash/firmware_app_bytes"] = float(app.flash_bytes)
        metrics["flash/firmware_model_bytes"] = float(build.flash_bytes - app.flash_bytes)
    return metrics


def encodings_tag(encodings: dict[str, tuple[str, str]]) -> str:
    """The per-layer weight encodings as one tag value: "op0_CONV_2D=dense, op5_FULLY_CONNECTED=sparse";
    the reasons are in the log (an MLflow tag holds 5,000 characters)."""
    return ", ".join(f"{layer}={enc}" for layer, (enc, _) in encodings.items())[:5000]


def _skip_or_fail(result: FirmwareResult, reason: str, required: str | None) -> FirmwareResult:
    if required:
        message = f"{required} needs the firmware, which cannot be built: {reason}"
        raise FirmwareUnavailableError(message, partial=result)
    result.skipped = reason
    result.tags["firmware_skipped"] = reason[:500]
    log.warning("firmware skipped: %s", reason)
    return result


def _generate(cfg: Any, tflite: bytes, model_dir: Path, model_name: str) -> tuple[CGenResult | None, str]:
    from tinyml_exp.export.cgen import CGenError, generate_c

    try:
        weights = cfg.export.weights
        return generate_c(
            tflite, model_dir, model_name, reference=cfg.firmware.reference, weights=weights
        ), ""
    except CGenError as e:  # UnsupportedOperatorError included: one line naming the operator
        return None, f"C generator: {e}"


def _build(board: str, model_dir: Path, build_dir: Path, jobs: int) -> tuple[FirmwareBuild | None, str]:
    try:
        return build_image(board, model_dir, build_dir, jobs=jobs), ""
    except FirmwareBuildError as e:
        overflow = _OVERFLOW.search(str(e))
        if overflow is None:
            raise  # a compiler error is a bug in the generator or the firmware: fail loudly
        return None, f"does not fit board {board!r}: {overflow.group(0).strip()}"


def _app_build(cfg: Any, board: str, run_dir: Path) -> FirmwareBuild:
    """The firmware without a model. The same for every run on a board, so it is kept in the cache
    (make rebuilds it when the firmware sources or flags change), under a lock for parallel jobs."""
    if not cfg.cache.enabled:
        return build_image(board, NULL_MODEL_DIR, run_dir, jobs=cfg.firmware.jobs)
    directory = Path(cfg.cache.dir) / "firmware_app" / board
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return build_image(board, NULL_MODEL_DIR, directory / "build", jobs=cfg.firmware.jobs)


def _required(cfg: Any) -> str | None:
    """The setting that makes the firmware required, if any (then a skip is a failure)."""
    if cfg.benchmark.enabled:
        return "benchmark.enabled=true"
    return "firmware.enabled=true" if cfg.firmware.enabled is True else None


def build_firmware(cfg: Any, target: Target, tflite: bytes, out_dir: Path, model_name: str) -> FirmwareResult:
    """Generate, build and measure (see the module docstring)."""
    result = FirmwareResult(model_name=model_name)
    required = _required(cfg)
    board = target.firmware_board
    if not board:
        return _skip_or_fail(result, f"target {target.name!r} has no firmware port", required)
    root = out_dir / "firmware"
    cgen, reason = _generate(cfg, tflite, root / "model", model_name)
    if cgen is None:
        return _skip_or_fail(result, reason, required)
    result.cgen = cgen
    result.artifacts += [("firmware/c", cgen.model_c), ("firmware/c", cgen.model_h)]
    missing = missing_tools_reason(*FIRMWARE_BUILD_TOOLS)
    if missing is not None:
        return _skip_or_fail(result, missing, required)
    build_dir = Path(cfg.firmware.build_dir) if cfg.firmware.build_dir else root / "build"
    build, reason = _build(board, cgen.model_c.parent, build_dir, cfg.firmware.jobs)
    if build is None:
        return _skip_or_fail(result, reason, required)
    result.build = build
    app = _app_build(cfg, board, root / "app") if cfg.firmware.measure_app else None
    result.metrics = firmware_metrics(build, cgen, app)
    result.tags = {
        "firmware.board": board,
        "firmware.build_id": f"0x{cgen.build_id:08x}",
        "firmware.reference": cgen.reference,
        "firmware.toolchain": build.toolchain,
        "firmware.weights": cgen.weights,
        "firmware.encodings": encodings_tag(cgen.encodings),
    }
    result.artifacts += [("firmware", build.elf), ("firmware", build.size_report)]
    for layer, (encoding, reason) in cgen.encodings.items():
        log.info("weights of %s: %s (%s)", layer, encoding, reason)
    log.info(
        "firmware %s: flash %d B (%d B for the model), static RAM %d B (activations %d B)",
        board,
        build.flash_bytes,
        build.flash_bytes - (app.flash_bytes if app else 0),
        build.ram_bytes,
        cgen.activation_bytes,
    )
    return result
