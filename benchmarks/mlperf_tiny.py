"""The generated-C backend on the four MLPerf Tiny reference models (int8 PTQ): MACs, instructions
per inference and per MAC under QEMU (Cortex-M4 netduinoplus2, `-icount shift=0`, median over the
inputs), the planned activation bytes next to the TFLM arena and to the naive bound (max over
steps of inputs + output), flash, and the published Cortex-M4 figures beside them.

The models are built from the project's config (architecture=<name>, dataset=synthetic_<name>),
trained one epoch on synthetic data (instruction counts do not depend on the weights) and
converted to int8; the autoencoder trains with MSE here (tests/mlperf_models.py).
Usage: python benchmarks/mlperf_tiny.py [--inputs 5] [--models resnet8,ds_cnn,...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# Published cycles per MAC (NUCLEO-L4R5ZI, Cortex-M4 at 120 MHz, closed division: latency × clock
# ÷ MACs), from issue 14's table. Not measured here.
PUBLISHED = {  # model: (TFLM 2.3.1 + CMSIS-NN v0.5, Plumerai v1.1, X-CUBE-AI v1.2 / v1.3)
    "resnet8": ("6.8", "1.6", "1.6"),
    "ds_cnn": ("8.2", "2.2", "2.0"),
    "mobilenet_v1": ("9.6", "1.6", "1.4"),
    "fc_autoencoder": ("4.6", "1.8", "2.2–2.4"),
}
TASK = {"resnet8": "IC", "ds_cnn": "KWS", "mobilenet_v1": "VWW", "fc_autoencoder": "AD"}
SOURCE = "published, source: MLPerf Tiny v0.5/v1.1/v1.2/v1.3 results (cycles/MAC)"


def run_on_qemu(tflite: bytes, work: Path, n_inputs: int) -> tuple[object, object]:
    """(generate_c result, QEMU run) on random int8 inputs; raises unless the outputs equal
    TFLite Micro's, value for value."""
    import numpy as np
    from tflite_micro.python.tflite_micro import runtime

    from tinyml_exp.export.cgen import generate_c
    from tinyml_exp.export.cgen.qemu import measure
    from tinyml_exp.tflite_graph import read_graph

    cgen = generate_c(tflite, work / "model", "measured")
    shape = read_graph(tflite).input_tensors[0].shape
    x = np.random.default_rng(0).integers(-128, 128, size=(n_inputs, *shape), dtype=np.int8)
    run = measure(work / "model", x, work / "build")
    tm = runtime.Interpreter.from_bytes(tflite)
    for xi, got in zip(x, run.outputs, strict=True):
        tm.set_input(xi, 0)
        tm.invoke()
        if not np.array_equal(tm.get_output(0).reshape(-1).view(np.uint8), got.reshape(-1)):
            raise SystemExit(f"{work.name}: the Cortex-M4 output differs from TFLite Micro's")
    return cgen, run


def measure(name: str, work: Path, n_inputs: int) -> dict:
    import numpy as np

    from tests.mlperf_models import mlperf_model
    from tinyml_exp.export.cgen import build_program
    from tinyml_exp.hardware.build import build_firmware
    from tinyml_exp.profile.memory import measure_arena

    model = mlperf_model(name)
    cgen, run = run_on_qemu(model.tflite, work / name, n_inputs)
    program, graph, _ = build_program(model.tflite)
    naive = program.naive_bytes()
    program.plan_buffers(graph=graph, overlap=False)
    image = build_firmware("qemu_netduinoplus2", cgen.model_c.parent, work / name / "fw_build", jobs=2)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=5, help="random inputs per model under QEMU (median)")
    parser.add_argument("--models", default=",".join(PUBLISHED))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(name, Path(tmp), args.inputs) for name in args.models.split(",")]
    print(
        "MLPerf Tiny reference models, int8 PTQ, generated C, QEMU netduinoplus2 (Cortex-M4) -icount shift=0,"
        f" median of {args.inputs} random inputs, outputs equal to TFLite Micro's on every one"
    )
    print(table(rows))
    print(
        f"\nThe last three columns are {SOURCE} on NUCLEO-L4R5ZI (Cortex-M4, 120 MHz), never measured here.\n"
        "QEMU counts instructions, not cycles: on a board every load, taken branch and multi-cycle\n"
        "instruction costs more than one cycle (and flash wait states add to that), so a board's cycle\n"
        "count is higher than the instruction count; compare instructions/MAC with cycles/MAC only as a floor.\n"
        "activation B: the planned static buffer (kernel scratch included, stack not); in brackets the\n"
        "plan from lifetimes alone, without in-place outputs. TFLM arena: the arena TFLM reports needing."
    )


if __name__ == "__main__":
    main()
