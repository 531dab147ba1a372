"""The course's CNN: Reshape → Conv2D(12, 3×3, relu) → MaxPool(2) → Flatten → Dense(10).

On 28 × 28 × 1 inputs it has 20,410 parameters: conv 12·(3·3·1) + 12 = 120, dense 2,028·10 + 10.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tinyml_exp.models.base import Architecture
from tinyml_exp.registry import register_option

if TYPE_CHECKING:
    import tf_keras


@register_option("architecture", "seed_cnn")
@dataclass
class SeedCNN(Architecture):
    filters: int = 12
    kernel_size: int = 3
    pool_size: int = 2
    activation: str = "relu"

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> tf_keras.Model:
        import tf_keras as keras

        inputs, x = self.image_input(input_shape)
        x = keras.layers.Conv2D(self.filters, self.kernel_size, activation=self.activation, name="conv")(x)
        x = keras.layers.MaxPooling2D(self.pool_size, name="pool")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        outputs = keras.layers.Dense(num_classes, activation=self.classifier_activation(), name="dense")(x)
        return keras.Model(inputs, outputs, name=self.name)
