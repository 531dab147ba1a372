"""Wall time of the course exercise two ways, measured back to back in one run, and their ratio:

  A. `python -m tinyml_exp -m experiment=seed_exercise6` over the methods (base trained once before
     the fan-out, jobs in parallel on joblib workers, every run logged to MLflow);
  B. a plain sequential script written here doing the same work in one process: load the data,
     train the base once (same epochs), and for every method fine-tune (the method's own default
     epochs, as A), convert, evaluate (Keras + TFLite on the whole test split, TFLM on the first
     `evaluate.tflm_samples`, as A), profile and build the firmware (the same library calls A's
     stages make). B logs nothing to MLflow and writes no Keras files or C header.

Goal: A / B ≤ 0.8. A's per-stage breakdown comes from its runs' `time/*` metrics (summed over the
jobs, which run in parallel), B's from its own timers.
Usage: python benchmarks/sweep_walltime.py [--epochs 4] [--methods none,ptq_int8,...] [--jobs -1]
       [--train-limit N] (both sides, e.g. on a loaded machine)
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def all_methods() -> list[str]:
    from tinyml_exp.config import option_names

    return option_names("compression")


def common_overrides(args: argparse.Namespace) -> list[str]:
    limit = [f"dataset.train_limit={args.train_limit}"] if args.train_limit else []
    return [f"train.epochs={args.epochs}", *limit]


def run_sweep(methods: list[str], args: argparse.Namespace, work: Path) -> tuple[float, float]:
    """(wall seconds, the epoch time it started at)."""
    command = [
        sys.executable,
        "-m",
        "tinyml_exp",
        "-m",
        "experiment=seed_exercise6",
        f"compression={','.join(methods)}",
        *common_overrides(args),
        f"hydra.launcher.n_jobs={args.jobs}",
        f"tracking.uri=sqlite:///{work}/mlflow.db",
        f"cache.dir={work}/cache",  # empty: the sweep pays for its one base training
        f"hydra.sweep.dir={work}/sweep",
    ]
    start, epoch = time.perf_counter(), time.time()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"the sweep failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start, epoch


def sweep_timeline(db: Path, epoch: float) -> str:
    """When, in seconds after the command started, the parent run opened, the first job started,
    the last job ended and the parent closed (after the report)."""
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT r.start_time, r.end_time, t.value, c.value FROM runs r LEFT JOIN tags t"
            " ON t.run_uuid = r.run_uuid AND t.key = 'run_kind' LEFT JOIN tags c"
            " ON c.run_uuid = r.run_uuid AND c.key = 'compression' ORDER BY r.start_time"
        ).fetchall()
    parent = next((a, b) for a, b, kind, _ in rows if kind == "sweep_parent")
    jobs = [(a, b) for a, b, kind, _ in rows if kind != "sweep_parent"]

    def at(ms: float) -> str:
        return f"{ms / 1000 - epoch:.1f}"

    each = ", ".join(f"{name} {at(a)}–{at(b)}" for a, b, kind, name in rows if kind != "sweep_parent")
    return (
        f"parent opened {at(parent[0])}, first job {at(min(a for a, _ in jobs))}, "
        f"last job ended {at(max(b for _, b in jobs))}, parent closed {at(parent[1])}\n"
        f"   jobs, s: {each}"
    )


def sweep_breakdown(db: Path) -> tuple[dict[str, float], dict[str, str]]:
    """(time/* metrics summed over the jobs, the parent run's sweep.* tags)."""
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT key, value FROM latest_metrics WHERE key LIKE 'time/%'").fetchall()
        tags = dict(con.execute("SELECT key, value FROM tags WHERE key LIKE 'sweep.%'").fetchall())
    totals: dict[str, float] = defaultdict(float)
    for key, value in rows:
        totals[key] += value
    return dict(totals), tags


class Timer:
    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)

    def __call__(self, name: str, fn, *a, **kw):
        start = time.perf_counter()
        out = fn(*a, **kw)
        self.totals[name] += time.perf_counter() - start
        return out


def plain_script(methods: list[str], args: argparse.Namespace, work: Path) -> tuple[float, dict[str, float]]:
    """The notebook's way, one process, one method after the other, base trained once."""
    from tests.helpers import compose_config
    from tinyml_exp.compress import FineTuneSettings
    from tinyml_exp.config import to_object
    from tinyml_exp.evaluate import evaluate
    from tinyml_exp.export.tflite import convert
    from tinyml_exp.hardware.firmware_stage import build_firmware
    from tinyml_exp.models import build_model
    from tinyml_exp.models.train import compile_model, fit, set_global_seed
    from tinyml_exp.profile.stage import profile

    timer, start = Timer(), time.perf_counter()
    cfg = compose_config(["experiment=seed_exercise6", *common_overrides(args)])
    data = timer("data", to_object(cfg.dataset).load, cfg.seed)
    set_global_seed(cfg.seed)
    base = build_model(cfg.architecture, data.input_shape, data.num_classes)
    compile_model(base, cfg.train.optimizer, cfg.train.learning_rate, from_logits=True)
    timer("train", fit, base, data, cfg.train.epochs, cfg.train.batch_size, 0)
    target = to_object(cfg.target)
    for name in methods:
        method = to_object(compose_config([f"compression={name}"]).compression)
        settings = FineTuneSettings(cfg.train.optimizer, cfg.train.batch_size, True, 0, cfg.seed)
        result = timer("compress", method.apply, base, data, settings)
        rep = data.x_train[: cfg.export.representative_samples]
        tflite = timer("export", convert, result.model, result.recipe, rep)
        backends = ("tflite", "tflm") if result.recipe.quantize in ("none", "int8") else ("tflite",)
        m = timer("evaluate", evaluate, result.model, tflite, data, True, backends, cfg.evaluate.tflm_samples)
        out = work / name
        timer("profile", profile, cfg, target, tflite, out, name)
        timer("firmware", build_firmware, cfg, target, tflite, out, name)
        print(f"  plain: {name:<18} accuracy/tflite {m.metrics['accuracy/tflite']:.4f}", flush=True)
    return time.perf_counter() - start, dict(timer.totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--methods", default=",".join(all_methods()))
    parser.add_argument("--jobs", type=int, default=-1, help="joblib workers for the sweep (-1: all cores)")
    parser.add_argument("--train-limit", type=int, default=None, help="training images, both sides")
    args = parser.parse_args()
    methods = args.methods.split(",")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(f"load before: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        sweep_s, epoch = run_sweep(methods, args, Path(tmp))
        stages, tags = sweep_breakdown(Path(tmp) / "mlflow.db")
        timeline = sweep_timeline(Path(tmp) / "mlflow.db", epoch)
    print(f"A. tinyml_exp sweep ({len(methods)} methods, n_jobs={args.jobs}): {sweep_s:8.1f} s", flush=True)
    print(f"   base models before the fan-out: {tags}")
    print(f"   timeline, s: {timeline}")
    with tempfile.TemporaryDirectory() as tmp:
        plain_s, plain_stages = plain_script(methods, args, Path(tmp))
    print(f"B. plain sequential script (base trained once):   {plain_s:8.1f} s")
    print("per stage, s (A: summed over the parallel jobs; B: sequential)")
    for name in ("data", "train", "compress", "export", "preflight", "evaluate", "profile", "firmware"):
        a = stages.get(f"time/{name}_s", 0.0)
        print(f"  {name:<10} A {a:8.1f}   B {plain_stages.get(name, 0.0):8.1f}")
    print(f"ratio A / B = {sweep_s / plain_s:.2f}  (goal ≤ 0.8; {os.cpu_count()} cores)")
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
