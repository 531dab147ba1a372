"""No compression: the base model as trained, converted as `quantize` says (float32 by default)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tinyml_exp.compress.base import CompressionMethod, CompressResult, FineTuneSettings
from tinyml_exp.config import register_option
from tinyml_exp.export.tflite import TFLiteRecipe

if TYPE_CHECKING:
    import tf_keras

    from tinyml_exp.data.base import DatasetSplits


@register_option("compression", "none")
@dataclass
class NoCompression(CompressionMethod):
    def apply(self, model: tf_keras.Model, data: DatasetSplits, settings: FineTuneSettings) -> CompressResult:
        return CompressResult(model=model, recipe=TFLiteRecipe(quantize=self.quantize))
