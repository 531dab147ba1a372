"""The function `conf/architecture/builder.yaml` names: an example of what `builder` calls.

Your own lives in your project (`function: my_models:build_net`); it has this signature.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tf_keras


def small_cnn(input_shape: tuple[int, ...], num_classes: int, filters: int = 8) -> tf_keras.Model:
    """Conv2D(filters, 3×3, relu) → global average pooling → Dense(classes, logits)."""
    import tf_keras as keras

    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Reshape((*input_shape, 1) if len(input_shape) == 2 else input_shape, name="to_hwc")(
        inputs
    )
    x = keras.layers.Conv2D(filters, 3, activation="relu", name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, name="dense")(x)
    return keras.Model(inputs, outputs, name="small_cnn")
