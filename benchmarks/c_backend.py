"""The generated-C backend on the course CNN (int8 PTQ): instructions per inference and per MAC
under QEMU (Cortex-M4, `-icount shift=0`), the planned activation RAM next to the TFLM arena for
the same model, and the flash / RAM of the full firmware image for both board ports.

Targets from the issue: ≤ 2.0 instructions / MAC (≤ 186,576 per inference), activations
≤ 3,120 B (a quarter of TFLM's arena), firmware flash (text + data) ≤ 32 kB.
Usage: python benchmarks/c_backend.py [--train-limit 6000] [--reference tflm|tflite]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def course_cnn_int8(train_limit: int) -> bytes:
    """The course CNN from the project's own config, briefly trained on Fashion-MNIST (instruction
    counts do not depend on the weights; a trained model keeps the activations realistic)."""
    from tests.helpers import compose_config
    from tinyml_exp.data import load_dataset
    from tinyml_exp.export.tflite import TFLiteRecipe, convert
    from tinyml_exp.models import build_model
    from tinyml_exp.models.train import compile_model, fit, set_global_seed

    cfg = compose_config([f"dataset.train_limit={train_limit}", "dataset.test_limit=100"])
    data = load_dataset(cfg.dataset, cfg.seed)
    set_global_seed(cfg.seed)
    model = build_model(cfg.architecture, data.input_shape, data.num_classes)
    compile_model(model, "adam", 1e-3, from_logits=True)
    fit(model, data, epochs=1, batch_size=32, verbose=0)
    return convert(model, TFLiteRecipe("int8"), data.x_train[:100])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-limit", type=int, default=6000)
    parser.add_argument("--reference", default="tflm", choices=("tflm", "tflite"))
    args = parser.parse_args()

    from tinyml_exp.export.cgen import generate_c
    from tinyml_exp.export.cgen.qemu import measure_model
    from tinyml_exp.hardware.build import build_firmware
    from tinyml_exp.profile.memory import measure_arena

    tflite = course_cnn_int8(args.train_limit)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        m = measure_model(tflite, work / "measure", reference=args.reference)
        arena = measure_arena(tflite, probe=False)
        generate_c(tflite, work / "model", "seed_cnn_ptq_int8", reference=args.reference)
        images = {
            b: build_firmware(b, work / "model", work / f"build_{b}")
            for b in ("qemu_netduinoplus2", "b_l475e_iot01a")
        }

    print(
        f"course CNN int8 PTQ, generated C (reference={args.reference}), {images['qemu_netduinoplus2'].toolchain}"
    )
    print(f"  MACs                          {m.macs:>10,}")
    print(f"  instructions / inference      {m.instructions:>10,}   (goal ≤ 186,576)")
    print(f"  instructions / MAC            {m.instructions_per_mac:>10.2f}   (goal ≤ 2.0)")
    print(f"  ram/c_bytes (activations)     {m.activation_bytes:>10,} B (goal ≤ 3,120 B)")
    print(
        f"  TFLM arena (reported)         {arena.total_bytes:>10,} B   ratio C / TFLM = {m.activation_bytes / arena.total_bytes:.3f}"
    )
    print(f"  const data (weights, tables)  {m.weights_bytes:>10,} B")
    for board, image in images.items():
        print(
            f"  firmware {board:<20} flash {image.flash_bytes:>7,} B (text {image.text_bytes:,} + data {image.data_bytes:,}),"
            f" RAM {image.ram_bytes:,} B (data + bss; goal flash ≤ 32,768 B)"
        )
    at_80mhz = m.instructions / 80e6 * 1e3
    print(
        f"  at 80 MHz, 1 instruction ≈ 1 cycle: ≈ {at_80mhz:.2f} ms / inference (course, TFLM reference kernels: 14 M cycles, 175 ms)"
    )


if __name__ == "__main__":
    main()
