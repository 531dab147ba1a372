"""Compress stage: the `compression` group.

Options: none, ptq_int8, ptq_dynamic, ptq_float16 (`none.py`); prune_constant, prune_polynomial,
prune_structured (`pruning.py`); cluster (`clustering.py`); qat, pqat, cqat, pcqat (`qat.py`).
"""

from __future__ import annotations

from tinyml_exp.compress import clustering, none, pruning, qat  # noqa: F401  (registers the options)
from tinyml_exp.compress.base import CompressionMethod, CompressResult, FineTuneSettings
from tinyml_exp.compress.invariants import InvariantError, enforce_invariants
from tinyml_exp.compress.measure import parameter_counts

__all__ = [
    "CompressResult",
    "CompressionMethod",
    "FineTuneSettings",
    "InvariantError",
    "enforce_invariants",
    "parameter_counts",
]
