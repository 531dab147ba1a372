"""The fully connected autoencoder of the MLPerf Tiny anomaly-detection benchmark (ToyADMOS).

640 → Dense(128) × 4 → Dense(8) → Dense(128) × 4 → Dense(640), every hidden layer followed by
BatchNorm and ReLU, trained to reproduce its input (mean squared error); the anomaly score is the
reconstruction error. On 640 inputs: 264,192 MACs and 269,992 parameters, 4,128 of them BatchNorm
statistics (the reference's figures).

A regression model: its output has the input's size, whatever the dataset's class count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tinyml_exp.models.base import Architecture
from tinyml_exp.registry import register_option

if TYPE_CHECKING:
    import tf_keras


@register_option("architecture", "fc_autoencoder")
@dataclass
class FCAutoencoder(Architecture):
    hidden_units: list[int] = field(default_factory=lambda: [128, 128, 128, 128])
    bottleneck: int = 8
    loss: str = "mse"  # a reconstruction task, not a classifier
    task: str = "autoencoder"  # the target is the input (tinyml_exp/tasks.py)

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> tf_keras.Model:
        import tf_keras as keras

        layers = keras.layers
        features = math.prod(input_shape)
        inputs = keras.Input(shape=input_shape, name="features")
        x = layers.Flatten(name="flatten")(inputs) if len(input_shape) > 1 else inputs
        widths = [*self.hidden_units, self.bottleneck, *reversed(self.hidden_units)]
        for i, units in enumerate(widths):
            x = layers.Dense(units, name=f"dense{i}")(x)
            x = layers.BatchNormalization(name=f"dense{i}_bn")(x)
            x = layers.Activation("relu", name=f"dense{i}_relu")(x)
        outputs = layers.Dense(features, name="reconstruction")(x)
        return keras.Model(inputs, outputs, name=self.name)
