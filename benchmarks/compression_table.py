"""Every compression method on the course CNN and real Fashion-MNIST, next to the course's figures.

Runs the real pipeline as one sweep (`python -m tinyml_exp -m compression=...`: the base model is
trained once, 4 epochs, then every method fine-tunes its own copy), then builds a markdown table
from the MLflow runs — never from figures typed in here.

Usage:
    python benchmarks/compression_table.py                      # run the sweep, print the table
    python benchmarks/compression_table.py --table-only         # table from the runs already logged
    python benchmarks/compression_table.py --output benchmarks/compression_table.md
    python benchmarks/compression_table.py -- compression.epochs=1   # extra overrides for every job
Runs go to the project's MLflow store (tracking.uri, default sqlite:///mlflow.db in the working
directory), experiment `compression_table`.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
METHODS = (
    "none",
    "ptq_int8",
    "ptq_dynamic",
    "ptq_float16",
    "qat",
    "prune_structured",
    "prune_constant",
    "prune_polynomial",
    "pqat",
    "cluster",
    "cqat",
    "pcqat",
)
EXPERIMENT = "compression_table"
NOTES_HEADING = "## Notes"
BASE = [
    "dataset=fashion_mnist",
    "architecture=seed_cnn",
    "train.epochs=4",
    f"tracking.experiment={EXPERIMENT}",
]
# What the course exercise reported for the same model (see the issue); "" where it gave nothing.
COURSE = {
    "none": "89 % (loss 0.29); .tflite 3.2× < .h5",
    "ptq_int8": "89.5 %; 3.5× (int8)",
    "qat": "90 %",
    "prune_structured": "1.6× (gzip)",
    "prune_constant": "1.6× (gzip)",
    "pqat": "4.6×",
}


def run_sweep(methods: list[str], uri: str, extra: list[str]) -> None:
    cmd = [
        sys.executable,
        "-m",
        "tinyml_exp",
        "-m",
        *BASE,
        f"compression={','.join(methods)}",
        f"tracking.uri={uri}",
        *extra,
    ]
    print("running:", " ".join(cmd), file=sys.stderr)
    done = subprocess.run(cmd, cwd=Path.cwd())
    if done.returncode:  # failed jobs are figures too: they show in the table with their status
        print(f"the sweep exited with status {done.returncode}", file=sys.stderr)


def latest_runs(uri: str, methods: list[str]) -> dict[str, object]:
    """The newest run of each method in the experiment (FAILED ones included: they are figures too)."""
    from mlflow.tracking import MlflowClient

    from tinyml_exp.tracking import resolve_tracking_uri

    client = MlflowClient(resolve_tracking_uri(uri))
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        raise SystemExit(f"no experiment {EXPERIMENT!r} in {uri}: run without --table-only first")
    runs: dict[str, object] = {}
    for run in client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"]):
        name = run.data.tags.get("compression")
        if name in methods and name not in runs:
            runs[name] = run
    return runs


def _pct(m: dict, key: str) -> str:
    return f"{100 * m[key]:.2f}" if key in m else ""


def _num(m: dict, key: str, fmt: str) -> str:
    return fmt.format(m[key]) if key in m else ""


def table(runs: dict[str, object], methods: list[str]) -> str:
    header = (
        "| method | acc keras % | acc tflite % | acc tflm % | Δ vs base (pts) | loss keras | .tflite B | gzip B "
        "| × vs .h5 | × vs float .tflite | × gzip vs float gzip | sparsity .tflite | max unique/ch "
        "| compress s | status | course |"
    )
    lines = [header, "|" + "|".join("---" for _ in range(16)) + "|"]
    for name in methods:
        run = runs.get(name)
        if run is None:
            lines.append(f"| {name} |" + " |" * 14 + f" {COURSE.get(name, '')} |")
            continue
        m = run.data.metrics
        delta = f"{100 * m['accuracy/delta_vs_base']:+.2f}" if "accuracy/delta_vs_base" in m else ""
        unique = _num(m, "clusters/max_unique_per_channel_tflite", "{:.0f}")
        status = run.info.status + (
            f" ({run.data.tags['invariant_failed']})" if "invariant_failed" in run.data.tags else ""
        )
        cells = [
            name,
            _pct(m, "accuracy/keras"),
            _pct(m, "accuracy/tflite"),
            "n/a" if "evaluate.tflm_skipped" in run.data.tags else _pct(m, "accuracy/tflm"),
            delta,
            _num(m, "loss/keras", "{:.3f}"),
            _num(m, "size/tflite_bytes", "{:,.0f}"),
            _num(m, "size/tflite_gzip_bytes", "{:,.0f}"),
            _num(m, "compression/factor_h5", "{:.2f}×"),
            _num(m, "compression/factor_tflite", "{:.2f}×"),
            _num(m, "compression/factor_gzip", "{:.2f}×"),
            _num(m, "sparsity/weights_tflite", "{:.3f}"),
            unique,
            _num(m, "time/compress_s", "{:.0f}"),
            status,
            COURSE.get(name, ""),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def reference_line(runs: dict[str, object]) -> str:
    base = next((r.data.metrics for r in runs.values() if "base/h5_bytes" in r.data.metrics), None)
    if base is None:
        return ""
    return (
        f"Base model (trained once, cached): accuracy {100 * base['base/accuracy_keras']:.2f} %, "
        f"loss {base['base/loss_keras']:.3f}; `.h5` {base['base/h5_bytes']:,.0f} B, float `.tflite` "
        f"{base['base/tflite_bytes']:,.0f} B (gzip {base['base/tflite_gzip_bytes']:,.0f} B)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated compression options")
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    parser.add_argument("--table-only", action="store_true", help="do not run; tabulate logged runs")
    parser.add_argument("--output", type=Path, help="also write the table (markdown) here")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every job (after --)")
    args = parser.parse_args()
    methods = args.methods.split(",")
    if not args.table_only:
        run_sweep(methods, args.tracking_uri, args.overrides)
    runs = latest_runs(args.tracking_uri, methods)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    text = "\n\n".join(
        [
            f"Compression methods on the seed CNN, Fashion-MNIST ({datetime.date.today()}, commit "
            f"{commit.stdout.strip() or '?'}; `python benchmarks/compression_table.py "
            f"{' '.join(args.overrides)}`).",
            reference_line(runs),
            table(runs, methods),
        ]
    )
    print(text)
    if args.output:
        # Hand-written notes on a measurement (under NOTES_HEADING) survive a regenerated table.
        previous = args.output.read_text() if args.output.exists() else ""
        notes = previous[previous.index(NOTES_HEADING) :] if NOTES_HEADING in previous else ""
        args.output.write_text(text + "\n\n" + notes if notes else text + "\n")


if __name__ == "__main__":
    main()
