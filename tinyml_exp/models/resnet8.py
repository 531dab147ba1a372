"""ResNet-8 as in the MLPerf Tiny image-classification benchmark (CIFAR-10, 32 × 32 × 3).

Conv(16) → three residual stacks (16, 32, 64 filters; stacks 2 and 3 halve the resolution with a
1 × 1 strided shortcut) → global average pooling → Dense. ≈ 78 k parameters on CIFAR-10.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tinyml_exp.models.base import Architecture
from tinyml_exp.registry import register_option

if TYPE_CHECKING:
    import tf_keras


@register_option("architecture", "resnet8")
@dataclass
class ResNet8(Architecture):
    filters: list[int] = field(default_factory=lambda: [16, 32, 64])
    weight_decay: float = 1e-4

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> tf_keras.Model:
        import tf_keras as keras

        layers = keras.layers

        def conv(filters: int, kernel: int, strides: int, name: str) -> tf_keras.layers.Layer:
            return layers.Conv2D(
                filters,
                kernel,
                strides=strides,
                padding="same",
                kernel_initializer="he_normal",
                kernel_regularizer=keras.regularizers.l2(self.weight_decay),
                name=name,
            )

        inputs, x = self.image_input(input_shape)
        x = conv(self.filters[0], 3, 1, "stem_conv")(x)
        x = layers.BatchNormalization(name="stem_bn")(x)
        x = layers.Activation("relu", name="stem_relu")(x)
        in_filters = self.filters[0]
        for stack, filters in enumerate(self.filters, start=1):
            strides = 1 if stack == 1 else 2
            y = conv(filters, 3, strides, f"s{stack}_conv1")(x)
            y = layers.BatchNormalization(name=f"s{stack}_bn1")(y)
            y = layers.Activation("relu", name=f"s{stack}_relu1")(y)
            y = conv(filters, 3, 1, f"s{stack}_conv2")(y)
            y = layers.BatchNormalization(name=f"s{stack}_bn2")(y)
            if strides != 1 or filters != in_filters:
                x = conv(filters, 1, strides, f"s{stack}_shortcut")(x)
            x = layers.Add(name=f"s{stack}_add")([x, y])
            x = layers.Activation("relu", name=f"s{stack}_relu2")(x)
            in_filters = filters
        x = layers.GlobalAveragePooling2D(name="pool")(x)
        outputs = layers.Dense(num_classes, activation=self.classifier_activation(), name="dense")(x)
        return keras.Model(inputs, outputs, name=self.name)
