"""DS-CNN as in the MLPerf Tiny keyword-spotting benchmark (Speech Commands, 49 × 10 × 1 MFCCs).

Conv(64, 10 × 4, stride 2, same) → four depthwise-separable blocks (3 × 3 depthwise + 1 × 1
pointwise, 64 channels, each followed by BatchNorm and ReLU) → average pooling → Dense(12).
On 49 × 10 × 1 inputs: 2,656,768 MACs (first conv 320,000, blocks 4 × 584,000, dense 768) and
24,908 parameters of which 1,280 are BatchNorm statistics (the reference's figures).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tinyml_exp.models.base import Architecture
from tinyml_exp.registry import register_option

if TYPE_CHECKING:
    import tf_keras


@register_option("architecture", "ds_cnn")
@dataclass
class DSCNN(Architecture):
    filters: int = 64
    first_kernel: list[int] = field(default_factory=lambda: [10, 4])
    first_strides: list[int] = field(default_factory=lambda: [2, 2])
    blocks: int = 4
    dropout: list[float] = field(default_factory=lambda: [0.2, 0.4])  # after the first conv, before pooling
    weight_decay: float = 1e-4

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> tf_keras.Model:
        import tf_keras as keras

        layers = keras.layers
        l2 = keras.regularizers.l2(self.weight_decay)
        inputs, x = self.image_input(input_shape)
        x = layers.Conv2D(self.filters, tuple(self.first_kernel), strides=tuple(self.first_strides),
                          padding="same", kernel_regularizer=l2, name="conv1")(x)  # fmt: skip
        x = layers.BatchNormalization(name="conv1_bn")(x)
        x = layers.Activation("relu", name="conv1_relu")(x)
        x = layers.Dropout(self.dropout[0], name="conv1_drop")(x)
        for b in range(1, self.blocks + 1):
            x = layers.DepthwiseConv2D(3, padding="same", depthwise_regularizer=l2, name=f"b{b}_dw")(x)
            x = layers.BatchNormalization(name=f"b{b}_dw_bn")(x)
            x = layers.Activation("relu", name=f"b{b}_dw_relu")(x)
            x = layers.Conv2D(self.filters, 1, padding="same", kernel_regularizer=l2, name=f"b{b}_pw")(x)
            x = layers.BatchNormalization(name=f"b{b}_pw_bn")(x)
            x = layers.Activation("relu", name=f"b{b}_pw_relu")(x)
        x = layers.Dropout(self.dropout[1], name="drop")(x)
        # The reference pools (input_h // 2, input_w // 2): one output pixel on its 25 × 5 map.
        map_h, map_w = int(x.shape[1]), int(x.shape[2])
        in_h, in_w = int(input_shape[0]), int(input_shape[1]) if len(input_shape) > 1 else 1
        pool = (
            max(1, min(in_h // self.first_strides[0], map_h)),
            max(1, min(in_w // self.first_strides[1], map_w)),
        )
        x = layers.AveragePooling2D(pool_size=pool, name="pool")(x)
        x = layers.Flatten(name="flatten")(x)
        outputs = layers.Dense(num_classes, activation=self.classifier_activation(), name="dense")(x)
        return keras.Model(inputs, outputs, name=self.name)
