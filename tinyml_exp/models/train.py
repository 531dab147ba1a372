"""Training helpers shared by the base model and every fine-tuning compression method."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tinyml_exp.errors import ConfigError

if TYPE_CHECKING:
    import tf_keras

    from tinyml_exp.data.base import DatasetSplits

log = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "sgd", "rmsprop")


@dataclass
class FitResult:
    history: dict[str, list[float]]
    seconds: float
    steps_per_epoch: int


def set_global_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and make TF ops deterministic (same seed, same weights)."""
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def compile_model(
    model: tf_keras.Model,
    optimizer: str,
    learning_rate: float,
    from_logits: bool,
    task: str = "classification",
) -> None:
    """Cross-entropy and accuracy for a classifier; mean squared error for regression and
    autoencoders (`tinyml_exp.tasks`)."""
    import tf_keras as keras

    optimizers = {
        "adam": keras.optimizers.Adam,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }
    if optimizer not in optimizers:
        raise ConfigError(f"train.optimizer={optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
    if task != "classification":
        model.compile(optimizer=optimizers[optimizer](learning_rate=learning_rate), loss="mse")
        return
    model.compile(
        optimizer=optimizers[optimizer](learning_rate=learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
        metrics=["accuracy"],
    )


def keras_verbosity(verbose: Any) -> int:
    """`auto` -> a progress bar on a terminal, one line per epoch in logs and CI."""
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return int(verbose)


def fit(
    model: tf_keras.Model,
    data: DatasetSplits,
    epochs: int,
    batch_size: int,
    verbose: Any = "auto",
    callbacks: Sequence[Any] = (),
    task: str = "classification",
) -> FitResult:
    """Train on the training split, validating on the validation split when it is not empty; the
    targets are the labels, or what `task` says (`tinyml_exp.tasks.targets`: the input itself for
    an autoencoder)."""
    from tinyml_exp.tasks import targets

    start = time.perf_counter()
    steps = -(-len(data.y_train) // batch_size)
    if epochs == 0:  # a model that is already trained (architecture=keras_file, train.epochs=0)
        return FitResult(history={}, seconds=0.0, steps_per_epoch=steps)
    validation = (data.x_val, targets(data.x_val, data.y_val, task)) if len(data.y_val) else None
    history = model.fit(
        data.x_train,
        targets(data.x_train, data.y_train, task),
        epochs=epochs,
        batch_size=batch_size,
        validation_data=validation,
        callbacks=list(callbacks),
        verbose=keras_verbosity(verbose),
        shuffle=True,
    )
    return FitResult(
        history={k: [float(v) for v in vals] for k, vals in history.history.items()},
        seconds=time.perf_counter() - start,
        steps_per_epoch=steps,
    )
