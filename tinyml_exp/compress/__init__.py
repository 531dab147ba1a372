"""Compress stage: the `compression` group."""

from __future__ import annotations

from tinyml_exp.compress import none  # noqa: F401  (registers the options)
from tinyml_exp.compress.base import CompressionMethod, CompressResult, FineTuneSettings

__all__ = ["CompressResult", "CompressionMethod", "FineTuneSettings"]
