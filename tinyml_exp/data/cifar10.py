"""CIFAR-10 from the official binary version (`data_batch_*.bin`, `test_batch.bin`) or one `.npz`.

The pickled "python version" is refused on purpose: unpickling runs code from the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


from tinyml_exp.data.base import Dataset
from tinyml_exp.data.npz import read_npz
from tinyml_exp.errors import DataError
from tinyml_exp.registry import register_option

_RECORD_BYTES = 1 + 32 * 32 * 3  # label byte + 3 colour planes of 32 × 32


def read_cifar_bin(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One binary batch file -> (images N × 32 × 32 × 3 uint8, labels N)."""
    import numpy as np

    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % _RECORD_BYTES:
        raise DataError(f"{path}: {raw.size} bytes is not a whole number of CIFAR-10 records")
    records = raw.reshape(-1, _RECORD_BYTES)
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # planes -> HWC
    return np.ascontiguousarray(images), records[:, 0].copy()


@register_option("dataset", "cifar10")
@dataclass
class Cifar10Dataset(Dataset):
    """`path` is a directory with the binary batches, or an `.npz` with x_train/y_train/x_test/y_test."""

    def read(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        import numpy as np

        hint = (
            "download 'CIFAR-10 binary version' from https://www.cs.toronto.edu/~kriz/cifar.html, "
            "unpack it and set dataset.path to the cifar-10-batches-bin directory (or an .npz)"
        )
        if self.path is None:
            raise DataError(f"dataset.path is not set for cifar10; {hint}")
        root = Path(self.path).expanduser()
        if root.suffix == ".npz" and root.is_file():
            npz = read_npz(root)  # no pickle; a corrupt file or a missing array is one DataError
            return (npz["x_train"], npz["y_train"].reshape(-1), npz["x_test"], npz["y_test"].reshape(-1))
        train_files = sorted(root.glob("data_batch_*.bin"))
        test_file = root / "test_batch.bin"
        if not train_files or not test_file.is_file():
            raise DataError(
                f"cifar10: no data_batch_*.bin / test_batch.bin in dataset.path={str(root)!r}; {hint}"
            )
        parts = [read_cifar_bin(f) for f in train_files]
        x_test, y_test = read_cifar_bin(test_file)
        return (
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            x_test,
            y_test,
        )
