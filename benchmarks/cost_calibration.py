"""Calibrate the generated C's cost model (tinyml_exp/profile/cgen_costs.py) from per-layer
instruction counts under QEMU, and check the estimate against each model's measured count.

Models: the four MLPerf Tiny reference models (int8 PTQ, tests/mlperf_models.py: one epoch on
synthetic data; counts do not depend on the weights) and the course CNN (int8 PTQ, random
weights). For each: the generated C is built twice as the APP=bench firmware for
qemu_netduinoplus2 — as is (its INFER count is what the benchmark logs as `cycles/median`) and
with -DTME_PROFILE_LAYERS (the LAYERS reply: instructions per kernel call) — and run under
`qemu-system-arm -icount shift=0` (counts are instructions, deterministic).

Writes tests/data/cgen_cost_counts.json (the counts with each model's cost-model work items, so the
unit test checks the fit without QEMU) and tinyml_exp/profile/cgen_costs.json (the coefficients
the estimate reads), then prints estimate vs measured per model and per kernel call and exits 1
if any model is outside ±10 %.

Usage:
  python benchmarks/cost_calibration.py               # measure, fit, write both files, check
  python benchmarks/cost_calibration.py --refit       # fit from the recorded counts (no QEMU)
  python benchmarks/cost_calibration.py --check-only  # measure and check the current coefficients
  [--models resnet8,ds_cnn,mobilenet_v1,fc_autoencoder,course_cnn] [--tolerance 10]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODELS = ("resnet8", "ds_cnn", "mobilenet_v1", "fc_autoencoder", "course_cnn")
COUNTS_PATH = REPO / "tests" / "data" / "cgen_cost_counts.json"
BOARD = "qemu_netduinoplus2"
# generate_c's two modes: bit-exact with TFLite Micro (benchmarks/mlperf_tiny.py) or with the TFLite
# interpreter (the pipeline's firmware.reference default); FULLY_CONNECTED requantizes differently.
REFERENCES = ("tflm", "tflite")


@functools.cache
def model_tflite(name: str) -> bytes:
    if name == "course_cnn":
        from tests.profile_models import course_cnn_tflite

        return course_cnn_tflite()["int8"]
    from tests.mlperf_models import mlperf_model

    return mlperf_model(name).tflite


def _counts_on_qemu(elf: Path, data: bytes, layers: int | None) -> tuple[int, list[int]]:
    """(INFER count, LAYERS counts when `layers` is given) of one input; twice, to see they repeat."""
    from tinyml_exp.hardware.client import DeviceClient
    from tinyml_exp.hardware.qemu import run_qemu

    with run_qemu(elf) as qemu, DeviceClient(qemu.open_serial(), timeout_s=600.0) as device:
        device.connect(timeout_s=60.0)
        runs = []
        for _ in range(2):
            whole = device.infer(data).count
            runs.append((whole, device.layers(layers) if layers is not None else []))
    if runs[0] != runs[1]:
        raise SystemExit(f"{elf}: two inferences of the same input counted differently: {runs}")
    return runs[0]


def measure(name: str, reference: str, work: Path) -> dict:
    """One model's record with the C matching `reference` (tflm | tflite: the FC requantization
    differs): its work items, its kernel calls and their counts, the whole count."""
    import numpy as np

    from tests.helpers import compose_config
    from tinyml_exp.config import to_object
    from tinyml_exp.export.cgen import generate_c
    from tinyml_exp.hardware.build import build_firmware
    from tinyml_exp.hardware.layers import PROFILE_DEFINE
    from tinyml_exp.profile import profile_model
    from tinyml_exp.profile.profiler import work_items
    from tinyml_exp.tflite_graph import read_graph

    t0 = time.perf_counter()
    tflite = model_tflite(name)
    target = to_object(compose_config([f"target={BOARD}"]).target)
    profile = profile_model(tflite, target, arena=False, reference=reference)
    items = work_items(profile.layers, profile.flash.cgen)
    work = work / f"{name}_{reference}"
    cgen = generate_c(tflite, work / "model", name, reference=reference)
    assert cgen.step_ops == profile.flash.cgen.step_ops, "the profile's generated C differs from this one"
    size = read_graph(tflite).input_tensors[0].nbytes
    data = np.random.default_rng(0).integers(0, 256, size=size, dtype=np.uint8).tobytes()
    plain = build_firmware(BOARD, cgen.model_c.parent, work / "fw", jobs=2)
    timed = build_firmware(BOARD, cgen.model_c.parent, work / "fw_layers", jobs=2, defines=[PROFILE_DEFINE])
    whole, _ = _counts_on_qemu(plain.elf, data, None)
    timed_whole, counts = _counts_on_qemu(timed.elf, data, len(cgen.step_ops))
    print(f"{name} (reference={reference}): measured in {time.perf_counter() - t0:.0f} s", flush=True)
    return {
        "name": name,
        "reference": reference,
        "macs": cgen.macs,
        "measured": whole,
        "profiling_build_whole": timed_whole,
        "items": [dataclasses.asdict(item) for item in items],
        "steps": [
            {"kernel": kernel.split(" <- ")[0], "label": label, "ops": list(ops), "count": count}
            for kernel, label, ops, count in zip(
                cgen.kernels, cgen.step_labels, cgen.step_ops, counts, strict=True
            )
        ],
    }


def load_records(path: Path = COUNTS_PATH) -> dict:
    return json.loads(path.read_text())


def _key(record: dict) -> str:
    return f"{record['name']} ({record['reference']})"


def _pct(value: float, reference: float) -> float:
    return 100.0 * (value - reference) / reference


def report(records: dict, tolerance_pct: float) -> bool:
    """Print estimate vs measured per model (and per call); True when every model is within ±tolerance."""
    from tinyml_exp.profile.cgen_records import recorded_estimate

    ok = True
    print(
        f"\ncgen estimate vs measured, QEMU {BOARD} -icount shift=0 instructions per inference "
        f"(APP=bench, one input); tolerance ±{tolerance_pct:g} %"
    )
    print("| model | MACs | measured | prior estimate | prior error | fitted estimate | fitted error |")
    print("|---|---|---|---|---|---|---|")
    for record in records["models"]:
        measured = record["measured"]
        prior, _ = recorded_estimate(record, prior=True)
        fitted, _ = recorded_estimate(record)
        error = _pct(fitted, measured)
        ok &= abs(error) <= tolerance_pct
        print(
            f"| {_key(record)} | {record['macs']:,} | {measured:,} | {prior:,.0f} | {_pct(prior, measured):+.1f} % "
            f"| {fitted:,.0f} | {error:+.1f} %{'' if abs(error) <= tolerance_pct else ' OUTSIDE'} |"
        )
    for record in records["models"]:
        _, per_step = recorded_estimate(record)
        print(f"\n{_key(record)} per kernel call (measured, fitted estimate, error):")
        for step, value in zip(record["steps"], per_step, strict=True):
            print(
                f"  {step['label']:28} {step['kernel']:26} {step['count']:>11,} {value:>13,.0f} "
                f"{_pct(value, step['count']):+7.1f} %"
            )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--refit", action="store_true", help="fit from the recorded counts, no QEMU")
    mode.add_argument("--check-only", action="store_true", help="measure and check, keep the coefficients")
    parser.add_argument(
        "--models", default=",".join(MODELS), help="(the recorded counts then hold only these)"
    )
    parser.add_argument("--tolerance", type=float, default=10.0, help="per-model limit, percent")
    args = parser.parse_args()

    from tinyml_exp.profile import cgen_costs
    from tinyml_exp.profile.cgen_records import fit_records

    if args.refit:
        records = load_records()
    else:
        with tempfile.TemporaryDirectory(prefix="cost-calibration-") as tmp:
            models = [
                measure(name, reference, Path(tmp))
                for name in args.models.split(",")
                for reference in REFERENCES
            ]
        records = {
            "source": f"measured {time.strftime('%Y-%m-%d', time.gmtime())}, benchmarks/cost_calibration.py",
            "models": models,
        }
    if not args.check_only:
        COUNTS_PATH.parent.mkdir(parents=True, exist_ok=True)
        if not args.refit:
            COUNTS_PATH.write_text(json.dumps(records, indent=1) + "\n")
        path = cgen_costs.write_costs(fit_records(records))
        print(f"wrote {path.relative_to(REPO)} and {COUNTS_PATH.relative_to(REPO)}")
    if not report(records, args.tolerance):
        raise SystemExit(
            f"FAILED: a model's cgen estimate is outside ±{args.tolerance:g} % of its measured count"
        )


if __name__ == "__main__":
    main()
