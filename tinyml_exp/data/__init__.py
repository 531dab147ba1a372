"""Data stage: the `dataset` group. `load_dataset(cfg, seed)` returns normalised splits."""

from __future__ import annotations

from omegaconf import DictConfig

from tinyml_exp.data.base import Dataset, DatasetSplits
from tinyml_exp.registry import to_object

__all__ = ["Dataset", "DatasetSplits", "load_dataset"]


def load_dataset(cfg: DictConfig, seed: int) -> DatasetSplits:
    dataset: Dataset = to_object(cfg)
    return dataset.load(seed)
