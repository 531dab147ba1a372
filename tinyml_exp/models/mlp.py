"""A small multi-layer perceptron: Flatten → Dense(hidden, relu)… → Dense(classes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tinyml_exp.models.base import Architecture
from tinyml_exp.registry import register_option

if TYPE_CHECKING:
    import tf_keras


@register_option("architecture", "mlp")
@dataclass
class MLP(Architecture):
    hidden_units: list[int] = field(default_factory=lambda: [64])
    activation: str = "relu"

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> tf_keras.Model:
        import tf_keras as keras

        inputs = keras.Input(shape=input_shape, name="image")
        x = keras.layers.Flatten(name="flatten")(inputs)
        for i, units in enumerate(self.hidden_units):
            x = keras.layers.Dense(units, activation=self.activation, name=f"hidden{i}")(x)
        outputs = keras.layers.Dense(num_classes, activation=self.classifier_activation(), name="dense")(x)
        return keras.Model(inputs, outputs, name=self.name)
