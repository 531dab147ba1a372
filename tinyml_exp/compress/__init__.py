"""Compress stage: the `compression` group.

Options: one `conf/compression/<name>.yaml` each, served by the class registered for `<name>` in
a module of this package (found by `tinyml_exp.config.discover_options`, no list to keep).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinyml_exp.compress.base import CompressionMethod, CompressResult, FineTuneSettings
from tinyml_exp.compress.invariants import InvariantError, enforce_invariants
from tinyml_exp.compress.measure import parameter_counts

if TYPE_CHECKING:
    import tf_keras

    from tinyml_exp.data import DatasetSplits


def compress(
    method: CompressionMethod, model: tf_keras.Model, data: DatasetSplits, settings: FineTuneSettings
) -> CompressResult:
    """Apply `method` to the base `model` (not modified) and check its promises on the Keras
    model after each phase; a lost one raises `InvariantError` carrying the result."""
    result = method.apply(model, data, settings)
    enforce_invariants(result, result.checks)
    return result


__all__ = [
    "CompressResult",
    "CompressionMethod",
    "FineTuneSettings",
    "InvariantError",
    "compress",
    "enforce_invariants",
    "parameter_counts",
]
