"""Run a generated module on an emulated Cortex-M4 and count instructions per inference.

A minimal bare-metal image (vector table, reset handler, the generated model, the inputs as a
const array) runs under `qemu-system-arm -M netduinoplus2 -icount shift=0`. With icount each
guest instruction advances virtual time by 1 ns and QEMU's STM32 TIM2 counts at 1 GHz, so TIM2
CNT read before and after `tme_model_invoke()` gives the instructions executed (the two reads and
the call itself add a constant overhead, measured with an empty call and subtracted). Results
and outputs come back over semihosting; the image exits through SYS_EXIT.

This is a measuring tool for the generator (and its tests), not the project firmware.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

ARM_CFLAGS = ("-O3", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")

_LINKER_SCRIPT = """
MEMORY { FLASH (rx) : ORIGIN = 0x08000000, LENGTH = 1024K
         RAM (rwx)  : ORIGIN = 0x20000000, LENGTH = 128K }
ENTRY(tme_reset)
SECTIONS {
  .text : { KEEP(*(.vectors)) *(.text*) *(.rodata*) . = ALIGN(4); } > FLASH
  .data : { _data_start = .; *(.data*) . = ALIGN(4); _data_end = .; } > RAM AT > FLASH
  _data_load = LOADADDR(.data);
  .bss (NOLOAD) : { _bss_start = .; *(.bss*) *(COMMON) . = ALIGN(4); _bss_end = .; } > RAM
  _stack_top = ORIGIN(RAM) + LENGTH(RAM);
}
"""

_HARNESS = r"""
#include <stdint.h>
#include <string.h>
#include "model.h"
#include "inputs.h"

#define TIM2_CR1 (*(volatile uint32_t *)0x40000000u)
#define TIM2_EGR (*(volatile uint32_t *)0x40000014u)
#define TIM2_CNT (*(volatile uint32_t *)0x40000024u)
#define TIM2_PSC (*(volatile uint32_t *)0x40000028u)
#define TIM2_ARR (*(volatile uint32_t *)0x4000002Cu)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

extern uint32_t _data_start, _data_end, _data_load, _bss_start, _bss_end, _stack_top;
int main(void);

static int semihost(int op, const void *arg) {
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void tme_reset(void) {
    for (uint32_t *s = &_data_load, *d = &_data_start; d < &_data_end;) { *d++ = *s++; }
    for (uint32_t *d = &_bss_start; d < &_bss_end;) { *d++ = 0; }
    SCB_CPACR |= 0xFu << 20; /* CP10/CP11 full access: the model may use the FPU */
    __asm__ volatile("dsb\n isb");
    main();
    semihost(0x18, (const void *)0x20026); /* SYS_EXIT, ADP_Stopped_ApplicationExit */
    for (;;) {}
}

__attribute__((section(".vectors"), used)) const void *tme_vectors[2] = {&_stack_top, (void *)tme_reset};

static char line[2 * 4096 + 64];
static void put(const char *s) { semihost(0x04, s); } /* SYS_WRITE0 */
static char *hex32(char *p, uint32_t v) {
    for (int i = 7; i >= 0; --i) { *p++ = "0123456789abcdef"[(v >> (4 * i)) & 0xF]; }
    return p;
}

__attribute__((noipa)) static void run_model(void) { tme_model_invoke(); }
__attribute__((noipa)) static void run_empty(void) { __asm__ volatile("" ::: "memory"); }

static uint32_t timed(void (*fn)(void)) {
    __asm__ volatile("" ::: "memory");
    const uint32_t t0 = TIM2_CNT;
    __asm__ volatile("" ::: "memory");
    fn();
    __asm__ volatile("" ::: "memory");
    const uint32_t t1 = TIM2_CNT;
    __asm__ volatile("" ::: "memory");
    return t1 - t0;
}

int main(void) {
    TIM2_PSC = 0;
    TIM2_ARR = 0xFFFFFFFFu;
    TIM2_EGR = 1;
    TIM2_CR1 = 1;
    const uint32_t overhead = timed(run_empty);
    for (uint32_t i = 0; i < TME_N_INPUTS; ++i) {
        memcpy(tme_model_input(), tme_inputs + i * TME_MODEL_INPUT_BYTES, TME_MODEL_INPUT_BYTES);
        const uint32_t n = timed(run_model) - overhead;
        char *p = line;
        memcpy(p, "out ", 4);
        p = hex32(p + 4, n);
        *p++ = ' ';
        const uint8_t *o = (const uint8_t *)tme_model_output();
        for (uint32_t k = 0; k < TME_MODEL_OUTPUT_BYTES; ++k) {
            *p++ = "0123456789abcdef"[o[k] >> 4];
            *p++ = "0123456789abcdef"[o[k] & 0xF];
        }
        *p++ = '\n';
        *p = 0;
        put(line);
    }
    return 0;
}
"""


@dataclass(frozen=True)
class QemuRun:
    """Per-input instruction counts (call overhead subtracted), raw outputs, module footprint."""

    instructions: list[int]
    outputs: np.ndarray  # shape (n_inputs, output_bytes), uint8
    model_flash_bytes: int  # model.o .text + .rodata + .data: kernels, weights, tables, parameters
    model_ram_bytes: int  # model.o .data + .bss: the activation buffer (the stack is not included)


def toolchain_missing() -> str | None:
    """Why QEMU measurements cannot run here, or None."""
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


def build_image(
    model_dir: Path, inputs: np.ndarray, work_dir: Path, cflags: tuple[str, ...] = ARM_CFLAGS
) -> Path:
    """Compile model.c + harness + the given inputs (bytes per row = model input bytes) to an ELF."""
    work_dir.mkdir(parents=True, exist_ok=True)
    flat = np.ascontiguousarray(inputs).reshape(len(inputs), -1).view(np.uint8)
    body = ",".join(str(int(v)) for v in flat.reshape(-1))
    (work_dir / "inputs.h").write_text(
        f"#define TME_N_INPUTS {len(inputs)}u\nstatic const uint8_t tme_inputs[] = {{{body}}};\n"
    )
    (work_dir / "harness.c").write_text(_HARNESS)
    (work_dir / "link.ld").write_text(_LINKER_SCRIPT)
    elf = work_dir / "model.elf"
    common = ["arm-none-eabi-gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", *cflags, "-ffreestanding"]
    compile_model = [*common, "-c", str(model_dir / "model.c"), "-o", str(work_dir / "model.o")]
    link = [
        *common, "-nostartfiles", "--specs=nano.specs", "-T", str(work_dir / "link.ld"),
        "-I", str(model_dir), "-I", str(work_dir), str(work_dir / "model.o"), str(work_dir / "harness.c"),
        "-o", str(elf),
    ]  # fmt: skip
    for cmd in (compile_model, link):
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"arm-none-eabi-gcc failed for {model_dir}: {proc.stderr.strip()[-2000:]}")
    return elf


def run_image(elf: Path, n_inputs: int, timeout_s: float = 600.0) -> QemuRun:
    cmd = [
        "qemu-system-arm", "-M", "netduinoplus2", "-nographic", "-monitor", "none", "-serial", "null",
        "-icount", "shift=0", "-semihosting-config", "enable=on,target=native", "-kernel", str(elf),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    rows = re.findall(r"^out ([0-9a-f]{8}) ([0-9a-f]*)$", proc.stdout + proc.stderr, flags=re.MULTILINE)
    if proc.returncode != 0 or len(rows) != n_inputs:
        raise RuntimeError(
            f"QEMU run of {elf} failed (exit {proc.returncode}, {len(rows)}/{n_inputs} results): "
            f"{proc.stderr.strip()[-300:]}"
        )
    outputs = np.array([np.frombuffer(bytes.fromhex(r[1]), dtype=np.uint8) for r in rows])
    size = subprocess.run(
        ["arm-none-eabi-size", "-B", str(elf.with_name("model.o"))],
        capture_output=True,
        text=True,
        check=True,
    )
    text, data, bss = (int(v) for v in size.stdout.splitlines()[1].split()[:3])
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
