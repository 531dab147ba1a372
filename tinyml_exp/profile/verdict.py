"""Does the model fit the target? And how far off were the estimates, once something is measured?

The verdict compares the chosen backend's needs with what the target leaves after its
reservations (`Target.available_*_bytes`; RAM also against the largest contiguous block, since an
arena or activation buffer cannot span two). It never raises: a model that does not fit is a
result (tag `fits_target=false` with the reason), so sweeps can filter on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tinyml_exp.targets import Target


@dataclass(frozen=True)
class Verdict:
    fits: bool
    reasons: tuple[str, ...]
    ram_need_bytes: int | None
    ram_available_bytes: int
    flash_need_bytes: int | None
    flash_available_bytes: int
    notes: tuple[str, ...] = field(default=())

    @property
    def ram_margin_bytes(self) -> int | None:
        """available − need (negative: short by that much)."""
        return None if self.ram_need_bytes is None else self.ram_available_bytes - self.ram_need_bytes

    @property
    def flash_margin_bytes(self) -> int | None:
        return None if self.flash_need_bytes is None else self.flash_available_bytes - self.flash_need_bytes

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons) if self.reasons else "fits"

    def tags(self) -> dict[str, str]:
        return {"fits_target": str(self.fits).lower(), "fits_target.reason": self.reason}

    def metrics(self) -> dict[str, float]:
        metrics = {"fit/ok": float(self.fits)}
        if self.ram_margin_bytes is not None:
            metrics["fit/ram_margin_bytes"] = float(self.ram_margin_bytes)
        if self.flash_margin_bytes is not None:
            metrics["fit/flash_margin_bytes"] = float(self.flash_margin_bytes)
        return metrics


def decide(
    target: Target,
    backend: str,
    ram_need_bytes: int | None,
    flash_need_bytes: int | None,
    unsupported_operators: tuple[str, ...] = (),
    runtime_error: str = "",
) -> Verdict:
    """Fit verdict for `backend` on `target`; None needs mean the figure could not be obtained."""
    reasons: list[str] = []
    notes: list[str] = []
    ram_available = target.available_ram_bytes
    block = target.largest_ram_block_bytes
    if unsupported_operators:
        reasons.append(f"operators not supported by {backend}: {', '.join(unsupported_operators)}")
    elif runtime_error:
        reasons.append(f"{backend} cannot run the model: {runtime_error[:300]}")
    if ram_need_bytes is None:
        notes.append(f"RAM need for {backend} unknown")
    else:
        if ram_need_bytes > ram_available:
            reasons.append(
                f"RAM: needs {ram_need_bytes:,} B, {ram_available:,} B available "
                f"({target.ram_bytes:,} − {target.reserved_ram_bytes:,} reserved), "
                f"short by {ram_need_bytes - ram_available:,} B"
            )
        elif block is not None and ram_need_bytes > block:
            reasons.append(
                f"RAM: needs {ram_need_bytes:,} B in one block, largest contiguous SRAM is {block:,} B, "
                f"short by {ram_need_bytes - block:,} B"
            )
    flash_available = target.available_flash_bytes
    if flash_need_bytes is None:
        notes.append(f"flash need for {backend} unknown")
    elif flash_need_bytes > flash_available:
        reasons.append(
            f"flash: needs {flash_need_bytes:,} B, {flash_available:,} B available "
            f"({target.flash_bytes:,} − {target.reserved_flash_bytes:,} reserved), "
            f"short by {flash_need_bytes - flash_available:,} B"
        )
    return Verdict(
        fits=not reasons,
        reasons=tuple(reasons),
        ram_need_bytes=ram_need_bytes,
        ram_available_bytes=ram_available,
        flash_need_bytes=flash_need_bytes,
        flash_available_bytes=flash_available,
        notes=tuple(notes),
    )


def estimate_errors(metrics: Mapping[str, float], backend: str | None = None) -> dict[str, float]:
    """Errors of the estimates against measured counterparts present in `metrics`, as
    100 × (estimate − measured) / measured (positive: the estimate is high):

    - `error/cycles_estimate_pct`: `cycles/estimate` vs `cycles/median` (device cycles, or QEMU
      instructions on a target whose `count_unit` is instructions — the estimate uses the same unit);
    - `error/flash_estimate_pct`: `flash/estimate_bytes` (model + inference code) vs what the
      firmware spends on them: `flash/firmware_model_bytes` if logged, else `flash/firmware_bytes`
      − `flash/firmware_app_bytes` (the same firmware built without a model). Without either, no
      flash error is computed: the whole image also holds the application, which is not estimated.

    The pipeline calls this once per measuring result (firmware, benchmark), with the profile's
    figures beside it (`pipeline.estimate_errors_of`). `backend` compares with that backend's
    estimates (`cycles/estimate_<backend>`, `flash/estimate_<backend>_bytes`) instead of the
    `profile.backend` ones — pass "cgen" for the generated-C firmware.
    """
    cycles_key = f"cycles/estimate_{backend}" if backend else "cycles/estimate"
    flash_key = f"flash/estimate_{backend}_bytes" if backend else "flash/estimate_bytes"
    errors = {}
    measured_cycles, estimate_cycles = metrics.get("cycles/median"), metrics.get(cycles_key)
    if measured_cycles and estimate_cycles is not None:
        errors["error/cycles_estimate_pct"] = _pct(estimate_cycles, measured_cycles)
    measured_flash = metrics.get("flash/firmware_model_bytes")
    if measured_flash is None and "flash/firmware_bytes" in metrics and "flash/firmware_app_bytes" in metrics:
        measured_flash = metrics["flash/firmware_bytes"] - metrics["flash/firmware_app_bytes"]
    estimate_flash = metrics.get(flash_key)
    if measured_flash and estimate_flash is not None:
        errors["error/flash_estimate_pct"] = _pct(estimate_flash, measured_flash)
    return errors


def _pct(estimate: float, measured: float) -> float:
    return 100.0 * (float(estimate) - float(measured)) / float(measured)
