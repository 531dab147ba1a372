"""Methods that fine-tune: the shared sequence clone → (wrap → compile → fit → strip) per phase.

A method is a list of phases (prune, cluster, quantization-aware training); each phase wraps the
current model, fine-tunes it with the run's optimizer, batch size and seed and the method's
`epochs` and `learning_rate` (each phase gets that many epochs), strips its wrappers and may add
invariants. After every phase, every invariant added so far is checked on the Keras model, so a
later phase that undoes an earlier one (QAT refilling pruned weights) is caught where it happens.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tinyml_exp.compress.base import CompressionMethod, CompressResult, FineTuneSettings, require
from tinyml_exp.compress.invariants import ClustersKept, Invariant, check_keras
from tinyml_exp.compress.measure import keras_kernels, weight_metrics

if TYPE_CHECKING:
    import tf_keras

    from tinyml_exp.data.base import DatasetSplits

log = logging.getLogger(__name__)


@dataclass
class PhaseContext:
    """What phases share: the run's data and settings, and what they report."""

    data: DatasetSplits
    settings: FineTuneSettings
    epochs: int
    learning_rate: float
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    invariants: list[Invariant] = field(default_factory=list)

    @property
    def steps_per_epoch(self) -> int:
        return -(-len(self.data.y_train) // self.settings.batch_size)

    @property
    def total_steps(self) -> int:
        """Optimizer steps in one phase's fine-tuning: what pruning schedules are laid out over."""
        return self.epochs * self.steps_per_epoch

    def fine_tune(self, model: tf_keras.Model, phase: str, callbacks: Sequence[Any] = ()) -> None:
        from tinyml_exp.models.train import compile_model, fit

        log.info(
            "%s: fine-tuning %d epoch(s) × %d steps at learning rate %g",
            phase,
            self.epochs,
            self.steps_per_epoch,
            self.learning_rate,
        )
        compile_model(model, self.settings.optimizer, self.learning_rate, self.settings.from_logits)
        result = fit(
            model, self.data, self.epochs, self.settings.batch_size, self.settings.verbose, callbacks
        )
        self.metrics.update({f"finetune/{phase}_{k}": v[-1] for k, v in result.history.items()})
        self.metrics[f"time/finetune_{phase}_s"] = result.seconds


@dataclass(frozen=True)
class Phase:
    name: str
    run: Callable[[tf_keras.Model, PhaseContext], tf_keras.Model]


def clone(model: tf_keras.Model) -> tf_keras.Model:
    """An independent copy: TFMOT wrappers modify the layers they wrap, and the base model must
    stay as trained (it is shared by every method of a sweep and by the reference figures)."""
    import tf_keras as keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def wrap_layers(
    model: tf_keras.Model, wrap: Callable[[tf_keras.layers.Layer], tf_keras.layers.Layer | None]
) -> tf_keras.Model:
    """The same graph with each layer for which `wrap` returns a wrapper replaced by it. The
    wrappers take the layers of `model` itself (weights included), so pass a clone."""
    import tf_keras as keras

    def clone_function(layer: tf_keras.layers.Layer) -> tf_keras.layers.Layer:
        wrapped = wrap(layer)
        return layer if wrapped is None else wrapped

    return keras.models.clone_model(model, clone_function=clone_function)


@dataclass
class FineTunedMethod(CompressionMethod):
    epochs: int = 2  # per phase
    learning_rate: float = 1e-4

    def validate(self) -> None:
        super().validate()
        require(self.epochs >= 1, "epochs", self.epochs, "must be ≥ 1")
        require(self.learning_rate > 0, "learning_rate", self.learning_rate, "must be > 0")

    def phases(self) -> list[Phase]:
        raise NotImplementedError

    def training_epochs(self) -> int:
        return self.epochs * len(self.phases())

    def apply(self, model: tf_keras.Model, data: DatasetSplits, settings: FineTuneSettings) -> CompressResult:
        from tinyml_exp.models.train import set_global_seed

        set_global_seed(settings.seed)
        ctx = PhaseContext(data, settings, self.epochs, self.learning_rate)
        work = clone(model)
        checks = []
        for phase in self.phases():
            work = phase.run(work, ctx)
            checks += check_keras(ctx.invariants, work, phase.name)
        clustered = any(isinstance(inv, ClustersKept) for inv in ctx.invariants)
        metrics = {**ctx.metrics, **weight_metrics(keras_kernels(work), "keras", clustered)}
        return CompressResult(work, self.recipe(), ctx.invariants, checks, metrics=metrics, tags=ctx.tags)
