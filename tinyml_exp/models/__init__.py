"""Models stage: the `architecture` group, training, and the base-model cache."""

from __future__ import annotations

from typing import TYPE_CHECKING

from omegaconf import DictConfig

from tinyml_exp.models.base import Architecture
from tinyml_exp.registry import to_object

if TYPE_CHECKING:
    import tf_keras

__all__ = ["Architecture", "build_model"]


def build_model(cfg: DictConfig, input_shape: tuple[int, ...], num_classes: int) -> tf_keras.Model:
    architecture: Architecture = to_object(cfg)
    return architecture.build(input_shape, num_classes)
