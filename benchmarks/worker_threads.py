"""Which TensorFlow thread count is fastest when a sweep runs two workers on this machine?

For each setting, `--workers` processes start at once (as joblib's workers do) and each runs one
QAT fine-tuning epoch of the seed CNN on Fashion-MNIST with `runtime.limit_threads(setting)`
("default" = TensorFlow's own pools, one thread per core each). The settings are measured in
rounds, interleaved (1, 2, default, then reversed), so a change in the machine's load hits all of
them alike; the wall time of each round is the slowest worker's.
Usage: python benchmarks/worker_threads.py [--workers 2] [--train-limit 20000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def worker(setting: str, train_limit: int) -> dict:
    from tinyml_exp.runtime import limit_threads

    if setting != "default":
        limit_threads(int(setting))
    from tests.helpers import compose_config
    from tinyml_exp.compress import FineTuneSettings
    from tinyml_exp.config import to_object
    from tinyml_exp.data import load_dataset
    from tinyml_exp.models import build_model

    cfg = compose_config(["compression=qat", "compression.epochs=1", f"dataset.train_limit={train_limit}"])
    data = load_dataset(cfg.dataset, 0)
    model = build_model(cfg.architecture, data.input_shape, data.num_classes)
    result = to_object(cfg.compression).apply(model, data, FineTuneSettings("adam", 32, True, 0, 0))
    import tensorflow as tf

    threads = tf.config.threading.get_intra_op_parallelism_threads()
    return {"epoch_s": result.metrics["time/finetune_qat_s"], "intra_threads": threads}


def round_of(setting: str, workers: int, train_limit: int) -> tuple[float, list[dict]]:
    command = [sys.executable, __file__, "--worker", setting, "--train-limit", str(train_limit)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    start = time.perf_counter()
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, env=env, cwd=REPO) for _ in range(workers)]
    outs = [json.loads(p.communicate()[0].decode().strip().splitlines()[-1]) for p in procs]
    return time.perf_counter() - start, outs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--train-limit", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--settings", default="1,2,default")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.train_limit)))
        return
    settings = args.settings.split(",")
    results: dict[str, list[float]] = {s: [] for s in settings}
    for r in range(args.rounds):
        for setting in settings if r % 2 == 0 else settings[::-1]:
            wall, outs = round_of(setting, args.workers, args.train_limit)
            results[setting].append(wall)
            epochs = ", ".join(f"{o['epoch_s']:.1f} s ({o['intra_threads']} thr)" for o in outs)
            print(
                f"round {r} threads={setting:<7} wall {wall:6.1f} s; epoch per worker: {epochs}", flush=True
            )
    print(f"{args.workers} workers × 1 QAT epoch on {args.train_limit} images, {os.cpu_count()} cores:")
    for setting, walls in results.items():
        print(f"  threads={setting:<7} mean wall {sum(walls) / len(walls):6.1f} s  ({walls})")
    print(f"load: {os.getloadavg()}")


if __name__ == "__main__":
    main()
