"""Run a generated module on an emulated Cortex-M4 and count instructions per inference.

The image is the project firmware built as its measuring app (`firmware/`, APP=measure on the
qemu_netduinoplus2 port: the shared Cortex-M4 startup, vectors and linker sections, the port's
TIM2 counter), with the inputs as a const array (tme_inputs.c). It runs under `qemu-system-arm
-M netduinoplus2 -icount shift=0`: with icount each guest instruction advances virtual time by
1 ns and TIM2 counts at 1 GHz, so the counter read before and after `tme_model_invoke()` gives
the instructions executed (the two reads and the call add a constant overhead, measured with an
empty call and subtracted: firmware/measure/tme_measure.c). Counts and outputs come back over
semihosting; the image exits through SYS_EXIT.

This is a measuring tool for the generator (and its tests); the benchmark protocol is APP=bench.
"""

from __future__ import annotations

import logging
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyml_exp.hardware.build import AppOptions, build_firmware, parse_size_report
from tinyml_exp.hardware.tools import FIRMWARE_BUILD_TOOLS, missing_tools_reason, require_tools

log = logging.getLogger(__name__)

BOARD = "qemu_netduinoplus2"
ARM_CFLAGS = ("-O3", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")
# Added before `cflags` to the model's objects (firmware/Makefile MODEL_CFLAGS): the model is
# compiled as the generator's measurements always were, freestanding C99 (no memcpy / memset
# builtins) in one section, so instruction counts stay comparable with the recorded figures. The
# serial firmware (APP=bench) builds it hosted, which can differ by a few instructions per kernel.
_MODEL_CFLAGS = ("-std=c99", "-ffreestanding", "-fno-function-sections", "-fno-data-sections")
_ROW = re.compile(r"^out ([0-9a-f]{8}) ([0-9a-f]*)$", flags=re.MULTILINE)


@dataclass(frozen=True)
class QemuRun:
    """Per-input instruction counts (call overhead subtracted), raw outputs, module footprint."""

    instructions: list[int]
    outputs: np.ndarray  # shape (n_inputs, output_bytes), uint8
    model_flash_bytes: int  # model.o .text + .rodata + .data: kernels, weights, tables, parameters
    model_ram_bytes: int  # model.o .data + .bss: the activation buffer (the stack is not included)


def toolchain_missing() -> str | None:
    """Why QEMU measurements cannot run here (the tools and their Debian packages), or None."""
    return missing_tools_reason(*FIRMWARE_BUILD_TOOLS, "qemu-system-arm")


def write_inputs(inputs: np.ndarray, inputs_dir: Path) -> Path:
    """tme_inputs.c for APP=measure: the rows of `inputs` as bytes (one row = one model input)."""
    inputs_dir.mkdir(parents=True, exist_ok=True)
    flat = np.ascontiguousarray(inputs).reshape(len(inputs), -1).view(np.uint8)
    body = ",".join(str(int(v)) for v in flat.reshape(-1))
    path = inputs_dir / "tme_inputs.c"
    path.write_text(
        f'#include "tme_measure.h"\n\nconst uint32_t tme_n_inputs = {len(inputs)}U;\n'
        f"const uint8_t tme_inputs[] = {{{body}}};\n"
    )
    return path


def build_image(
    model_dir: Path, inputs: np.ndarray, work_dir: Path, cflags: tuple[str, ...] = ARM_CFLAGS
) -> Path:
    """Build firmware/ (APP=measure) with model.c and the given inputs (bytes per row = model input
    bytes) into `work_dir`; returns the ELF. Raises ToolMissingError / FirmwareBuildError."""
    write_inputs(inputs, work_dir / "inputs")
    app = AppOptions(app="measure", inputs_dir=work_dir / "inputs", model_cflags=(*_MODEL_CFLAGS, *cflags))
    return build_firmware(BOARD, model_dir, work_dir, app=app).elf


def run_image(elf: Path, n_inputs: int, timeout_s: float = 600.0) -> QemuRun:
    """Run an APP=measure image under QEMU and read its report (see the module docstring)."""
    require_tools("qemu-system-arm", "arm-none-eabi-size")
    cmd = [
        "qemu-system-arm", "-M", "netduinoplus2", "-nographic", "-monitor", "none", "-serial", "null",
        "-icount", "shift=0", "-semihosting-config", "enable=on,target=native", "-kernel", str(elf),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    rows = _ROW.findall(proc.stdout + proc.stderr)
    if proc.returncode != 0 or len(rows) != n_inputs:
        raise RuntimeError(
            f"QEMU run of {elf} failed (exit {proc.returncode}, {len(rows)}/{n_inputs} results): "
            f"{proc.stderr.strip()[-300:]}"
        )
    outputs = np.array([np.frombuffer(bytes.fromhex(r[1]), dtype=np.uint8) for r in rows])
    model_object = elf.parent / "model" / "model.o"  # where firmware/Makefile puts it
    size = subprocess.run(
        ["arm-none-eabi-size", "-B", str(model_object)], capture_output=True, text=True, check=True
    )
    text, data, bss = parse_size_report(size.stdout)
    return QemuRun(
        instructions=[int(r[0], 16) for r in rows],
        outputs=outputs,
        model_flash_bytes=text + data,
        model_ram_bytes=data + bss,
    )


def measure(
    model_dir: Path, inputs: np.ndarray, work_dir: Path, cflags: tuple[str, ...] = ARM_CFLAGS
) -> QemuRun:
    """Build and run `inputs` through the module in `model_dir`; see `QemuRun`."""
    run = run_image(build_image(model_dir, inputs, work_dir, cflags), len(inputs))
    log.info("QEMU: %d inferences, median %d instructions", len(inputs), int(np.median(run.instructions)))
    return run


@dataclass(frozen=True)
class ModelMeasurement:
    """Instructions per inference of a generated module on the emulated Cortex-M4, and its size."""

    instructions: int  # median over the inputs (the kernels are data-independent: all equal)
    macs: int
    activation_bytes: int  # the planned activation buffer (stack not included)
    weights_bytes: int  # const data (weights, biases, requantization tables, parameters)
    model_flash_bytes: int  # code + const data of model.o for Cortex-M4
    model_ram_bytes: int  # .data + .bss of model.o

    @property
    def instructions_per_mac(self) -> float:
        return self.instructions / self.macs if self.macs else float("nan")


def measure_model(
    tflite: str | Path | bytes,
    work_dir: Path,
    n_inputs: int = 8,
    seed: int = 0,
    reference: str = "tflm",
    weights: str = "dense",
) -> ModelMeasurement:
    """Generate C for `tflite`, run `n_inputs` random inputs under QEMU and return the figures."""
    from tinyml_exp.export.cgen import generate_c
    from tinyml_exp.tflite_graph import read_graph

    res = generate_c(tflite, work_dir / "model", "measured", reference=reference, weights=weights)
    t = read_graph(tflite).input_tensors[0]
    rng = np.random.default_rng(seed)
    if t.type_name == "INT8":
        x = rng.integers(-128, 128, size=(n_inputs, *t.shape), dtype=np.int8)
    else:
        x = rng.random((n_inputs, *t.shape), dtype=np.float32)
    run = measure(work_dir / "model", x, work_dir / "build")
    return ModelMeasurement(
        instructions=int(np.median(run.instructions)),
        macs=res.macs,
        activation_bytes=res.activation_bytes,
        weights_bytes=res.weights_bytes,
        model_flash_bytes=run.model_flash_bytes,
        model_ram_bytes=run.model_ram_bytes,
    )
