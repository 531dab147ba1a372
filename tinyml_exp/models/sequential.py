"""A network written as a YAML list of layers: `layers: [{type: Conv2D, filters: 12, ...}, ...]`.

Each entry is a Keras layer: `type` names it, every other key is its keyword argument (so each
is a sweepable key: `architecture.layers.0.filters=8`). A `Dense` without `units` (or with
`units: classes`) has one unit per class; the last layer, when it is a `Dense` without an
`activation`, takes the classifier's (logits, or softmax with `softmax_output: true`).

The input is viewed as the first spatial layer needs: images gain a channel axis (N × H × W →
N × H × W × 1, the Reshape `to_hwc` of the built-in networks), 1-D windows of one channel gain
theirs (N × T → N × T × 1). The 1-D layers (Conv1D, MaxPooling1D, AveragePooling1D,
GlobalAveragePooling1D, GlobalMaxPooling1D) are built as their 2-D twins on a T × 1 × C view of
the signal, with the same weights and results; that view converts to RESHAPE + CONV_2D, which
every backend here runs (a Keras Conv1D converts to EXPAND_DIMS, which the C generator lacks).
`activation: hard_swish` is x · min(max(x/6 + 1/2, 0), 1) from built-in layers (Keras 2 has none),
so a saved model needs no custom objects; `relu6` is Keras's own.
An option named `sequential` or `<anything>_sequential` is one of these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tinyml_exp.errors import ConfigError
from tinyml_exp.models.base import Architecture
from tinyml_exp.registry import register_option

if TYPE_CHECKING:
    import tf_keras

# 1-D layer -> (its 2-D twin, the keyword arguments that become (value, 1) pairs)
ONE_D = {
    "Conv1D": ("Conv2D", ("kernel_size", "strides", "dilation_rate")),
    "MaxPooling1D": ("MaxPooling2D", ("pool_size", "strides")),
    "AveragePooling1D": ("AveragePooling2D", ("pool_size", "strides")),
    "GlobalAveragePooling1D": ("GlobalAveragePooling2D", ()),
    "GlobalMaxPooling1D": ("GlobalMaxPooling2D", ()),
}
TWO_D = (
    "Conv2D",
    "DepthwiseConv2D",
    "SeparableConv2D",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "ZeroPadding2D",
)
OTHER = ("Dense", "BatchNormalization", "Dropout", "Flatten", "Reshape", "Activation", "ReLU")
LAYER_TYPES = (*ONE_D, *TWO_D, *OTHER)
HARD_SWISH = "hard_swish"


@register_option("architecture", "sequential")
@register_option("architecture", "*_sequential")
@dataclass
class Sequential(Architecture):
    layers: list[dict[str, Any]] = field(default_factory=list)
    model_name: str | None = None  # the Keras model's name; null = the option's name

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> tf_keras.Model:
        import tf_keras as keras

        specs = [self._checked(i, spec) for i, spec in enumerate(self.layers)]
        if not specs:
            raise ConfigError(f"architecture.layers of {self.name} is empty: list the network's layers")
        inputs, x = self._input(input_shape, specs)
        view = None  # the T × C shape a 1-D layer's T × 1 × C view stands for
        for i, spec in enumerate(specs):
            kind = spec["type"]
            if kind in ONE_D and view is None:
                view = tuple(x.shape[1:]) if len(x.shape) == 3 else (x.shape[1], 1)
                x = keras.layers.Reshape((view[0], 1, view[1]), name=f"l{i}_to_t1c")(x)
            elif kind not in ONE_D and view is not None and kind not in ("Flatten", "Dense"):
                x = self._from_view(x, i)
                view = None
            last = i == len(specs) - 1
            x = self._apply(i, spec, x, num_classes, last)
        if view is not None and len(x.shape) == 4:
            x = self._from_view(x, len(specs))
        if tuple(x.shape[1:]) != (num_classes,):
            raise ConfigError(
                f"architecture.layers of {self.name} end in shape {list(x.shape[1:])}, not [{num_classes}] "
                "(one value per class): end with Flatten (or a global pooling) and a Dense without units"
            )
        return keras.Model(inputs, x, name=self.model_name or self.name)

    def _checked(self, i: int, spec: Any) -> dict[str, Any]:
        if not isinstance(spec, dict) or spec.get("type") not in LAYER_TYPES:
            kind = spec.get("type") if isinstance(spec, dict) else spec
            raise ConfigError(f"architecture.layers.{i}.type={kind!r} is not one of {', '.join(LAYER_TYPES)}")
        return dict(spec)

    def _input(self, input_shape: tuple[int, ...], specs: list[dict[str, Any]]) -> tuple[Any, Any]:
        """The input and the view the first spatial layer needs (images gain a channel axis)."""
        import tf_keras as keras

        first = next((s["type"] for s in specs if s["type"] in TWO_D or s["type"] in ONE_D), None)
        if first in TWO_D and len(input_shape) in (2, 3):
            return self.image_input(input_shape)
        inputs = keras.Input(shape=input_shape, name="image")
        if first in ONE_D and len(input_shape) == 1:
            return inputs, keras.layers.Reshape((input_shape[0], 1), name="to_tc")(inputs)
        return inputs, inputs

    @staticmethod
    def _from_view(x: Any, i: int) -> Any:
        import tf_keras as keras

        return keras.layers.Reshape((x.shape[1], x.shape[3]), name=f"l{i}_to_tc")(x)

    def _apply(self, i: int, spec: dict[str, Any], x: Any, num_classes: int, last: bool) -> Any:
        """Build the layer of `spec` (its 2-D twin for a 1-D layer) and call it on `x`."""
        import tf_keras as keras

        kind, kwargs = spec.pop("type"), spec
        kwargs.setdefault("name", f"l{i}_{kind.lower()}")
        if kind == "Dense" and kwargs.get("units", "classes") in ("classes", None):
            kwargs["units"] = num_classes
        if kind == "Dense" and last and "activation" not in kwargs:
            kwargs["activation"] = self.classifier_activation()
        if kind in ONE_D:
            kind, pairs = ONE_D[kind]
            kwargs.update({k: _pair(kwargs[k]) for k in pairs if kwargs.get(k) is not None})
        hard_swish = kwargs.get("activation") == HARD_SWISH
        if hard_swish:
            kwargs["activation"] = None if kind != "Activation" else "linear"
        try:
            y = getattr(keras.layers, kind)(**kwargs)(x)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"architecture.layers.{i} ({kind}): {e}") from e
        return hard_swish_block(y, kwargs["name"]) if hard_swish else y


def _pair(value: Any) -> tuple[int, int]:
    """A 1-D size (n or [n]) as the (n, 1) of the T × 1 × C view."""
    n = value[0] if isinstance(value, (list, tuple)) else value
    return (int(n), 1)


def hard_swish_block(x: Any, name: str) -> Any:
    """x · relu6(x + 3) / 6, written as x · min(max(x/6 + 1/2, 0), 1) with built-in layers."""
    import tf_keras as keras

    gate = keras.layers.Rescaling(1.0 / 6.0, offset=0.5, name=f"{name}_hs_scale")(x)
    gate = keras.layers.ReLU(max_value=1.0, name=f"{name}_hs_clip")(gate)
    return keras.layers.Multiply(name=f"{name}_hs")([x, gate])
