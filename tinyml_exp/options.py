"""The group options of a run, as their classes (`Options.from_config(cfg)`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from tinyml_exp.compress import CompressionMethod
    from tinyml_exp.data import Dataset
    from tinyml_exp.models import Architecture
    from tinyml_exp.sources import ModelSource
    from tinyml_exp.targets import Target

GROUPS = ("dataset", "architecture", "compression", "target", "model")


@dataclass
class Options:
    """The group options of a run, as their classes."""

    dataset: Dataset
    architecture: Architecture
    compression: CompressionMethod
    target: Target
    model: ModelSource

    @classmethod
    def from_config(cls, cfg: DictConfig) -> Options:
        from tinyml_exp.config import to_object

        return cls(*(to_object(cfg[group]) for group in GROUPS))
