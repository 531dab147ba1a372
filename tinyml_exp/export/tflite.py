"""Keras -> `.tflite` conversion with a fixed batch of 1 and the quantization a method asks for."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tinyml_exp.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import tf_keras

log = logging.getLogger(__name__)

QUANTIZE_MODES = ("none", "int8", "dynamic", "float16")


@dataclass(frozen=True)
class TFLiteRecipe:
    """How to convert a Keras model.

    quantize: none (float32) | int8 (full integer, int8 input and output) | dynamic (int8 weights,
    float activations) | float16 (float16 weights).
    quantization_aware: the model carries fake-quant nodes from QAT; its ranges come from training,
    so the converter must not be forced to int8-only builtins (that demands a representative set).
    """

    quantize: str = "none"
    quantization_aware: bool = False

    def __post_init__(self) -> None:
        if self.quantize not in QUANTIZE_MODES:
            raise ConfigError(f"quantize={self.quantize!r} is not one of {', '.join(QUANTIZE_MODES)}")

    @property
    def full_integer(self) -> bool:
        return self.quantize == "int8"

    @property
    def runs_on_tflm(self) -> bool:
        """TFLM has no hybrid kernels (float activations × int8 weights, what `dynamic` makes) and
        cannot dequantize float16 weights: those models run in TFLite, not on a microcontroller."""
        return self.quantize in ("none", "int8")


def convert(model: tf_keras.Model, recipe: TFLiteRecipe, representative_x: np.ndarray | None = None) -> bytes:
    """Convert with batch fixed to 1: a dynamic batch adds SHAPE/STRIDED_SLICE/PACK ops that TFLM
    and the C generator would have to carry for nothing."""
    import numpy as np
    import tensorflow as tf

    input_shape = (1, *model.input_shape[1:])

    @tf.function(input_signature=[tf.TensorSpec(input_shape, tf.float32, name="image")])
    def serve(x: tf.Tensor) -> tf.Tensor:
        return model(x, training=False)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], model)
    if recipe.quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if recipe.quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif recipe.quantize == "int8":
        if not recipe.quantization_aware:
            if representative_x is None or len(representative_x) == 0:
                raise ConfigError(
                    "full-integer quantization needs representative samples (export.representative_samples > 0)"
                )
            samples = representative_x.astype(np.float32)

            def representative_dataset():
                for sample in samples:
                    yield [sample[None, ...]]

            converter.representative_dataset = representative_dataset
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()
