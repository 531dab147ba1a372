"""Evaluate stage: accuracy and loss of the Keras model and of its `.tflite` in TFLite and TFLM."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from tinyml_exp.evaluate.interpreters import run_tflite, run_tflm
from tinyml_exp.results import StageResult

if TYPE_CHECKING:
    import tf_keras

    from tinyml_exp.data.base import DatasetSplits

__all__ = ["EvaluationResult", "evaluate", "run_tflite", "run_tflm"]


@dataclass
class EvaluationResult(StageResult):
    """`metrics`: accuracy/loss per backend and their label agreement."""

    predictions: dict[str, np.ndarray] = field(default_factory=dict)  # backend -> predicted labels


def cross_entropy(outputs: np.ndarray, labels: np.ndarray, from_logits: bool) -> float:
    """Mean sparse categorical cross-entropy, as Keras computes it (probabilities clipped at 1e-7)."""
    if from_logits:
        shifted = outputs - outputs.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    else:
        probs = np.clip(outputs / outputs.sum(axis=1, keepdims=True), 1e-7, 1 - 1e-7)
        log_probs = np.log(probs)
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def evaluate(
    keras_model: tf_keras.Model | None,
    tflite_model: bytes,
    data: DatasetSplits,
    from_logits: bool,
    backends: tuple[str, ...] = ("tflite", "tflm"),
    tflm_samples: int | None = None,
) -> EvaluationResult:
    """Accuracy and loss per backend on the test split, and how often backends agree on the label.

    TFLM runs one image at a time in its host build (seconds per thousand images): with
    `tflm_samples` it runs the first that many test images only, and its figures (accuracy, loss,
    agreement with the others) are on those images; `evaluate/<backend>_samples` says how many
    images each backend's figures are on."""
    x, y = data.x_test, data.y_test
    outputs: dict[str, np.ndarray] = {}
    if keras_model is not None:
        outputs["keras"] = np.asarray(keras_model.predict(x, batch_size=256, verbose=0))
    runners = {"tflite": run_tflite, "tflm": run_tflm}
    for backend in backends:
        n = len(x) if backend != "tflm" or tflm_samples is None else min(tflm_samples, len(x))
        outputs[backend] = runners[backend](tflite_model, x[:n])
    metrics: dict[str, float] = {}
    predictions = {name: out.argmax(axis=1) for name, out in outputs.items()}
    for name, out in outputs.items():
        labels = y[: len(out)]
        metrics[f"accuracy/{name}"] = float((predictions[name] == labels).mean())
        metrics[f"loss/{name}"] = cross_entropy(out, labels, from_logits)
        metrics[f"evaluate/{name}_samples"] = float(len(out))
    names = list(outputs)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            n = min(len(predictions[a]), len(predictions[b]))  # the images both ran
            metrics[f"agreement/{b}_vs_{a}"] = float((predictions[a][:n] == predictions[b][:n]).mean())
    return EvaluationResult(metrics=metrics, predictions=predictions)
