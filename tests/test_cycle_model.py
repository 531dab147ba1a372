"""The Cortex-M4 cycle model (tinyml_exp/export/cgen/cycle_model.py): a snippet of known timing,
and a generated model whose instruction stream must be QEMU's, instruction for instruction."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import require_commands, require_modules
from tests.test_cgen import random_inputs

log = logging.getLogger(__name__)

pytestmark = [
    pytest.mark.firmware,
    require_commands("arm-none-eabi-gcc"),
    require_modules("unicorn", "capstone", extra="cycles"),
]

# 10 iterations of two back-to-back SRAM loads (2 + 1 pipelined), SUBS, BNE; then one flash load.
SNIPPET = """
    .syntax unified
    .thumb
    .text
    .global snippet
    .type snippet, %function
    .thumb_func
snippet:
    movs r1, #10
    movw r2, #0x0100
    movt r2, #0x2000
1:  ldr r3, [r2]
    ldr r3, [r2, #4]
    subs r1, #1
    bne 1b
    ldr r0, =0x12345678
    bx lr
"""
# MOVS/MOVW/MOVT 3, body 10 x 5 (+ 1 the first time: LDR's address is MOVT's result), literal
# LDR 2, BX 1; taken: 9 BNE + the return, x REFILL.
SNIPPET_INSTRUCTIONS = 3 + 10 * 4 + 2
SNIPPET_CYCLES = 3 + 10 * 5 + 1 + 2 + 1


def _snippet_elf(tmp_path: Path) -> Path:
    (tmp_path / "snippet.S").write_text(SNIPPET)
    elf = tmp_path / "snippet.elf"
    subprocess.run(
        ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-nostdlib", "-Wl,-Ttext=0x08000000",
         "-Wl,--entry=snippet", str(tmp_path / "snippet.S"), "-o", str(elf)],
        check=True,
    )  # fmt: skip
    return elf


def test_snippet_of_known_timing(tmp_path: Path) -> None:
    from tinyml_exp.export.cgen import cycle_model, cycle_timing

    elf = _snippet_elf(tmp_path)
    run = cycle_model.run_function(elf, "snippet", flash_wait_states=0)
    assert run.instructions == SNIPPET_INSTRUCTIONS
    assert run.taken_branches == 10
    assert run.cycles == SNIPPET_CYCLES + 10 * cycle_timing.REFILL
    # Wait states: the entry line misses (reached by a branch), the loop stays in the cache, the
    # literal is one flash data read that misses once.
    ws = cycle_model.run_function(elf, "snippet", flash_wait_states=4)
    assert (ws.fetch_wait_cycles, ws.data_wait_cycles, ws.flash_reads) == (4, 4, 1)
    assert ws.cycles == run.cycles + 8


def test_timings_of_single_instructions() -> None:
    from tinyml_exp.export.cgen.cycle_timing import base_mnemonic, insn_cycles

    assert [base_mnemonic(m) for m in ("ldr.w", "bne", "blt", "ldrbeq", "vmla.f32", "bl")] == [
        "ldr", "b", "b", "ldrb", "vmla", "bl",
    ]  # fmt: skip
    assert insn_cycles("ldm.w", "r0!, {r4, r5, r6, r7}", False) == 5
    assert insn_cycles("ldrd", "r4, r5, [r1], #8", False) == 3
    assert insn_cycles("push", "{r4, r5, r6, r7, r8, lr}", False) == 7
    assert insn_cycles("vpush", "{s16-s31}", False) == 17
    assert insn_cycles("smlad", "r0, r1, r2, r0", False) == 1
    assert insn_cycles("vdiv.f32", "s0, s1, s2", False) == 14


class _Insn:
    def __init__(self, text: str) -> None:
        self.mnemonic, _, self.op_str = text.partition(" ")


@pytest.mark.parametrize(
    "block,cycles",
    [
        # the TRM's load/store pairing examples (Cortex-M3/M4 "load/store timings")
        (["ldr r0, [r1]", "ldr r1, [r2]"], [2, 1]),
        (["ldr r0, [r1, r2]", "str r0, [r3, #20]"], [2, 1]),
        (["ldr r0, [r1, r5]", "ldr r1, [r2]", "ldr r2, [r3, #4]"], [2, 1, 1]),
        (["ldr r1, [r0]", "ldr r2, [r1]"], [2, 2]),  # the address needs the first load's result
        (["adds r2, #4", "ldr r0, [r2]"], [1, 3]),  # no forwarding to the address generation
        (["cmp r2, #4", "ldr r0, [r2]"], [1, 2]),
        (["str r0, [r1, r2]", "ldr r3, [r4]"], [2, 2]),  # nothing pipelines after a store
        (["ldrd r4, r5, [r1], #8", "ldr r0, [r2]"], [3, 2]),
    ],
)
def test_load_store_pairing(block: list[str], cycles: list[int]) -> None:
    from tinyml_exp.export.cgen.cycle_timing import block_costs

    assert [c for _, c in block_costs([_Insn(t) for t in block])] == cycles


def _conv_fc_model() -> bytes:
    from tests.cgen_layers import RELU, SAME, Int8Builder

    b = Int8Builder(np.random.default_rng(0))
    x = b.activation((1, 8, 8, 16))
    y = b.conv(x, 16, (3, 3), 1, SAME, RELU)
    return b.finish([x], [b.fully_connected(y, 10)])


@require_commands("qemu-system-arm")
def test_instruction_stream_is_qemus(tmp_path: Path) -> None:
    """Same ELF, same input: unicorn executes exactly the instructions QEMU counts (the harness's
    empty-call calibration cancels the call itself) and computes the same output bytes."""
    from tinyml_exp.export.cgen import cycle_model, generate_c, qemu

    res = generate_c(_conv_fc_model(), tmp_path / "m", "layer")
    x = np.random.default_rng(1).integers(-128, 128, size=(1, 1, 8, 8, 16), dtype=np.int8)
    measured = qemu.measure(tmp_path / "m", x, tmp_path / "qemu")
    metrics = cycle_model.cycle_metrics(tmp_path / "m", x[0], tmp_path / "cyc", res.macs, 4)
    assert abs(metrics["cycles/modelled_instructions"] - measured.instructions[0]) <= 4
    assert metrics["cycles/modelled"] > metrics["cycles/modelled_instructions"]
    assert metrics["cycles/modelled_per_mac"] == pytest.approx(metrics["cycles/modelled"] / res.macs)
    run = cycle_model.model_cycles(tmp_path / "m", x[0], tmp_path / "cyc0", 0)
    assert np.array_equal(run.output, measured.outputs[0])
    assert run.cycles < metrics["cycles/modelled"]  # wait states only add


@pytest.mark.slow
@require_commands("qemu-system-arm")
@pytest.mark.parametrize("arch,kind", [("course_cnn", "int8"), ("resnet8", "int8"), ("mlp", "float")])
def test_models_instruction_stream_and_cycles(models, arch: str, kind: str, tmp_path: Path) -> None:
    """The course CNN and ResNet-8 (int8, DSP paths) and the float MLP (FPU): QEMU's count and
    output, and at least one cycle per instruction."""
    from tinyml_exp.export.cgen import cycle_model, generate_c, qemu

    model = models[arch][kind]
    x = random_inputs(model, 1, seed=3)
    res = generate_c(model, tmp_path / "m", arch)
    measured = qemu.measure(tmp_path / "m", x, tmp_path / "qemu")
    run = cycle_model.model_cycles(tmp_path / "m", x[0], tmp_path / "cyc", flash_wait_states=4)
    assert abs(run.instructions - measured.instructions[0]) <= 4
    assert np.array_equal(run.output, measured.outputs[0])
    assert run.cycles >= run.instructions
    log.info("%s %s: %d instructions, %d modelled cycles (%.2f/MAC)", arch, kind, run.instructions,
             run.cycles, run.cycles / res.macs)  # fmt: skip


def test_snippet_instruction_mix(tmp_path: Path) -> None:
    from tinyml_exp.export.cgen import cycle_model

    run = cycle_model.run_function(_snippet_elf(tmp_path), "snippet")
    assert run.mix["load/store"] == (21, 10 * 3 + 1 + 2)  # loop loads (2 + 1, + 1 once), literal
    assert run.mix["branch"] == (11, 11)  # 10 BNE, BX; their refills are in refill_cycles
    assert sum(n for n, _ in run.mix.values()) == run.instructions


def test_nothing_is_missing_here() -> None:
    from tinyml_exp.export.cgen.cycle_model import cycle_model_missing

    assert cycle_model_missing() is None


@pytest.mark.slow
@require_commands("qemu-system-arm")
def test_ds_cnn_runs_as_on_qemu(tmp_path: Path) -> None:
    """DS-CNN (depthwise edge rows gathered by a long unrolled copy): unicorn 2.1 skipped one of its
    stores while a read hook was limited to the flash range, and the output differed from QEMU's."""
    from tests.mlperf_models import mlperf_model
    from tinyml_exp.export.cgen import cycle_model, generate_c, qemu

    model = mlperf_model("ds_cnn").tflite
    generate_c(model, tmp_path / "m", "model")
    xs = random_inputs(model, 1, seed=4)
    measured = qemu.measure(tmp_path / "m", xs, tmp_path / "qemu")
    run = cycle_model.model_cycles(tmp_path / "m", xs[0], tmp_path / "cyc", flash_wait_states=5)
    assert np.array_equal(run.output, measured.outputs[0])
    assert abs(run.instructions - measured.instructions[0]) <= 4
