"""Compress stage: the `compression` group.

Options: none, ptq_int8, ptq_dynamic, ptq_float16 (`none.py`); prune_constant, prune_polynomial,
prune_structured (`pruning.py`); cluster (`clustering.py`); qat, pqat, cqat, pcqat (`qat.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinyml_exp.compress import clustering, none, pruning, qat  # noqa: F401  (registers the options)
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
