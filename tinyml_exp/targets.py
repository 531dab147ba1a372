"""The `target` config group: a microcontroller board (or the host) with its datasheet figures.

A module of its own (it imports only the registry), so the profiler and the hardware stages both
read a `Target` without importing each other or the config machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

from tinyml_exp.registry import register_option


@dataclass
class TargetBenchmark:
    """How the benchmark reaches a board unless `benchmark.*` says otherwise."""

    # tty path or any pyserial URL (socket://host:port, rfc2217://...); null on an emulated target:
    # start QEMU with the run's firmware on a free local port.
    port: str | None = None
    baudrate: int = 115200
    # Flash command template, split like a shell line, with {elf} {bin} {port} substituted;
    # null: the board is flashed already (or is emulated).
    flash: str | None = None
    timeout_s: float = 5.0  # one request: send the input, run the model, receive the output


# Every conf/target/*.yaml is a board: one class serves them all.
@register_option("target")
@dataclass
class Target:
    """A device a model is meant to run on. Figures come from the vendor's datasheet; `source` in
    each `conf/target/*.yaml` says which, figure by figure.

    `ram_bytes` / `flash_bytes` are the whole device (on-chip SRAM; flash the program can use,
    external QSPI flash included where the board boots from it). `reserved_*_bytes` is what the
    application keeps for itself whatever the model: RAM for the stack, serial buffers and the
    runtime's objects (interpreter, op resolver); flash for startup code, drivers, the serial
    protocol and libc. The model and the inference code (TFLM framework and kernels, or the
    generated C) are estimated per backend by the profiler, so a model fits when its needs are at
    most `available_*_bytes` (and its RAM at most `largest_ram_block_bytes`).
    """

    name: str = MISSING
    board: str = MISSING  # vendor's board name, e.g. "B-L475E-IOT01A"
    mcu: str = MISSING  # e.g. "STM32L475VG"
    # Cost-model core key: cortex-m4 | cortex-m7 | cortex-m33 | cortex-m0plus | xtensa-lx7 | host
    core: str = MISSING
    clock_hz: int = MISSING
    flash_bytes: int = MISSING
    ram_bytes: int = MISSING
    fpu: bool = False  # single-precision FPU
    fpu_double: bool = False  # double-precision FPU (Cortex-M7 FPv5-D16)
    dsp: bool = False  # integer SIMD MACs: Armv7E-M/Armv8-M DSP extension (SMLAD); ESP32-S3 PIE
    active_power_mw: float | None = None  # typical run-mode power at clock_hz, where known
    power_source: str = ""  # where active_power_mw comes from, and whether measured or datasheet
    reserved_ram_bytes: int = 0
    reserved_flash_bytes: int = 0
    largest_ram_block_bytes: int | None = None  # largest contiguous SRAM; null: all of ram_bytes
    # Flash wait states at clock_hz (instruction fetch and flash data loads through the ART
    # accelerator on STM32); null: not recorded, the cycle model assumes zero-wait flash.
    flash_wait_states: int | None = None
    count_unit: str = "cycles"  # what the board's counter measures: cycles | instructions (QEMU)
    firmware_board: str | None = None  # firmware/boards/<name>, null when there is no port
    emulated: bool = False
    # Defaults of benchmark.port / baudrate / flash / timeout_s for this board.
    benchmark: TargetBenchmark = field(default_factory=TargetBenchmark)
    source: str = ""  # where the figures come from (datasheet, reference manual)

    @property
    def available_ram_bytes(self) -> int:
        return self.ram_bytes - self.reserved_ram_bytes

    @property
    def available_flash_bytes(self) -> int:
        return self.flash_bytes - self.reserved_flash_bytes
