"""What each extra fine-tuning epoch buys: TFLite accuracy and fine-tuning time per method and
epochs per phase (1, 2, 4), the seed CNN on Fashion-MNIST, one base model for all.

The base is trained once (`--base-epochs`, 4 as the course exercise); every (method, epochs) pair
starts from it with the method's own YAML settings and `epochs` overridden. Prints one row per
pair: accuracy of the exported .tflite on the whole test split and the fine-tuning seconds.
Usage: python benchmarks/finetune_epochs.py [--methods qat,prune_constant,...] [--epochs 1,2,4]
       [--train-limit N] [--base-epochs 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FINE_TUNED = (
    "qat",
    "prune_constant",
    "prune_polynomial",
    "prune_structured",
    "cluster",
    "pqat",
    "cqat",
    "pcqat",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(FINE_TUNED))
    parser.add_argument("--epochs", default="1,2,4")
    parser.add_argument("--train-limit", type=int, default=None)
    parser.add_argument("--base-epochs", type=int, default=4)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tests.helpers import compose_config
    from tinyml_exp.compress import FineTuneSettings
    from tinyml_exp.config import to_object
    from tinyml_exp.evaluate import run_tflite
    from tinyml_exp.export.tflite import convert
    from tinyml_exp.models import build_model
    from tinyml_exp.models.train import compile_model, fit, set_global_seed

    limit = [f"dataset.train_limit={args.train_limit}"] if args.train_limit else []
    cfg = compose_config([f"train.epochs={args.base_epochs}", *limit])
    data = to_object(cfg.dataset).load(cfg.seed)
    set_global_seed(cfg.seed)
    base = build_model(cfg.architecture, data.input_shape, data.num_classes)
    compile_model(base, cfg.train.optimizer, cfg.train.learning_rate, from_logits=True)
    base_s = fit(base, data, cfg.train.epochs, cfg.train.batch_size, 0).seconds
    base_acc = (base.predict(data.x_test, batch_size=256, verbose=0).argmax(1) == data.y_test).mean()
    print(
        f"base: {args.base_epochs} epochs, {len(data.y_train)} images, {base_s:.1f} s, keras {base_acc:.4f}"
    )
    print(f"{'method':<18} {'epochs':>6} {'tflite acc':>10} {'finetune s':>10}", flush=True)
    for name in args.methods.split(","):
        for epochs in (int(e) for e in args.epochs.split(",")):
            method = to_object(
                compose_config([f"compression={name}", f"compression.epochs={epochs}", *limit]).compression
            )
            settings = FineTuneSettings(cfg.train.optimizer, cfg.train.batch_size, True, 0, cfg.seed)
            start = time.perf_counter()
            result = method.apply(base, data, settings)
            seconds = time.perf_counter() - start
            tflite = convert(result.model, result.recipe, data.x_train[: cfg.export.representative_samples])
            accuracy = (run_tflite(tflite, data.x_test).argmax(axis=1) == data.y_test).mean()
            print(f"{name:<18} {epochs:>6} {accuracy:>10.4f} {seconds:>10.1f}", flush=True)
    print(f"load: {os.getloadavg()}")


if __name__ == "__main__":
    main()
