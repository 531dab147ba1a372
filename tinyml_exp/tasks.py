"""What a model is trained to do, from its architecture's `task` key.

- `classification` (the default): one output per class, sparse cross-entropy, accuracy.
- `regression`: the dataset's labels are the float targets; mean squared error.
- `autoencoder`: the target is the input itself (flattened); mean squared error, and the
  per-sample reconstruction error is the anomaly score (`roc_auc/*` when the labels mark
  anomalies: label 0 = normal, any other = anomalous).

For the last two the evaluate stage logs `mse/<backend>` (and `roc_auc/<backend>`) instead of
accuracy and loss, and the device benchmark keeps its agreement and bit-exactness figures only.
Light: NumPy is imported inside the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tinyml_exp.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

TASKS = ("classification", "regression", "autoencoder")
CLASSIFICATION = "classification"
# What the device benchmark measures against labels: meaningless for a non-classifier.
CLASSIFICATION_ONLY = ("accuracy/device", "accuracy/tflite_reference")


def task_of(architecture: Any) -> str:
    """The architecture's task; `ConfigError` for an unknown one."""
    task = getattr(architecture, "task", CLASSIFICATION)
    if task not in TASKS:
        raise ConfigError(f"architecture.task={task!r} is not one of {', '.join(TASKS)}")
    return task


def targets(x: np.ndarray, y: np.ndarray, task: str) -> np.ndarray:
    """What the model should output for inputs `x` with labels `y`: the labels for a classifier,
    float targets (N × k) for regression, the flattened input for an autoencoder."""
    import numpy as np

    if task == CLASSIFICATION:
        return y
    source = x if task == "autoencoder" else y
    return np.asarray(source, dtype=np.float32).reshape(len(source), -1)


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve of `scores` for the `positive` samples (the Mann-Whitney U
    statistic, ties counted half); None without both kinds of sample."""
    import numpy as np

    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return None
    _, inverse, counts = np.unique(np.asarray(scores), return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse.reshape(-1)]  # 1-based, ties averaged
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
