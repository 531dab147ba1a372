"""The common interface of the `compression` group.

A method takes the trained base model (never modified: methods that fine-tune work on a clone)
and returns an exportable Keras model, the recipe its `.tflite` is converted with, figures of its
own (sparsity reached, clusters kept, ...) and the invariants it promises about its artifacts.
The pipeline calls `validate` before any work, `apply`, then checks the result's invariants on
the Keras model (`checks`, measured after each phase) and on the `.tflite` (`verify_tflite`).
Adding a method is one subclass + one YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from omegaconf import MISSING

from tinyml_exp.errors import ConfigError
from tinyml_exp.export.tflite import QUANTIZE_MODES, TFLiteRecipe
from tinyml_exp.results import StageResult

if TYPE_CHECKING:
    import tf_keras

    from tinyml_exp.compress.invariants import Check, Invariant, Verification
    from tinyml_exp.data.base import DatasetSplits


@dataclass(frozen=True)
class FineTuneSettings:
    """What a method needs from the run's training config to fine-tune or recompile a model."""

    optimizer: str
    batch_size: int
    from_logits: bool
    verbose: Any = "auto"
    seed: int = 0  # fine-tuning reseeds, so a method gives the same model whether or not the base was cached


@dataclass
class CompressResult(StageResult):
    """The compressed Keras model, its conversion recipe, the method's figures (`metrics`,
    `tags`) and its promises; `compress()` adds the `invariant/*` checks to the figures."""

    model: tf_keras.Model
    recipe: TFLiteRecipe
    # Promises about every artifact from here on (sparsity kept, m:n pattern, ≤ n clusters).
    invariants: list[Invariant] = field(default_factory=list)
    # The promises as measured on the Keras model after each phase of the method.
    checks: list[Check] = field(default_factory=list)

    def verify_tflite(self, tflite: bytes) -> Verification:
        """Measure the converted model and check every invariant on it, the recipe's tensor types
        included (int8 inputs, outputs and weights for full-integer models, ...)."""
        from tinyml_exp.compress.invariants import verify_tflite

        return verify_tflite(self.invariants, self.recipe, tflite)

    def check_tflite(self, exported: Any) -> None:
        """Verify the exported `.tflite` (`exported.tflite`) and record the figures and checks in
        the export's result; a lost promise raises `InvariantError` carrying that result."""
        from tinyml_exp.compress.invariants import enforce_invariants

        verification = self.verify_tflite(exported.tflite)  # sparsity, clusters, tensor types
        exported.metrics.update(verification.metrics)
        enforce_invariants(exported, verification.checks)


def require(ok: bool, key: str, value: Any, expectation: str, hint: str = "") -> None:
    """Raise a ConfigError naming `compression.<key>` and its bad value unless `ok`."""
    if not ok:
        raise ConfigError(f"compression.{key}={value!r} {expectation}" + (f" ({hint})" if hint else ""))


@dataclass
class CompressionMethod:
    name: str = MISSING
    # How the compressed model's .tflite is quantized: none | int8 | dynamic | float16.
    quantize: str = "none"
    # True for methods that train with fake quantization: the converter takes the ranges learnt in
    # training and needs no representative samples.
    quantization_aware: ClassVar[bool] = False

    def validate(self) -> None:
        """Reject nonsense values before any work; messages name the key (`compression.<field>`).
        Subclasses extend this and call `super().validate()` first."""
        require(
            self.quantize in QUANTIZE_MODES,
            "quantize",
            self.quantize,
            f"is not one of {', '.join(QUANTIZE_MODES)}",
        )

    def training_epochs(self) -> int:
        """Epochs of fine-tuning this method runs (0: none); the sweep runs the longest jobs first."""
        return 0

    def recipe(self) -> TFLiteRecipe:
        return TFLiteRecipe(quantize=self.quantize, quantization_aware=self.quantization_aware)

    def apply(self, model: tf_keras.Model, data: DatasetSplits, settings: FineTuneSettings) -> CompressResult:
        raise NotImplementedError
