"""Methods that leave the weights as trained: `none` (float32) and post-training quantization.

They differ only in the recipe the `.tflite` is converted with, so they are one class: `ptq_int8`
(full integer, int8 input and output, calibrated on `export.representative_samples` training
images), `ptq_dynamic` (int8 weights, float activations) and `ptq_float16` (float16 weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tinyml_exp.compress.base import CompressionMethod, CompressResult, FineTuneSettings, require
from tinyml_exp.compress.measure import keras_kernels, weight_metrics
from tinyml_exp.registry import register_option

if TYPE_CHECKING:
    import tf_keras

    from tinyml_exp.data.base import DatasetSplits


@register_option("compression", "none")
@dataclass
class NoCompression(CompressionMethod):
    def apply(self, model: tf_keras.Model, data: DatasetSplits, settings: FineTuneSettings) -> CompressResult:
        metrics = weight_metrics(keras_kernels(model), "keras", clusters=False)
        return CompressResult(model=model, recipe=self.recipe(), metrics=metrics)


# ptq_int8, ptq_dynamic, ptq_float16, ...: the mode is the name's suffix.
@register_option("compression", "ptq_*")
@dataclass
class PostTrainingQuantization(NoCompression):
    quantize: str = "int8"

    def validate(self) -> None:
        super().validate()
        # The option's name says the mode; a contradicting override would mislabel the run.
        expected = self.name.removeprefix("ptq_")
        require(
            self.quantize == expected,
            "quantize",
            self.quantize,
            f"contradicts compression={self.name}",
            f"choose compression=ptq_{self.quantize}"
            if self.quantize != "none"
            else "choose compression=none",
        )
