"""An existing Keras model file (`.keras` or `.h5`, saved with tf_keras / Keras 2) as the base model.

It is trained further only when `train.epochs` > 0 (`train.epochs=0` uses it as it is), then
compressed, exported and measured like any other. Its input must take the dataset's samples
(batch axis aside) and its output one value per class; `softmax_output` must say whether it ends
in a softmax (the loss and the logits handling follow it). An option named `keras_file` or
`<anything>_keras` is one of these.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from omegaconf import MISSING

from tinyml_exp.errors import ConfigError
from tinyml_exp.models.base import Architecture
from tinyml_exp.registry import register_option

if TYPE_CHECKING:
    import tf_keras

SUFFIXES = (".keras", ".h5", ".hdf5")


def load_keras_file(path: Path) -> tf_keras.Model:
    """The model in `path`; `ConfigError` (one line) for a missing file or one that is not a model."""
    import tf_keras as keras

    if path.suffix.lower() not in SUFFIXES:
        raise ConfigError(f"architecture.path={str(path)!r} is not a {'/'.join(SUFFIXES)} Keras model file")
    if not path.is_file():
        raise ConfigError(f"architecture.path={str(path)!r}: no such file")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as e:  # h5py, zipfile and Keras each raise their own types for a bad file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(
            f"architecture.path={str(path)!r} is not a Keras model tf_keras can read "
            f"({type(e).__name__}: {first[:200]})"
        ) from e
    if not isinstance(model, keras.Model):
        raise ConfigError(f"architecture.path={str(path)!r} holds a {type(model).__name__}, not a model")
    return model


def ends_in_softmax(model: tf_keras.Model) -> bool:
    last = model.layers[-1]
    return type(last).__name__ == "Softmax" or last.get_config().get("activation") == "softmax"


@register_option("architecture", "keras_file")
@register_option("architecture", "*_keras")
@dataclass
class KerasFile(Architecture):
    # train.epochs may be 0 for this option (validate.py): the file is the trained model.
    pretrained: ClassVar[bool] = True
    path: str = MISSING  # .keras or .h5 file

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> tf_keras.Model:
        path = Path(self.path).expanduser()
        model = load_keras_file(path)
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ConfigError(f"architecture.path={str(path)!r} has {len(model.inputs)} inputs and "
                              f"{len(model.outputs)} outputs; one of each is supported")  # fmt: skip
        takes = tuple(model.input_shape[1:])
        if len(takes) != len(input_shape) or any(
            t not in (None, s) for t, s in zip(takes, input_shape, strict=True)
        ):
            raise ConfigError(
                f"architecture.path={str(path)!r} takes inputs of shape {list(takes)} but the dataset's "
                f"samples are {list(input_shape)}: pick the matching dataset or re-export the model"
            )
        gives = tuple(model.output_shape[1:])
        if gives != (num_classes,):
            raise ConfigError(
                f"architecture.path={str(path)!r} gives outputs of shape {list(gives)} but the dataset has "
                f"{num_classes} classes"
            )
        if ends_in_softmax(model) != self.softmax_output:
            raise ConfigError(
                f"architecture.path={str(path)!r} {'ends' if ends_in_softmax(model) else 'does not end'} in a "
                f"softmax: set architecture.softmax_output={str(ends_in_softmax(model)).lower()}"
            )
        return model

    def fingerprint(self) -> str:
        """The file's digest: a changed file is a new base model, not a cache hit."""
        path = Path(self.path).expanduser()
        return hashlib.sha256(path.read_bytes()).hexdigest()[:20] if path.is_file() else ""
