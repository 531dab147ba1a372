"""The common interface of the `compression` group.

A method takes the trained base model (never modified: methods that fine-tune work on a clone)
and returns an exportable Keras model, the recipe its `.tflite` is converted with, and figures of
its own (sparsity reached, clusters kept, ...). The pipeline only ever calls `validate` and
`apply`; adding a method is one subclass + one YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from omegaconf import MISSING

from tinyml_exp.errors import ConfigError
from tinyml_exp.export.tflite import QUANTIZE_MODES, TFLiteRecipe

if TYPE_CHECKING:
    import tf_keras

    from tinyml_exp.data.base import DatasetSplits


@dataclass(frozen=True)
class FineTuneSettings:
    """What a method needs from the run's training config to fine-tune or recompile a model."""

    optimizer: str
    batch_size: int
    from_logits: bool
    verbose: Any = "auto"


@dataclass
class CompressResult:
    model: tf_keras.Model
    recipe: TFLiteRecipe
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class CompressionMethod:
    name: str = MISSING
    # How the compressed model's .tflite is quantized: none | int8 | dynamic | float16.
    quantize: str = "none"

    def validate(self) -> None:
        """Reject nonsense values before any work; messages name the key (`compression.<field>`)."""
        if self.quantize not in QUANTIZE_MODES:
            raise ConfigError(
                f"compression.quantize={self.quantize!r} is not one of {', '.join(QUANTIZE_MODES)}"
            )

    def apply(self, model: tf_keras.Model, data: DatasetSplits, settings: FineTuneSettings) -> CompressResult:
        raise NotImplementedError
