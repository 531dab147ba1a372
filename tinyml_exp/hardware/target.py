"""The `target` config group: a microcontroller board (or the host) with its datasheet figures."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from tinyml_exp.config import register_option


@register_option("target", "board")
@dataclass
class Target:
    """A device a model is meant to run on. Figures come from the vendor's datasheet.

    `ram_bytes` / `flash_bytes` are the whole device; `reserved_*_bytes` is what the application,
    the runtime and the stack keep for themselves, so a model fits when its needs are at most
    `available_*_bytes`.
    """

    name: str = MISSING
    board: str = MISSING  # vendor's board name, e.g. "B-L475E-IOT01A"
    mcu: str = MISSING  # e.g. "STM32L475VG"
    core: str = MISSING  # cortex-m4 | cortex-m7 | cortex-m33 | cortex-m0plus | xtensa-lx7 | host ...
    clock_hz: int = MISSING
    flash_bytes: int = MISSING
    ram_bytes: int = MISSING
    fpu: bool = False
    dsp: bool = False  # Armv7E-M DSP extension (SIMD MACs such as SMLAD)
    active_power_mw: float | None = None  # typical run-mode power at clock_hz, where known
    reserved_ram_bytes: int = 0
    reserved_flash_bytes: int = 0
    firmware_board: str | None = None  # firmware/boards/<name>, null when there is no port
    emulated: bool = False
    source: str = ""  # where the figures come from (datasheet, reference manual)

    @property
    def available_ram_bytes(self) -> int:
        return self.ram_bytes - self.reserved_ram_bytes

    @property
    def available_flash_bytes(self) -> int:
        return self.flash_bytes - self.reserved_flash_bytes
