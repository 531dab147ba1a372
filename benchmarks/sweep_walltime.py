"""Wall time of the course exercise two ways, measured in one run, and their ratio:

  A. `python -m tinyml_exp -m experiment=seed_exercise6` (base trained once and cached, methods in
     parallel, plus TFLM evaluation, profiling and the firmware stage);
  B. a plain sequential script in the course notebook's style: for every method, train the base
     model again (same epochs), compress, convert and evaluate in the TFLite interpreter.

Goal: A / B ≤ 1.0 although A does more. Both use the same data, epochs and method settings.
Usage: python benchmarks/sweep_walltime.py [--epochs 4] [--methods none,ptq_int8,...] [--jobs -1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def all_methods() -> list[str]:
    from tinyml_exp.config import option_names

    return option_names("compression")


def run_sweep(methods: list[str], epochs: int, jobs: int, work: Path) -> float:
    command = [
        sys.executable,
        "-m",
        "tinyml_exp",
        "-m",
        "experiment=seed_exercise6",
        f"compression={','.join(methods)}",
        f"train.epochs={epochs}",
        f"hydra.launcher.n_jobs={jobs}",
        f"tracking.uri=sqlite:///{work}/mlflow.db",
        f"cache.dir={work}/cache",  # empty: the sweep pays for its one base training
        f"hydra.sweep.dir={work}/sweep",
    ]
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, capture_output=True)
    return time.perf_counter() - start


def plain_script(methods: list[str], epochs: int) -> float:
    """What the notebook does: retrain for every method, in one process, one after the other."""
    from tests.helpers import compose_config
    from tinyml_exp.compress import FineTuneSettings
    from tinyml_exp.config import to_object
    from tinyml_exp.data import load_dataset
    from tinyml_exp.evaluate import run_tflite
    from tinyml_exp.export.tflite import convert
    from tinyml_exp.models import build_model
    from tinyml_exp.models.train import compile_model, fit, set_global_seed

    start = time.perf_counter()
    data = load_dataset(compose_config().dataset, 0)  # the notebook loads the data once
    for method_name in methods:
        cfg = compose_config([f"compression={method_name}", f"train.epochs={epochs}"])
        set_global_seed(cfg.seed)
        model = build_model(cfg.architecture, data.input_shape, data.num_classes)
        compile_model(model, cfg.train.optimizer, cfg.train.learning_rate, from_logits=True)
        fit(model, data, cfg.train.epochs, cfg.train.batch_size, verbose=0)
        method = to_object(cfg.compression)
        settings = FineTuneSettings(cfg.train.optimizer, cfg.train.batch_size, True, 0, cfg.seed)
        result = method.apply(model, data, settings)
        tflite = convert(result.model, result.recipe, data.x_train[: cfg.export.representative_samples])
        accuracy = (run_tflite(tflite, data.x_test).argmax(axis=1) == data.y_test).mean()
        print(f"  plain: {method_name:<18} accuracy {accuracy:.4f}", flush=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--methods", default=",".join(all_methods()))
    parser.add_argument("--jobs", type=int, default=-1, help="joblib workers for the sweep (-1: all cores)")
    args = parser.parse_args()
    methods = args.methods.split(",")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory() as tmp:
        sweep_s = run_sweep(methods, args.epochs, args.jobs, Path(tmp))
    print(f"A. tinyml_exp sweep ({len(methods)} methods, {args.jobs} jobs): {sweep_s:8.1f} s", flush=True)
    plain_s = plain_script(methods, args.epochs)
    print(f"B. plain sequential script (retrains per method): {plain_s:8.1f} s")
    print(f"ratio A / B = {sweep_s / plain_s:.2f}  (goal ≤ 1.0; {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
