"""Modelled Cortex-M4 cycles (tinyml_exp/export/cgen/cycle_model.py) of generated C next to the
QEMU instruction count of the same ELF, for one or more int8 `.tflite` files.

Usage: python benchmarks/cycle_model.py MODEL.tflite [...] [--wait-states 4] [--seed 0]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def one(tflite: Path, work: Path, wait_states: int, seed: int) -> str:
    import numpy as np

    from tinyml_exp.export.cgen import cycle_model, generate_c, qemu
    from tinyml_exp.tflite_graph import read_graph

    model = tflite.read_bytes()
    res = generate_c(model, work / "model", tflite.stem)
    t = read_graph(model).input_tensors[0]
    x = np.random.default_rng(seed).integers(-128, 128, size=(1, *t.shape), dtype=np.int8)
    q = qemu.measure(work / "model", x, work / "qemu")
    t0 = time.perf_counter()
    c = cycle_model.model_cycles(work / "model", x[0], work / "cycles", wait_states)
    secs = time.perf_counter() - t0
    same = bool((q.outputs[0] == c.output).all())
    mix = ", ".join(
        f"{k} {n / c.instructions:.0%} of instr / {cy / c.cycles:.0%} of cycles"
        for k, (n, cy) in c.mix.items()
    )
    print(f"{tflite.stem} mix: {mix}; taken-branch refills {c.refill_cycles / c.cycles:.0%}", flush=True)
    return (
        f"| {tflite.stem} | {res.macs:,} | {q.instructions[0]:,} | {c.instructions:,} | {same} | "
        f"{q.instructions[0] / res.macs:.2f} | {c.cycles:,} | {c.cycles / res.macs:.2f} | "
        f"{c.cycles_per_instruction:.2f} | {c.taken_branches:,} | {c.fetch_wait_cycles:,} | "
        f"{c.data_wait_cycles:,} | {secs:.0f} s |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tflite", nargs="+", type=Path)
    parser.add_argument("--wait-states", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = [
        f"flash wait states: {args.wait_states}",
        "| model | MACs | QEMU instr | modelled instr | same output | instr/MAC | cycles | cycles/MAC "
        "| cycles/instr | taken branches | fetch wait | data wait | model time |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for i, path in enumerate(args.tflite):
            rows.append(one(path, Path(tmp) / str(i), args.wait_states, args.seed))
            print(rows[-1], flush=True)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
