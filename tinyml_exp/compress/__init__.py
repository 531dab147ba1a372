"""Compress stage: the `compression` group.

Options: one `conf/compression/<name>.yaml` each, served by the class registered for `<name>` in
a module of this package (found by `tinyml_exp.config.discover_options`, no list to keep).
"""

from __future__ import annotations

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
