"""MNIST-format datasets (Fashion-MNIST, MNIST) stored as IDX files, gzipped or not."""

from __future__ import annotations

import gzip
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import MISSING

from tinyml_exp.data.base import Dataset
from tinyml_exp.errors import DataError
from tinyml_exp.registry import register_option

# IDX type codes (third byte of the magic number) -> numpy dtype, big-endian as the format says.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

if TYPE_CHECKING:
    import numpy as np


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (`.gz` or plain) into an array of the shape its header declares."""
    import numpy as np

    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:  # a truncated or corrupt .gz
        raise DataError(f"{path} is not a readable gzip file ({type(e).__name__}: {e})") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number {data[:4].hex()})")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = math.prod(shape) * dtype.itemsize  # exact: a corrupt header must not wrap around
    if len(data) - header != expected:
        raise DataError(f"{path}: header says {shape} ({expected} bytes) but holds {len(data) - header}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


# The generic format: every conf/dataset/*.yaml without a class of its own is a set of IDX files.
@register_option("dataset")
@dataclass
class IdxDataset(Dataset):
    """The four classic files: `{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]` in `path`."""

    # Debian/Ubuntu package that provides the files, named in the error when they are missing.
    package_hint: str = MISSING

    def _find(self, stem: str) -> Path:
        if self.path is None:
            raise DataError(f"dataset.path is not set for {self.name}; {self.package_hint}")
        root = Path(self.path).expanduser()
        for candidate in (root / stem, root / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
        raise DataError(
            f"{self.name}: {stem}[.gz] not found in dataset.path={str(root)!r}; {self.package_hint}"
        )

    def read(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        files = [
            self._find(stem)
            for stem in (
                "train-images-idx3-ubyte",
                "train-labels-idx1-ubyte",
                "t10k-images-idx3-ubyte",
                "t10k-labels-idx1-ubyte",
            )
        ]
        x_train, y_train, x_test, y_test = (read_idx(f) for f in files)
        for images, labels, split in ((x_train, y_train, "train"), (x_test, y_test, "t10k")):
            if len(images) != len(labels):
                raise DataError(f"{self.name}: {split} has {len(images)} images but {len(labels)} labels")
        return x_train, y_train, x_test, y_test
