"""The MLPerf Tiny table of a report: the runs of the four reference models, measured figures from
their MLflow runs beside the published Cortex-M4 results (labelled published, with the source).

Written as `mlperf.md` (and `.csv`) when the report has a run of one of `MLPERF_MODELS`
(`python -m tinyml_exp -m experiment=mlperf_tiny ...`); `benchmarks/mlperf_tiny.py` prints the
same published columns.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from tinyml_exp.report.table import Run, to_markdown

# Published cycles per MAC, MLPerf Tiny closed division on NUCLEO-L4R5ZI (Cortex-M4, 120 MHz):
# latency × clock ÷ MACs, as issue 14 lists them. Not measured by this project.
PUBLISHED_STACKS = ("TFLM+CMSIS-NN v0.5", "Plumerai v1.1", "X-CUBE-AI v1.2/v1.3")
PUBLISHED = {
    "resnet8": ("6.8", "1.6", "1.6"),
    "ds_cnn": ("8.2", "2.2", "2.0"),
    "mobilenet_v1": ("9.6", "1.6", "1.4"),
    "fc_autoencoder": ("4.6", "1.8", "2.2–2.4"),
}
PUBLISHED_SOURCE = (
    "published, source: MLPerf Tiny inference results v0.5 / v1.1 / v1.2 / v1.3 (closed division, "
    "NUCLEO-L4R5ZI Cortex-M4 at 120 MHz), cycles per MAC = latency × clock ÷ MACs; never measured here"
)
MLPERF_MODELS = tuple(PUBLISHED)
TASK = {"resnet8": "IC", "ds_cnn": "KWS", "mobilenet_v1": "VWW", "fc_autoencoder": "AD"}


def _int(x: float | None) -> str:
    return "" if x is None else f"{round(x):,}"


def _ratio(a: float | None, b: float | None, digits: int = 2) -> str:
    return "" if a is None or not b else f"{a / b:.{digits}f}"


def _exact(run: Run) -> str:
    exact, samples = run.metric("agreement/device_vs_tflite_exact"), run.metric("benchmark/samples")
    if exact is None:
        return ""
    return f"{'yes' if exact == 1.0 else 'NO'} ({exact:.0%} of {_int(samples)})"


def rows(runs: Sequence[Run]) -> tuple[list[str], list[list[str]]]:
    """One row per run of an MLPerf Tiny model (latest run last)."""
    header = [
        "model",
        "status",
        "MACs",
        "count / inference",
        "count / MAC",
        "modelled cycles / MAC",
        "C activations B",
        "TFLM arena B",
        "C / TFLM",
        "flash B",
        "bit-exact on device",
        *(f"{stack} cycles/MAC (published)" for stack in PUBLISHED_STACKS),
    ]
    table = []
    for run in runs:
        name = run.tags.get("architecture", "")
        if name not in PUBLISHED:
            continue
        count, macs = run.metric("cycles/median"), run.metric("macs/total")
        # QEMU counts instructions; a board's counter counts cycles
        unit = "instr" if run.tags.get("cycles_unit") == "instructions" else "cycles"
        activations, arena = run.metric("ram/cgen_activation_bytes"), run.metric("ram/tflm_arena_bytes")
        table.append(
            [
                f"{TASK[name]} {name}",
                run.status,
                _int(macs),
                "" if count is None else f"{_int(count)} {unit}",
                _ratio(count, macs),
                _ratio(run.metric("cycles/modelled"), macs),
                _int(activations),
                _int(arena),
                _ratio(activations, arena),
                _int(run.metric("flash/firmware_bytes")),
                _exact(run),
                *PUBLISHED[name],
            ]
        )
    return header, table


NOTE = (
    "count: `cycles/median` of the run's device benchmark: instructions under QEMU (`-icount "
    "shift=0`), cycles on a board. QEMU counts instructions, not cycles: on a Cortex-M4 loads, "
    "taken branches and multi-cycle instructions cost more than one cycle and flash wait states add "
    "to that, so a board's count is higher (`cycles/modelled`, the Cortex-M4 cycle model, when "
    "`benchmark.cycle_model=true`). C activations: the generated C's planned buffer (stack not "
    "included); TFLM arena: what the TFLM interpreter reports needing for the same `.tflite`. "
    "flash: the whole firmware image. Published columns: " + PUBLISHED_SOURCE + "."
)


def write_mlperf_table(runs: Sequence[Run], out_dir: Path) -> list[Path]:
    """`mlperf.md` / `mlperf.csv` when `runs` hold an MLPerf Tiny model, else nothing."""
    header, table = rows(runs)
    if not table:
        return []
    md, csv_path = out_dir / "mlperf.md", out_dir / "mlperf.csv"
    md.write_text("# MLPerf Tiny reference models\n\n" + to_markdown(header, table) + "\n" + NOTE + "\n")
    with csv_path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(table)
    return [md, csv_path]
