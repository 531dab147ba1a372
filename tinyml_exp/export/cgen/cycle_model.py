"""Modelled Cortex-M4 cycles of a generated model: its ARM code run in the `unicorn` emulator.

The ELF is the one `qemu.build_image` links (model.c + the QEMU harness), so the instruction
stream is the one QEMU counts. Only `tme_model_input`, `tme_model_invoke` and `tme_model_output`
are called (the harness's `main` is not run: it needs TIM2 and semihosting). A basic-block hook
adds each block's static cost (cycle_timing.py, decoded once per block with capstone) and the
path-dependent parts:

- a taken branch (the next block is not the fall-through): + `cycle_timing.REFILL`;
- flash wait states (`flash_wait_states`, the target's figure at its clock): the STM32 ART
  accelerator is modelled as an LRU instruction cache (`ICACHE_LINES` x `LINE_BYTES`) with
  prefetch, so a missed line costs the wait states only when it is reached by a taken branch
  (sequential misses are hidden by the prefetch buffer), and an LRU data cache
  (`DCACHE_LINES` x `LINE_BYTES`) for loads from flash (weights, tables, literal pools), each
  miss costing the wait states. SRAM is zero-wait.

Speed: ~1 Python callback per executed block plus one per flash data read (a few seconds per
million instructions on this machine).
"""

from __future__ import annotations

import logging
import subprocess
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyml_exp.export.cgen import cycle_timing

log = logging.getLogger(__name__)

FLASH, FLASH_SIZE = 0x08000000, 1 << 20
RAM, RAM_SIZE = 0x20000000, 256 << 10
STOP = FLASH + FLASH_SIZE - 0x100  # return address of the called functions: emulation ends here
LINE_BYTES = 16  # STM32F4 ART: 128-bit lines (STM32L4: 64-bit lines, 4 per cache line: same 1 KB)
ICACHE_LINES = 64  # 1 KB instruction cache
DCACHE_LINES = 8  # 128 B data cache


@dataclass(frozen=True)
class CycleRun:
    """One modelled inference: instructions, cycles and what they are made of."""

    instructions: int
    cycles: int
    refill_cycles: int  # taken branches x REFILL
    taken_branches: int
    fetch_wait_cycles: int
    data_wait_cycles: int
    flash_reads: int  # data loads from flash (weights, tables, literals)
    output: np.ndarray  # uint8 bytes of the model's output
    mix: dict[str, tuple[int, int]]  # class -> (instructions, cycles before refills and wait states)

    @property
    def cycles_per_instruction(self) -> float:
        return self.cycles / self.instructions if self.instructions else float("nan")


def cycle_model_missing() -> str | None:
    """Why cycles cannot be modelled here (the `cycles` extra or the ARM toolchain), or None."""
    import importlib.util
    import shutil

    for module in ("unicorn", "capstone"):
        if importlib.util.find_spec(module) is None:
            return f"needs the Python package {module}: pip install 'tinyml_exp[cycles]'"
    for tool in ("arm-none-eabi-gcc", "arm-none-eabi-objcopy", "arm-none-eabi-nm"):
        if shutil.which(tool) is None:
            return f"needs {tool} (Debian: gcc-arm-none-eabi, binutils-arm-none-eabi)"
    return None


class _Lru:
    def __init__(self, n_lines: int) -> None:
        self.n, self.lines = n_lines, OrderedDict()

    def miss(self, line: int) -> bool:
        if line in self.lines:
            self.lines.move_to_end(line)
            return False
        self.lines[line] = None
        if len(self.lines) > self.n:
            self.lines.popitem(last=False)
        return True


def _symbols(elf: Path) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True)
    syms = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3:
            syms[parts[2]] = int(parts[0], 16)
    return syms


def _flash_image(elf: Path) -> bytes:
    binary = elf.with_suffix(".flash.bin")
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(elf), str(binary)], check=True)
    return binary.read_bytes()


class _Machine:
    """A Cortex-M4 in unicorn with the ELF's flash image and its .data initialized."""

    def __init__(self, elf: Path) -> None:
        from unicorn import UC_ARCH_ARM, UC_MODE_MCLASS, UC_MODE_THUMB, Uc
        from unicorn.arm_const import UC_CPU_ARM_CORTEX_M4

        self.syms = _symbols(elf)
        image = _flash_image(elf)
        if len(image) > FLASH_SIZE - 0x1000:
            raise ValueError(f"{elf}: flash image of {len(image)} B does not fit the 1 MB flash model")
        self.uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        self.uc.ctl_set_cpu_model(UC_CPU_ARM_CORTEX_M4)
        self.uc.mem_map(FLASH, FLASH_SIZE)
        self.uc.mem_map(RAM, RAM_SIZE)
        self.uc.mem_write(FLASH, image)
        self.uc.mem_write(STOP, b"\x00\xbf" * 8)  # NOPs: never executed, emulation stops first
        if "_data_load" in self.syms:  # the reset handler's .data copy (.bss: mapped memory is zero)
            start, end, load = (self.syms[k] for k in ("_data_start", "_data_end", "_data_load"))
            self.uc.mem_write(start, bytes(self.uc.mem_read(load, end - start)))

    def call(self, name: str) -> int:
        """Run function `name` (no arguments) to its return; returns r0."""
        from unicorn.arm_const import UC_ARM_REG_LR, UC_ARM_REG_R0, UC_ARM_REG_SP

        self.uc.reg_write(UC_ARM_REG_SP, self.syms.get("_stack_top", RAM + RAM_SIZE) & ~7)
        self.uc.reg_write(UC_ARM_REG_LR, STOP | 1)
        self.uc.emu_start(self.syms[name] | 1, STOP)
        return self.uc.reg_read(UC_ARM_REG_R0)


class _Counter:
    """The block and flash-read hooks' state: instructions, cycles and their parts."""

    def __init__(self, uc, flash_wait_states: int) -> None:
        from capstone import CS_ARCH_ARM, CS_MODE_MCLASS, CS_MODE_THUMB, Cs

        self.uc, self.ws = uc, flash_wait_states
        self.cs = Cs(CS_ARCH_ARM, CS_MODE_THUMB | CS_MODE_MCLASS)
        self.blocks: dict[tuple[int, int], tuple] = {}
        self.executions: dict[tuple[int, int], int] = {}  # block -> times executed (the mix, afterwards)
        self.icache, self.dcache = _Lru(ICACHE_LINES), _Lru(DCACHE_LINES)
        self.prev_end = -1
        self.insns = self.cycles = self.taken = self.fetch_wait = self.data_wait = self.reads = 0

    def mix(self) -> dict[str, tuple[int, int]]:
        """Instruction class -> (instructions, cycles) executed, before refills and wait states."""
        out: dict[str, list[int]] = {}
        for key, times in self.executions.items():
            for cls, cycles in self.blocks[key][4]:
                acc = out.setdefault(cls, [0, 0])
                acc[0] += times
                acc[1] += times * cycles
        return {k: (v[0], v[1]) for k, v in sorted(out.items())}

    def _decode(self, address: int, size: int) -> tuple:
        code = bytes(self.uc.mem_read(address, size))
        insns = list(self.cs.disasm(code, address))
        if sum(i.size for i in insns) != size:
            raise RuntimeError(f"capstone could not decode the block at {address:#x} ({size} B)")
        lines = range(address // LINE_BYTES, (address + size - 1) // LINE_BYTES + 1)
        costs = cycle_timing.block_costs(insns)
        return len(insns), sum(c for _, c in costs), address // LINE_BYTES, lines, costs

    def on_block(self, uc, address: int, size: int, _user) -> None:
        key = (address, size)
        info = self.blocks.get(key)
        if info is None:
            info = self.blocks[key] = self._decode(address, size)
        n, c, first, lines, _ = info
        self.executions[key] = self.executions.get(key, 0) + 1
        taken = address != self.prev_end
        self.taken += taken and self.prev_end >= 0  # the entry is the caller's BL, not ours
        self.insns += n
        self.cycles += c
        self.prev_end = address + size
        if address < FLASH + FLASH_SIZE and address >= FLASH:
            for line in lines:
                # A sequential miss is fetched by the prefetch buffer while the previous line runs.
                if self.icache.miss(line) and taken and line == first:
                    self.fetch_wait += self.ws

    def on_flash_read(self, uc, _access, address: int, _size: int, _value, _user) -> None:
        if not FLASH <= address < FLASH + FLASH_SIZE:
            return
        self.reads += 1
        if self.dcache.miss(address // LINE_BYTES):
            self.data_wait += self.ws


def _run_counted(m: _Machine, name: str, flash_wait_states: int) -> _Counter:
    from unicorn import UC_HOOK_BLOCK, UC_HOOK_MEM_READ

    counter = _Counter(m.uc, flash_wait_states)
    hooks = [
        m.uc.hook_add(UC_HOOK_BLOCK, counter.on_block),
        # every read, filtered in the callback: unicorn 2.1 with a read hook limited to the flash
        # range skipped a RAM store in a long straight-line copy (DS-CNN's depthwise edge gather)
        m.uc.hook_add(UC_HOOK_MEM_READ, counter.on_flash_read),
    ]
    m.call(name)
    counter.taken += 1  # the return to the caller (emulation stops before its block is hooked)
    for h in hooks:
        m.uc.hook_del(h)
    return counter


def _result(counter: _Counter, output: np.ndarray) -> CycleRun:
    refill = counter.taken * cycle_timing.REFILL
    return CycleRun(
        instructions=counter.insns,
        cycles=counter.cycles + refill + counter.fetch_wait + counter.data_wait,
        refill_cycles=refill,
        taken_branches=counter.taken,
        fetch_wait_cycles=counter.fetch_wait,
        data_wait_cycles=counter.data_wait,
        flash_reads=counter.reads,
        output=output,
        mix=counter.mix(),
    )


def run_function(elf: Path, name: str, flash_wait_states: int = 0) -> CycleRun:
    """Model one call of the argument-less function `name` in `elf` (linked at 0x08000000)."""
    m = _Machine(elf)
    return _result(_run_counted(m, name, flash_wait_states), np.zeros(0, dtype=np.uint8))


def run_elf(elf: Path, model_input: bytes, flash_wait_states: int = 0) -> CycleRun:
    """Model one inference of the generated model linked in `elf` (from `qemu.build_image`)."""
    m = _Machine(elf)
    in_ptr, out_ptr = m.call("tme_model_input"), m.call("tme_model_output")
    m.uc.mem_write(in_ptr, model_input)
    counter = _run_counted(m, "tme_model_invoke", flash_wait_states)
    out = bytes(m.uc.mem_read(out_ptr, _output_bytes(m)))
    return _result(counter, np.frombuffer(out, dtype=np.uint8).copy())


def _output_bytes(m: _Machine) -> int:
    # tme_tensor_info_t: dtype, rank (u8), dims[4] (u16), scale (f32 at 12), zero_point, bytes (at 20)
    return int.from_bytes(bytes(m.uc.mem_read(m.syms["tme_model_output_info"] + 20, 4)), "little")


def model_cycles(
    model_dir: Path, model_input: np.ndarray, work_dir: Path, flash_wait_states: int = 0
) -> CycleRun:
    """Build `model_dir` (generated C) exactly as the QEMU measurement does and model one
    inference of `model_input` (one tensor, the model's input dtype) on a Cortex-M4."""
    from tinyml_exp.export.cgen import qemu

    x = np.ascontiguousarray(model_input)
    elf = qemu.build_image(model_dir, x.reshape(1, *x.shape), work_dir)
    run = run_elf(elf, x.view(np.uint8).tobytes(), flash_wait_states)
    log.info(
        "cycle model: %d instructions, %d cycles (%.2f/instruction; %d taken branches, %d fetch + %d data wait)",
        run.instructions, run.cycles, run.cycles_per_instruction, run.taken_branches,
        run.fetch_wait_cycles, run.data_wait_cycles,
    )  # fmt: skip
    return run


def cycle_metrics(
    model_dir: Path, model_input: np.ndarray, work_dir: Path, macs: int, flash_wait_states: int | None
) -> dict[str, float]:
    """The metrics to log beside the instruction count (`Target.flash_wait_states`; None -> 0)."""
    run = model_cycles(model_dir, model_input, work_dir, flash_wait_states or 0)
    metrics = {
        "cycles/modelled": float(run.cycles),
        "cycles/modelled_instructions": float(run.instructions),
        "cycles/modelled_taken_branches": float(run.taken_branches),
        "cycles/modelled_flash_wait": float(run.fetch_wait_cycles + run.data_wait_cycles),
    }
    if macs:
        metrics["cycles/modelled_per_mac"] = run.cycles / macs
    return metrics
