"""Cortex-M4 instruction timings (ARM DDI 0439B, Cortex-M4 TRM, table 3-1 and the FPU chapter).

`static_cost(insns)` gives the cycles of one straight-line block of decoded Thumb instructions
before any taken branch at its end and before flash wait states (cycle_model.py adds those, they
depend on the path). The assumptions, stated once:

- ALU, MOV, shifts, bitfield, SXTB16/SXTAB16, PKHBT, SSAT, QADD, SIMD adds: 1.
- MUL/MLA/MLS, the long multiplies (SMULL, SMLAL, UMLAL) and the DSP MACs (SMLAD, SMLABB, ...): 1.
- LDR/STR single (any size): 2; 1 when it directly follows an LDR whose result its address does
  not use (pipelined neighbours); STR with an immediate offset: 1 (its data phase overlaps the
  next instruction); + 1 when the address uses the result of the data-processing instruction
  just before it (no forwarding to the address generation). Nothing pipelines after a store.
- LDRD/STRD: 3 (never pipelined); LDM/STM/PUSH/POP of N registers: 1 + N.
- Every taken branch and write to PC (B, BL, BX, CBZ, POP {..pc}, LDR pc, ...): its own cycles
  + P, P = `REFILL` = 2 (the TRM gives 1-3: 3 when the target is a 32-bit unaligned instruction;
  2 is the mid value). Taken = the next block executed is not the fall-through. A branch not
  taken: 1.
- SDIV/UDIV: 2-12 cycles depending on the operands (early termination); taken as `DIV_CYCLES`
  = 7 (the mid value; the generated kernels divide only outside the loops).
- IT: 1 (not folded; the TRM folds it only sometimes). Condition-failed instructions: 1.
- Within one basic block only: pipelining and address stalls across a block boundary (a branch
  target) are not modelled. LDR Rx,[PC,#imm]'s possible extra cycle (fetch contention) is not.
- FPU: VADD/VSUB/VMUL/VABS/VNEG/VCVT/VCMP/VMOV/VMRS 1, VMLA/VMLS/VFMA/VFMS/VNMLA 3, VDIV and
  VSQRT 14, VLDR/VSTR 2 (pipelined like LDR), VLDM/VSTM/VPUSH/VPOP 1 + N.
"""

from __future__ import annotations

import re

REFILL = 2  # pipeline refill P of a taken branch, cycles
DIV_CYCLES = 7  # SDIV/UDIV: 2-12 on the M4, mid value

_SINGLE_LS = (
    "ldr", "ldrb", "ldrh", "ldrsb", "ldrsh", "str", "strb", "strh", "ldrex", "strex",
    "ldrt", "ldrbt", "ldrht", "ldrsbt", "ldrsht", "strt", "strbt", "strht", "vldr", "vstr",
)  # fmt: skip
_MULTI = ("ldm", "ldmia", "ldmdb", "ldmfd", "stm", "stmia", "stmdb", "stmea", "push", "pop")
_VMULTI = ("vldmia", "vldmdb", "vstmia", "vstmdb", "vpush", "vpop", "vldm", "vstm")
_BRANCH = ("b", "bl", "blx", "bx", "cbz", "cbnz", "tbb", "tbh")
_VFP3 = ("vmla", "vmls", "vnmla", "vnmls", "vfma", "vfms", "vfnma", "vfnms")
_VFP14 = ("vdiv", "vsqrt")
_COND = ("eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le")


def base_mnemonic(mnemonic: str) -> str:
    """'ldr.w' -> 'ldr', 'vmla.f32' -> 'vmla', 'bne' -> 'b', 'ldrbeq' -> 'ldrb' (IT-block forms)."""
    m = mnemonic.split(".")[0]
    known = _SINGLE_LS + _MULTI + _VMULTI + _BRANCH + _VFP3 + _VFP14 + ("sdiv", "udiv")
    if m in known:
        return m
    if len(m) > 2 and m[-2:] in _COND and m[:-2] in (*known, "mov", "add", "sub"):
        return m[:-2]
    return m


def _reg_list_len(op_str: str) -> int:
    inside = op_str[op_str.index("{") + 1 : op_str.index("}")]
    n = 0
    for part in inside.split(","):
        part = part.strip()
        if "-" in part:  # VFP ranges: {s16-s31}
            lo, hi = (int(p.strip()[1:]) for p in part.split("-"))
            n += hi - lo + 1
        elif part:
            n += 1
    return n


def insn_cycles(mnemonic: str, op_str: str, pipelined: bool) -> int:
    """Cycles of one instruction without the refill of a taken branch or a write to PC (the
    caller adds `REFILL` when the next block executed is not the fall-through)."""
    m = base_mnemonic(mnemonic)
    if m in _SINGLE_LS:
        return 1 if pipelined else 2
    if m in ("ldrd", "strd"):
        return 3
    if m in _MULTI or m in _VMULTI:
        return 1 + _reg_list_len(op_str)
    if m in ("tbb", "tbh"):
        return 2  # the table load
    if m in ("sdiv", "udiv"):
        return DIV_CYCLES
    if m in _VFP3:
        return 3
    if m in _VFP14:
        return 14
    return 1


def insn_class(mnemonic: str) -> str:
    """The instruction-mix class: load/store | load/store multiple | multiply | branch | fpu | alu."""
    m = base_mnemonic(mnemonic)
    if m in _SINGLE_LS and not m.startswith("v"):
        return "load/store"
    if m in _MULTI or m in ("ldrd", "strd"):
        return "load/store multiple"
    if m in _BRANCH:
        return "branch"
    if m.startswith("v"):
        return "fpu"
    if (
        "mul" in m
        or "mla" in m
        or "mls" in m
        or m.startswith(("smla", "smul", "smus", "smua", "umla", "umaal"))
    ):
        return "multiply"
    return "alu"


def _address(op_str: str) -> str:
    return op_str.split("[", 1)[1] if "[" in op_str else ""


def _uses(reg: str | None, text: str) -> bool:
    return reg is not None and re.search(rf"\b{reg}\b", text) is not None


def _single_ls_cycles(m: str, op_str: str, prev: tuple[str, str | None]) -> int:
    """LDR/STR single after `prev` = (kind, destination) of the instruction before it."""
    kind, dest = prev
    addr = _address(op_str)
    store_imm = m.startswith(("str", "vstr")) and not re.search(r"\[\w+, (r\d+|ip|lr|sb|sl|fp)", "[" + addr)
    if store_imm:
        cycles = 1  # STR Rx,[Ry,#imm]: the data phase overlaps the next instruction
    elif kind == "ldr" and not _uses(dest, addr):
        cycles = 1  # pipelined after a load whose result the address does not need
    else:
        cycles = 2
    return cycles + (1 if kind == "dp" and _uses(dest, addr) else 0)  # no AGU forwarding


def block_costs(insns: list) -> list[tuple[str, int]]:
    """(class, cycles) of each capstone instruction of one basic block, before the refill of
    the control transfer that may end it and before flash wait states."""
    out: list[tuple[str, int]] = []
    prev: tuple[str, str | None] = ("", None)
    for ins in insns:
        m, cls = base_mnemonic(ins.mnemonic), insn_class(ins.mnemonic)
        dest = ins.op_str.split(",")[0].strip() or None
        if m in _SINGLE_LS:
            cycles = _single_ls_cycles(m, ins.op_str, prev)
            prev = ("ldr", dest) if m.startswith(("ldr", "vldr")) else ("str", None)
        else:
            cycles = insn_cycles(ins.mnemonic, ins.op_str, False)
            writes = cls in ("alu", "multiply") and m not in ("cmp", "cmn", "tst", "teq", "it")
            prev = ("dp", dest) if writes else ("", None)
        out.append((cls, cycles))
    return out


def static_cost(insns: list) -> int:
    """Cycles of one basic block (see `block_costs`)."""
    return sum(c for _, c in block_costs(insns))
