"""Byte counts of artifacts, raw and gzipped, and compression factors between them."""

from __future__ import annotations

import gzip
from pathlib import Path


def gzip_bytes(data: bytes) -> int:
    """Size after gzip at the highest level: what a sparse or clustered model's redundancy is
    worth when stored or sent compressed (the raw `.tflite` is what a board must hold)."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def file_sizes(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    return len(data), gzip_bytes(data)


def factor(reference_bytes: int, bytes_: int) -> float:
    """How many times smaller than the reference (> 1 means smaller)."""
    if bytes_ <= 0:
        raise ValueError(f"cannot compare with an empty artifact ({bytes_} bytes)")
    return reference_bytes / bytes_
