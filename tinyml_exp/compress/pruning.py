"""Magnitude pruning (TFMOT `prune_low_magnitude`): constant sparsity, a polynomial ramp, and m:n
structured sparsity. The three differ only in how the pruning parameters are built and in which
layers can be pruned; wrapping, fine-tuning, stripping and measuring are shared.

What TFMOT does with its step counter decides whether a schedule happens at all: the wrapper
counts optimizer steps from 1 and updates the mask only on steps where
`(step - begin_step) % frequency == 0` inside `[begin_step, end_step]`. TFMOT's defaults (begin 0,
frequency 100) never prune in a fine-tuning shorter than 100 steps, so begin, end and frequency
are derived here from the actual number of fine-tuning steps, and the sparsity reached is
measured on the stripped model and logged (`sparsity/weights`) beside the one asked for
(`sparsity/target`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from tinyml_exp.compress.base import require
from tinyml_exp.compress.finetune import FineTunedMethod, Phase, PhaseContext, wrap_layers
from tinyml_exp.compress.invariants import Invariant, MByNPattern, SparsityKept
from tinyml_exp.compress.measure import has_input_axis, is_kernel_layer, keras_kernels, sparsity
from tinyml_exp.errors import ConfigError
from tinyml_exp.registry import register_option
from tinyml_exp.validate import fine_tune_steps_problem

if TYPE_CHECKING:
    import tf_keras

log = logging.getLogger(__name__)

# TFMOT's default mask-update interval; shorter runs update more often (see `mask_frequency`).
MAX_FREQUENCY = 100
# Mask updates wanted over a schedule, so sparsity rises in steps a fine-tuning can follow.
MIN_UPDATES = 10
# The first step TFMOT's pruning wrapper sees: it increments its counter before updating masks.
FIRST_STEP = 1


def mask_frequency(steps: int) -> int:
    return max(1, min(MAX_FREQUENCY, steps // MIN_UPDATES))


def ramp_steps(total_steps: int, ramp_fraction: float) -> tuple[int, int, int]:
    """(begin, end, frequency) for a sparsity ramp over the first `ramp_fraction` of a run of
    `total_steps` steps. `end` lands on a mask-update step, so the final sparsity is applied
    exactly there; the remaining steps fine-tune at the final sparsity."""
    last = min(total_steps, max(FIRST_STEP + 1, round(total_steps * ramp_fraction)))
    span = last - FIRST_STEP
    frequency = mask_frequency(span)
    return FIRST_STEP, FIRST_STEP + (span // frequency) * frequency, frequency


@dataclass
class PruneMethod(FineTunedMethod):
    """Base of the pruning methods: subclasses say how to prune (`pruning_params`), what they
    aim for (`target_sparsity`) and which kernel layers they cannot prune (`skip_reason`)."""

    def pruning_params(self, ctx: PhaseContext) -> dict[str, Any]:
        raise NotImplementedError

    def target_sparsity(self) -> float:
        raise NotImplementedError

    def skip_reason(self, layer: tf_keras.layers.Layer) -> str | None:
        return None

    def invariants_after_pruning(self, reached: float) -> list[Invariant]:
        return [SparsityKept(reached, "prune")]

    def phases(self) -> list[Phase]:
        return [self.prune_phase()]

    def prune_phase(self) -> Phase:
        return Phase("prune", self._prune)

    def _prune(self, model: tf_keras.Model, ctx: PhaseContext) -> tf_keras.Model:
        import tensorflow_model_optimization as tfmot

        params = self.pruning_params(ctx)
        pruned: list[str] = []
        skipped: dict[str, str] = {}

        def wrap(layer: tf_keras.layers.Layer) -> tf_keras.layers.Layer | None:
            if not is_kernel_layer(layer):
                return None
            if reason := self.skip_reason(layer):
                skipped[layer.name] = reason
                return None
            pruned.append(layer.name)
            return tfmot.sparsity.keras.prune_low_magnitude(layer, **params)

        wrapped = wrap_layers(model, wrap)
        for name, reason in skipped.items():
            log.info("%s: layer %s left dense: %s", self.name, name, reason)
        if not pruned:
            raise ConfigError(
                f"compression={self.name} can prune no layer of {model.name}: "
                + "; ".join(f"{n}: {r}" for n, r in skipped.items())
            )
        ctx.fine_tune(wrapped, "prune", [tfmot.sparsity.keras.UpdatePruningStep()])
        stripped = tfmot.sparsity.keras.strip_pruning(wrapped)

        kernels = keras_kernels(stripped)
        reached = sparsity([k for k in kernels if k.name in pruned])
        target = self.target_sparsity()
        if abs(reached - target) > 0.01:
            log.warning("%s: pruned layers reached sparsity %.4f, not %.4f", self.name, reached, target)
        overall = sparsity(kernels)
        ctx.metrics.update(
            {"sparsity/target": target, "sparsity/pruned_layers": reached, "sparsity/after_prune": overall}
        )
        if skipped:
            ctx.tags["prune.dense_layers"] = "; ".join(f"{n}: {r}" for n, r in skipped.items())
        ctx.invariants.extend(self.invariants_after_pruning(overall))
        return stripped


@register_option("compression", "prune_constant")
@dataclass
class PruneConstant(PruneMethod):
    """`sparsity` of every kernel pruned from the first fine-tuning step on."""

    sparsity: float = 0.5

    def validate(self) -> None:
        super().validate()
        require(0.0 <= self.sparsity < 1.0, "sparsity", self.sparsity, "must be in [0, 1)")

    def target_sparsity(self) -> float:
        return self.sparsity

    def pruning_params(self, ctx: PhaseContext) -> dict[str, Any]:
        import tensorflow_model_optimization as tfmot

        schedule = tfmot.sparsity.keras.ConstantSparsity(
            self.sparsity, begin_step=FIRST_STEP, frequency=mask_frequency(ctx.total_steps)
        )
        return {"pruning_schedule": schedule}


@register_option("compression", "prune_polynomial")
@dataclass
class PrunePolynomial(PruneMethod):
    # A ramp needs a start and an end step (cross-group rule: validate.fine_tune_steps_problem).
    min_fine_tune_steps: ClassVar[int] = 2

    initial_sparsity: float = 0.0
    final_sparsity: float = 0.8
    # Share of the fine-tuning steps over which sparsity rises from initial to final; the rest
    # fine-tunes at the final sparsity to recover accuracy.
    ramp_fraction: float = 0.8
    power: int = 3

    def validate(self) -> None:
        super().validate()
        for key in ("initial_sparsity", "final_sparsity"):
            value = getattr(self, key)
            require(0.0 <= value < 1.0, key, value, "must be in [0, 1)")
        require(
            self.initial_sparsity <= self.final_sparsity,
            "initial_sparsity",
            self.initial_sparsity,
            f"must be ≤ compression.final_sparsity={self.final_sparsity}",
        )
        require(0.0 < self.ramp_fraction <= 1.0, "ramp_fraction", self.ramp_fraction, "must be in (0, 1]")
        require(self.power >= 1, "power", self.power, "must be ≥ 1")

    def target_sparsity(self) -> float:
        return self.final_sparsity

    def pruning_params(self, ctx: PhaseContext) -> dict[str, Any]:
        import tensorflow_model_optimization as tfmot

        # The rule lives in validate.py; checked again here for datasets whose size only the files know.
        problem = fine_tune_steps_problem(self, len(ctx.data.y_train), ctx.settings.batch_size)
        if problem:
            raise ConfigError(problem)
        begin, end, frequency = ramp_steps(ctx.total_steps, self.ramp_fraction)
        ctx.metrics.update(
            {"prune/end_step": end, "prune/frequency": frequency, "prune/total_steps": ctx.total_steps}
        )
        log.info(
            "polynomial sparsity ramp: steps %d → %d every %d of %d", begin, end, frequency, ctx.total_steps
        )
        schedule = tfmot.sparsity.keras.PolynomialDecay(
            self.initial_sparsity,
            self.final_sparsity,
            begin_step=begin,
            end_step=end,
            power=self.power,
            frequency=frequency,
        )
        return {"pruning_schedule": schedule}


@register_option("compression", "prune_structured")
@dataclass
class PruneStructured(PruneMethod):
    """m:n structured sparsity (TFMOT `sparsity_m_by_n`): at least `m` zeros in every block of `n`
    consecutive weights along a kernel's input axis. Layers whose input axis is not a multiple of
    `n` (e.g. a first convolution on 1 or 3 channels) have no whole blocks; they stay dense, and
    the run says so in the `prune.dense_layers` tag."""

    m: int = 2
    n: int = 4

    def validate(self) -> None:
        super().validate()
        require(self.n >= 2, "n", self.n, "must be ≥ 2")
        require(1 <= self.m < self.n, "m", self.m, f"must be in [1, compression.n={self.n})")

    def target_sparsity(self) -> float:
        return self.m / self.n

    def skip_reason(self, layer: tf_keras.layers.Layer) -> str | None:
        import tf_keras as keras

        # TFMOT's m:n masks handle rank-2 (Dense) and rank-4 (Conv2D) kernels only.
        if not has_input_axis(layer) or not isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)):
            return f"{type(layer).__name__} has no input axis m:n pruning can split"
        inputs = int(layer.kernel.shape[-2])
        if inputs % self.n:
            return f"input axis of {inputs} is not a multiple of n={self.n}"
        return None

    def pruning_params(self, ctx: PhaseContext) -> dict[str, Any]:
        # The m:n mask is computed once, at the first step; the schedule is not used for it.
        return {"sparsity_m_by_n": (self.m, self.n)}

    def invariants_after_pruning(self, reached: float) -> list[Invariant]:
        return [*super().invariants_after_pruning(reached), MByNPattern(self.m, self.n)]
