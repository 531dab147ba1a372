"""MobileNetV1 as in the MLPerf Tiny visual-wake-words benchmark (α = 0.25, 96 × 96 × 3, 2 classes).

Conv(32α, 3 × 3, stride 2) → 13 depthwise-separable blocks (3 × 3 depthwise + 1 × 1 pointwise,
each followed by BatchNorm and ReLU; pointwise widths 64, 128, 128, 256, 256, 512 × 6, 1024, 1024
times α, stride 2 at blocks 2, 4, 6 and 12) → average pooling over the whole map → Dense.
On 96 × 96 × 3 inputs with α = 0.25: 7,489,664 MACs and 221,794 parameters (the reference's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tinyml_exp.models.base import Architecture
from tinyml_exp.registry import register_option

if TYPE_CHECKING:
    import tf_keras

# (pointwise filters at α = 1, depthwise stride) of the 13 blocks
_BLOCKS = (
    [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
)


@register_option("architecture", "mobilenet_v1")
@dataclass
class MobileNetV1(Architecture):
    alpha: float = 0.25
    first_filters: int = 32  # at α = 1
    blocks: int = 13  # the first `blocks` of the 13 (fewer for tiny test models)
    weight_decay: float = 1e-4

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> tf_keras.Model:
        import tf_keras as keras

        layers = keras.layers
        l2 = keras.regularizers.l2(self.weight_decay)

        def bn_relu(x: tf_keras.layers.Layer, name: str) -> tf_keras.layers.Layer:
            x = layers.BatchNormalization(name=f"{name}_bn")(x)
            return layers.Activation("relu", name=f"{name}_relu")(x)

        inputs, x = self.image_input(input_shape)
        x = layers.Conv2D(int(self.first_filters * self.alpha), 3, strides=2, padding="same",
                          kernel_initializer="he_normal", kernel_regularizer=l2, name="conv1")(x)  # fmt: skip
        x = bn_relu(x, "conv1")
        for b, (filters, stride) in enumerate(_BLOCKS[: self.blocks], start=1):
            x = layers.DepthwiseConv2D(3, strides=stride, padding="same", depthwise_initializer="he_normal",
                                       depthwise_regularizer=l2, name=f"b{b}_dw")(x)  # fmt: skip
            x = bn_relu(x, f"b{b}_dw")
            x = layers.Conv2D(int(filters * self.alpha), 1, padding="same", kernel_initializer="he_normal",
                              kernel_regularizer=l2, name=f"b{b}_pw")(x)  # fmt: skip
            x = bn_relu(x, f"b{b}_pw")
        x = layers.AveragePooling2D(pool_size=(int(x.shape[1]), int(x.shape[2])), name="pool")(x)
        x = layers.Flatten(name="flatten")(x)
        outputs = layers.Dense(num_classes, activation=self.classifier_activation(), name="dense")(x)
        return keras.Model(inputs, outputs, name=self.name)
