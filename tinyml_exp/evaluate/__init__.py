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
) -> EvaluationResult:
    """Accuracy and loss per backend on the test split, and how often backends agree on the label."""
    x, y = data.x_test, data.y_test
    outputs: dict[str, np.ndarray] = {}
    if keras_model is not None:
        outputs["keras"] = np.asarray(keras_model.predict(x, batch_size=256, verbose=0))
    runners = {"tflite": run_tflite, "tflm": run_tflm}
    for backend in backends:
        outputs[backend] = runners[backend](tflite_model, x)
    metrics: dict[str, float] = {}
    predictions = {name: out.argmax(axis=1) for name, out in outputs.items()}
    for name, out in outputs.items():
        metrics[f"accuracy/{name}"] = float((predictions[name] == y).mean())
        metrics[f"loss/{name}"] = cross_entropy(out, y, from_logits)
    names = list(outputs)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            metrics[f"agreement/{b}_vs_{a}"] = float((predictions[a] == predictions[b]).mean())
    return EvaluationResult(metrics=metrics, predictions=predictions)
