"""Base schema of the `architecture` group."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from omegaconf import MISSING

if TYPE_CHECKING:
    import tf_keras


@dataclass
class Architecture:
    name: str = MISSING
    # False: the last layer emits logits (trained with from_logits=True); True: a softmax layer.
    softmax_output: bool = False
    # classification | regression (the labels are float targets) | autoencoder (the target is the
    # input): the loss, the evaluate figures and the benchmark's follow it (tinyml_exp/tasks.py).
    task: str = "classification"
    # True: `build` returns an already trained model, so train.epochs may be 0 (no training).
    pretrained: ClassVar[bool] = False

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> tf_keras.Model:
        raise NotImplementedError

    @staticmethod
    def image_input(input_shape: tuple[int, ...]) -> tuple[tf_keras.layers.Layer, tf_keras.layers.Layer]:
        """An input layer and its view as H × W × C: grey 28 × 28 images gain a channel axis."""
        import tf_keras as keras

        inputs = keras.Input(shape=input_shape, name="image")
        hwc = tuple(input_shape) if len(input_shape) == 3 else (*input_shape, 1)
        return inputs, keras.layers.Reshape(hwc, name="to_hwc")(inputs)

    def fingerprint(self) -> str:
        """A digest of what decides the network besides the config (a user's file); "" = nothing.
        Part of the base-model cache key, so editing that file trains a new base model."""
        return ""

    def classifier_activation(self) -> str | None:
        return "softmax" if self.softmax_output else None
