"""The course CNN's profile figures (float32 and int8) against the course's measurements.

Prints MACs, the layer formula, the TFLM arena (reported and smallest that runs, with the probe's
time), flash estimates, and cycle / latency estimates per backend on the chosen targets, next to
the course's 14 M cycles (TFLM reference kernels on the B-L475E-IOT01A at 80 MHz).

Usage: python benchmarks/profile_figures.py [FLOAT.tflite INT8.tflite] [--targets a,b,...] [--qemu]
`--qemu` also builds the generated C into the QEMU firmware and compares the cgen estimates with
the measured instruction count and the model object's flash (needs arm-none-eabi-gcc, qemu-system-arm).
Without paths, the course CNN is built with random weights and converted (figures other than
accuracy do not depend on training; the .tflite size may differ by a few bytes).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

COURSE_CYCLES = 14_000_000  # the course document's rounded figure (TFLM reference kernels, B-L475E-IOT01A)


def build_course_cnn() -> dict[str, bytes]:
    from tests.profile_models import course_cnn_tflite

    return course_cnn_tflite(representative_samples=100)


def measure_qemu(tflite: bytes) -> tuple[int, int]:
    """(instructions of one inference, flash bytes of model.o) for the generated C under QEMU."""
    import subprocess
    import tempfile

    from tinyml_exp.export.cgen import generate_c
    from tinyml_exp.hardware.build import build_firmware
    from tinyml_exp.hardware.client import DeviceClient
    from tinyml_exp.hardware.qemu import run_qemu

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        generated = generate_c(tflite, work / "model", "course_cnn")
        firmware = build_firmware("qemu_netduinoplus2", work / "model", work / "build")
        size = subprocess.run(
            ["arm-none-eabi-size", "-B", str(next((work / "build").rglob("model.o")))],
            capture_output=True, text=True, check=True,
        ).stdout.splitlines()[1].split()  # fmt: skip
        with run_qemu(firmware.elf) as qemu, DeviceClient(qemu.open_serial(), timeout_s=30) as device:
            device.connect(timeout_s=30)
            count = device.infer(bytes(generated.input_bytes)).count
    return count, int(size[0]) + int(size[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, help="float32 and int8 .tflite of the course CNN")
    parser.add_argument("--targets", default="b_l475e_iot01a,qemu_netduinoplus2,nucleo_l4r5zi,pico_rp2040")
    parser.add_argument("--qemu", action="store_true", help="measure the generated C on QEMU as well")
    args = parser.parse_args()

    from tests.helpers import compose_config
    from tinyml_exp.config import to_object
    from tinyml_exp.profile import BACKENDS, profile_model

    if args.models:
        models = {"float32": args.models[0].read_bytes(), "int8": args.models[1].read_bytes()}
        source = ", ".join(str(p) for p in args.models)
    else:
        models, source = build_course_cnn(), "course CNN rebuilt with random weights"
    print(f"Course CNN profile ({source})\n")
    for dtype, tflite in models.items():
        board = to_object(compose_config(["target=b_l475e_iot01a"]).target)
        result = profile_model(tflite, board, backend="tflm_reference")
        m, arena = result.metrics, result.arena
        print(f"== {dtype}: {len(tflite):,} B .tflite ==")
        print(f"MACs                    {m['macs/total']:>12,.0f}")
        print(
            f"formula maxₗ(in+out+p)  {m['ram/formula_bytes']:>12,.0f} B  ({result.tags['ram.formula_layer']})"
        )
        print(
            f"TFLM arena reported     {m['ram/tflm_arena_bytes']:>12,.0f} B  (head {arena.head_bytes:,} + tail {arena.tail_bytes:,})"
        )
        print(
            f"TFLM arena minimum      {m['ram/tflm_arena_min_bytes']:>12,.0f} B  (probe {arena.probe_seconds:.2f} s, {arena.attempts} tries)"
        )
        print(
            f"host TFLM invoke        {m['latency/host_tflm_measured_ms']:>12.3f} ms (measured, this machine)"
        )
        for backend in BACKENDS:
            print(f"flash {backend:17} {m[f'flash/estimate_{backend}_bytes']:>12,.0f} B")
        print(
            f"\n{'target':20} {'backend':15} {'prior cycles':>13} {'estimate':>13} {'ms':>9} {'vs course 14 M':>15}"
        )
        for name in args.targets.split(","):
            board = to_object(compose_config([f"target={name}"]).target)
            r = profile_model(tflite, board, backend="tflm_reference", arena=False)
            unit = " instr" if board.count_unit == "instructions" else ""
            for backend in BACKENDS:
                estimate = r.estimates[backend]
                if estimate.total is None:
                    continue
                versus = ""
                if name == "b_l475e_iot01a" and backend == "tflm_reference":
                    versus = f"{100 * (estimate.prior_total - COURSE_CYCLES) / COURSE_CYCLES:+.1f} % (prior)"
                print(
                    f"{name:20} {backend:15} {estimate.prior_total:>13,.0f} {estimate.total:>13,.0f}{unit} "
                    f"{r.metrics[f'latency/estimate_{backend}_ms']:>9.2f} {versus:>15}"
                )
        if args.qemu:
            qemu = to_object(compose_config(["target=qemu_netduinoplus2"]).target)
            r = profile_model(tflite, qemu, backend="cgen", arena=False, calibrate=False)
            count, flash = measure_qemu(tflite)
            estimate, flash_estimate = r.metrics["cycles/estimate"], r.metrics["flash/estimate_bytes"]
            print(
                f"\nQEMU cgen: {count:,} instructions measured, {estimate:,.0f} estimated "
                f"({100 * (estimate - count) / count:+.1f} %); model.o flash {flash:,} B, "
                f"{flash_estimate:,.0f} B estimated ({100 * (flash_estimate - flash) / flash:+.1f} %)"
            )
        print()


if __name__ == "__main__":
    main()
