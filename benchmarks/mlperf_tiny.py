"""The generated-C backend on the four MLPerf Tiny reference models (int8 PTQ): MACs, instructions
per inference and per MAC under QEMU (Cortex-M4 netduinoplus2, `-icount shift=0`, median over the
inputs), the planned activation bytes next to the TFLM arena and to the naive bound (max over
steps of inputs + output), flash, and the published Cortex-M4 figures beside them.

The models are built from the project's config (architecture=<name>, dataset=synthetic_<name>),
trained one epoch on synthetic data (instruction counts do not depend on the weights) and
converted to int8; the autoencoder trains with MSE here (tests/mlperf_models.py).
`--device-inputs N` also runs N random int8 inputs per model on the serial benchmark firmware
(APP=bench) on QEMU and checks every output against TFLite Micro's, byte for byte: the firmware
makes the inputs itself from a seed (INFER_RANDOM, firmware/PROTOCOL.md §4.7) and this script
makes the same ones with the same PRNG, so only the small outputs cross the slow emulated UART
(the embedded-input image of the main figures holds only a few inputs in flash).
`--cycle-model` adds the Cortex-M4 cycle model's cycles per MAC (export/cgen/cycle_model.py) beside
the published best.
Usage: python benchmarks/mlperf_tiny.py [--inputs 5] [--device-inputs 1000] [--cycle-model]
       [--models resnet8,ds_cnn,...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tinyml_exp.report.mlperf import PUBLISHED, PUBLISHED_SOURCE, TASK  # noqa: E402 (after the path)


def qemu_inputs(tflite: bytes, n_inputs: int) -> object:
    """The random int8 inputs of the main figures (seed 0), one row per input."""
    import numpy as np

    from tinyml_exp.tflite_graph import read_graph

    shape = read_graph(tflite).input_tensors[0].shape
    return np.random.default_rng(0).integers(-128, 128, size=(n_inputs, *shape), dtype=np.int8)


def run_on_qemu(tflite: bytes, work: Path, n_inputs: int) -> tuple[object, object]:
    """(generate_c result, QEMU run) on random int8 inputs; raises unless the outputs equal
    TFLite Micro's, value for value."""
    from tinyml_exp.export.cgen import generate_c
    from tinyml_exp.export.cgen.qemu import measure

    cgen = generate_c(tflite, work / "model", "measured")
    x = qemu_inputs(tflite, n_inputs)
    run = measure(work / "model", x, work / "build")
    for expected, got in zip(tflm_outputs(tflite, x), run.outputs, strict=True):
        if expected != got.reshape(-1).tobytes():
            raise SystemExit(f"{work.name}: the Cortex-M4 output differs from TFLite Micro's")
    return cgen, run


def tflm_outputs(tflite: bytes, inputs: object) -> list[bytes]:
    """TFLite Micro's raw output bytes for each input row (the generator's default reference)."""
    import numpy as np
    from tflite_micro.python.tflite_micro import runtime

    tm = runtime.Interpreter.from_bytes(tflite)
    outputs = []
    for xi in inputs:
        tm.set_input(xi, 0)
        tm.invoke()
        outputs.append(np.ascontiguousarray(tm.get_output(0)).reshape(-1).view(np.uint8).tobytes())
    return outputs


def device_check(tflite: bytes, elf: Path, n_inputs: int, seed: int = 1, batch: int = 50) -> dict:
    """Runs `n_inputs` random int8 inputs on the APP=bench firmware `elf` under QEMU, made on the
    device from `seed` (INFER_RANDOM, firmware/PROTOCOL.md §4.7) and here with the same PRNG;
    raises unless every output equals TFLite Micro's, byte for byte. Returns the count checked,
    the wall time and the device's instruction counts."""
    import time

    import numpy as np

    from tinyml_exp.hardware.client import DeviceClient
    from tinyml_exp.hardware.protocol import max_random_count, random_inputs
    from tinyml_exp.hardware.qemu import run_qemu
    from tinyml_exp.tflite_graph import read_graph

    tensor = read_graph(tflite).input_tensors[0]
    x = (
        random_inputs(seed, 0, n_inputs, int(np.prod(tensor.shape)))
        .view(np.int8)
        .reshape(n_inputs, *tensor.shape)
    )
    expected = tflm_outputs(tflite, x)
    start = time.monotonic()
    got = []
    with run_qemu(elf) as qemu, DeviceClient(qemu.open_serial(), timeout_s=600.0) as device:
        info = device.connect(timeout_s=60.0)
        if info.input.dtype_name != "int8":
            raise SystemExit(
                f"{elf}: INFER_RANDOM makes int8 inputs, the model takes {info.input.dtype_name}"
            )
        step = min(batch, max_random_count(info.output.size_bytes))
        for first in range(0, n_inputs, step):
            got += device.infer_random(seed, first, min(step, n_inputs - first))
    seconds = time.monotonic() - start
    for i, result in enumerate(got):
        if result.output != expected[i]:
            raise SystemExit(f"{elf}: input {i}: the device's output differs from TFLite Micro's")
    counts = [r.count for r in got]
    return {"checked": len(got), "seconds": seconds, "min": min(counts), "max": max(counts)}


# The published figures' board (conf/target/nucleo_l4r5zi.yaml: RM0432, 100 < HCLK <= 120 MHz).
PUBLISHED_WAIT_STATES = 5


def modelled_cycles(tflite: bytes, work: Path, expected_output: object) -> object:
    """The Cortex-M4 cycle model (export/cgen/cycle_model.py) on the first input of run_on_qemu,
    flash wait states of the published board; raises unless its output equals QEMU's."""
    import numpy as np

    from tinyml_exp.export.cgen.cycle_model import cycle_model_missing, model_cycles

    if missing := cycle_model_missing():
        raise SystemExit(f"--cycle-model: {missing}")
    x = qemu_inputs(tflite, 1)
    run = model_cycles(work / "model", x[0], work / "cycles", PUBLISHED_WAIT_STATES)
    if run.output.tobytes() != np.asarray(expected_output).reshape(-1).view(np.uint8).tobytes():
        raise SystemExit(f"{work.name}: the cycle model's output differs from QEMU's")
    return run


def measure(name: str, work: Path, n_inputs: int, device_inputs: int = 0, cycle_model: bool = False) -> dict:
    import numpy as np

    from tests.mlperf_models import mlperf_model
    from tinyml_exp.export.cgen import build_program
    from tinyml_exp.hardware.build import build_firmware
    from tinyml_exp.profile.memory import measure_arena

    model = mlperf_model(name)
    cgen, run = run_on_qemu(model.tflite, work / name, n_inputs)
    cycles = modelled_cycles(model.tflite, work / name, run.outputs[0]) if cycle_model else None
    program, graph, _ = build_program(model.tflite)
    naive = program.naive_bytes()
    program.plan_buffers(graph=graph, overlap=False)
    image = build_firmware("qemu_netduinoplus2", cgen.model_c.parent, work / name / "fw_build", jobs=2)
    device = device_check(model.tflite, image.elf, device_inputs) if device_inputs else None
    instructions = int(np.median(run.instructions))
    return {
        "name": name,
        "macs": cgen.macs,
        "instructions": instructions,
        "per_mac": instructions / cgen.macs,
        "activations": cgen.activation_bytes,
        "lifetimes_only": program.plan.total_bytes,
        "naive": naive,
        "tflm": measure_arena(model.tflite, probe=False).total_bytes,
        "model_flash": run.model_flash_bytes,
        "firmware_flash": image.flash_bytes,
        "device": device,
        "cycles": cycles,
    }


def table(rows: list[dict]) -> str:
    head = (
        "| model | MACs | instructions / inference | instructions / MAC | activation B (lifetimes only) "
        "| naive max(in + out) B | TFLM arena B | C / TFLM | model flash B | firmware flash B "
        "| TFLM+CMSIS-NN v0.5 | Plumerai v1.1 | X-CUBE-AI v1.2/v1.3 |"
    )
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        pub = PUBLISHED[r["name"]]
        lines.append(
            f"| {TASK[r['name']]} {r['name']} | {r['macs']:,} | {r['instructions']:,} | {r['per_mac']:.2f} "
            f"| {r['activations']:,} ({r['lifetimes_only']:,}) | {r['naive']:,} | {r['tflm']:,} "
            f"| {r['activations'] / r['tflm']:.2f} | {r['model_flash']:,} | {r['firmware_flash']:,} "
            f"| {pub[0]} | {pub[1]} | {pub[2]} |"
        )
    return "\n".join(lines)


def cycle_table(rows: list[dict]) -> str:
    """Modelled cycles per MAC (one input) beside the published cycles per MAC."""
    lines = [
        f"| model | instructions / MAC (QEMU) | modelled cycles / MAC ({PUBLISHED_WAIT_STATES} wait states) "
        "| modelled cycles / instruction | taken branches / MAC | published best cycles / MAC |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = r["cycles"]
        best = min(PUBLISHED[r["name"]], key=lambda v: float(v.split("–")[0]))
        lines.append(
            f"| {TASK[r['name']]} {r['name']} | {r['per_mac']:.2f} | {c.cycles / r['macs']:.2f} "
            f"| {c.cycles_per_instruction:.2f} | {c.taken_branches / r['macs']:.3f} | {best} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=5, help="random inputs per model under QEMU (median)")
    parser.add_argument(
        "--device-inputs",
        type=int,
        default=0,
        help="also run this many random inputs per model, made on the device, on the serial firmware on QEMU, bit-exact",
    )
    parser.add_argument(
        "--cycle-model",
        action="store_true",
        help="also model the Cortex-M4 cycles of one input per model (unicorn; minutes per model)",
    )
    parser.add_argument("--models", default=",".join(PUBLISHED))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [
            measure(name, Path(tmp), args.inputs, args.device_inputs, args.cycle_model)
            for name in args.models.split(",")
        ]
    print(
        "MLPerf Tiny reference models, int8 PTQ, generated C, QEMU netduinoplus2 (Cortex-M4) -icount shift=0,"
        f" median of {args.inputs} random inputs, outputs equal to TFLite Micro's on every one"
    )
    print(table(rows))
    if args.cycle_model:
        print(
            "\nModelled Cortex-M4 cycles (export/cgen/cycle_model.py: TRM timings, taken-branch refills, "
            f"ART cache with {PUBLISHED_WAIT_STATES} flash wait states as on the NUCLEO-L4R5ZI at 120 MHz), "
            "the first input; published best: the lowest of the last three columns above"
        )
        print(cycle_table(rows))
    for r in rows if args.device_inputs else ():
        d = r["device"]
        print(
            f"{r['name']}: {d['checked']:,} random int8 inputs made on the device (INFER_RANDOM, seed 1) by the "
            f"serial firmware (APP=bench) on QEMU, every output equal to TFLite Micro's, byte for byte; "
            f"{d['seconds']:.0f} s wall ({d['checked'] / d['seconds']:.1f} inputs/s), "
            f"{d['min']:,}–{d['max']:,} instructions per inference"
        )
    print(
        f"\nThe last three columns are {PUBLISHED_SOURCE}.\n"
        "QEMU counts instructions, not cycles: on a board every load, taken branch and multi-cycle\n"
        "instruction costs more than one cycle (and flash wait states add to that), so a board's cycle\n"
        "count is higher than the instruction count; compare instructions/MAC with cycles/MAC only as a floor.\n"
        "activation B: the planned static buffer (kernel scratch included, stack not); in brackets the\n"
        "plan from lifetimes alone, without in-place outputs. TFLM arena: the arena TFLM reports needing."
    )


if __name__ == "__main__":
    main()
