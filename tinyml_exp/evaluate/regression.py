"""Evaluate stage for regression and autoencoder models: mean squared error per backend and, for
an autoencoder on labelled data, the ROC AUC of the reconstruction error as an anomaly score."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tinyml_exp.evaluate.interpreters import run_tflite, run_tflm
from tinyml_exp.results import StageResult
from tinyml_exp.tasks import roc_auc, targets

if TYPE_CHECKING:
    import tf_keras

    from tinyml_exp.data.base import DatasetSplits


def evaluate_regression(
    keras_model: tf_keras.Model | None,
    tflite_model: bytes,
    data: DatasetSplits,
    backends: tuple[str, ...],
    task: str,
) -> StageResult:
    """`mse/<backend>` on the test split, `roc_auc/<backend>` for an autoencoder whose labels mark
    anomalies (0 = normal), `error/<b>_vs_<a>_max_abs` between backends."""
    x, y = data.x_test, data.y_test
    target = targets(x, y, task)
    outputs: dict[str, np.ndarray] = {}
    if keras_model is not None:
        outputs["keras"] = np.asarray(keras_model.predict(x, batch_size=256, verbose=0))
    runners = {"tflite": run_tflite, "tflm": run_tflm}
    for backend in backends:
        outputs[backend] = runners[backend](tflite_model, x)
    metrics: dict[str, float] = {}
    for name, out in outputs.items():
        errors = ((out.reshape(len(x), -1) - target) ** 2).mean(axis=1)
        metrics[f"mse/{name}"] = float(errors.mean())
        auc = roc_auc(errors, y != 0) if task == "autoencoder" else None
        if auc is not None:
            metrics[f"roc_auc/{name}"] = auc
    names = list(outputs)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            diff = np.abs(outputs[b].reshape(len(x), -1) - outputs[a].reshape(len(x), -1))
            metrics[f"error/{b}_vs_{a}_max_abs"] = float(diff.max()) if diff.size else 0.0
    return StageResult(metrics=metrics)
