"""Arrays a user brings in one `.npz`: `x_train, y_train, x_test, y_test` (+ optional `class_names`).

Any input rank: 1-D sensor windows (N × T or N × T × C), spectrograms, images. `uint8` inputs are
pixels and are scaled to [0, 1]; float inputs are kept as they are (normalise them beforehand, or
set `scale`); other integer types become float32 unscaled. Labels are integers 0 … classes − 1.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tinyml_exp.data.base import Dataset
from tinyml_exp.errors import DataError
from tinyml_exp.registry import register_option

if TYPE_CHECKING:
    import numpy as np

ARRAYS = ("x_train", "y_train", "x_test", "y_test")
# What numpy raises for a file that is not an .npz it can read without pickle.
_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, RuntimeError)


class NpzError(DataError, ValueError):
    """An `.npz` that cannot be read without pickle, or lacks an array (a ValueError, as numpy's own)."""


def read_npz(path: Path, required: tuple[str, ...] = ARRAYS) -> dict[str, np.ndarray]:
    """Every array of `path` (no pickle: an object array is refused); `NpzError` if one of
    `required` is missing or the file is not an `.npz`."""
    import numpy as np

    try:
        loaded = np.load(path, allow_pickle=False)
    except _READ_ERRORS as e:
        raise NpzError(f"{path} is not a readable .npz ({type(e).__name__}: {e})") from e
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise NpzError(f"{path} is a single .npy array, not an .npz holding {list(required)}")
    with loaded as npz:
        missing = [name for name in required if name not in npz.files]
        if missing:
            raise NpzError(f"{path} lacks arrays {missing}; it holds {sorted(npz.files)}")
        try:
            return {name: npz[name] for name in npz.files}
        except _READ_ERRORS as e:  # a member that is not an array, or one cut short
            raise NpzError(f"{path}: an array cannot be read ({type(e).__name__}: {e})") from e


def check_labels(labels: np.ndarray, split: str, where: str) -> np.ndarray:
    """Integer class labels as a 1-D array (N or N × 1 accepted)."""
    import numpy as np

    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels.reshape(-1)
    if labels.ndim != 1:
        raise DataError(
            f"{where}: y_{split} has shape {list(labels.shape)}; expected one integer label per sample"
        )
    whole = labels.dtype.kind in "iub" or (
        labels.dtype.kind == "f" and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels))
    )
    if not whole:
        raise DataError(f"{where}: y_{split} holds {labels.dtype} values; expected integer class labels")
    return labels.astype(np.int64)


def check_inputs(x: np.ndarray, y: np.ndarray, split: str, where: str) -> None:
    import numpy as np

    if x.ndim < 2:
        raise DataError(f"{where}: x_{split} has shape {list(x.shape)}; expected N × (sample shape)")
    if len(x) != len(y):
        raise DataError(f"{where}: x_{split} has {len(x)} samples but y_{split} has {len(y)} labels")
    if x.dtype.kind not in "iufb":
        raise DataError(f"{where}: x_{split} has dtype {x.dtype}; expected numbers")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        raise DataError(f"{where}: x_{split} holds NaN or infinite values")


@register_option("dataset", "npz")
@dataclass
class NpzDataset(Dataset):
    """`path`: the `.npz`. `class_names`: [] = the file's `class_names` array, else "0" … "K−1"."""

    class_names: list[str] = field(default_factory=list)
    scale: float | None = None  # null: uint8 / 255, others as they are; a number multiplies x

    def read(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        import numpy as np

        if self.path is None:
            raise DataError(
                "dataset.path is not set: point it at an .npz with x_train, y_train, x_test, y_test"
            )
        path = Path(self.path).expanduser()
        if not path.is_file():
            raise DataError(f"dataset.path={str(path)!r}: no such file")
        arrays = read_npz(path)
        y_train = check_labels(arrays["y_train"], "train", str(path))
        y_test = check_labels(arrays["y_test"], "test", str(path))
        x_train, x_test = arrays["x_train"], arrays["x_test"]
        check_inputs(x_train, y_train, "train", str(path))
        check_inputs(x_test, y_test, "test", str(path))
        if x_train.shape[1:] != x_test.shape[1:]:
            raise DataError(
                f"{path}: x_train samples are {list(x_train.shape[1:])} but x_test samples {list(x_test.shape[1:])}"
            )
        if not self.class_names:
            self.class_names = self._names(arrays, y_train, y_test)
        if self.scale is not None:
            x_train, x_test = (x.astype(np.float32) * np.float32(self.scale) for x in (x_train, x_test))
        return x_train, y_train, x_test, y_test

    @staticmethod
    def _names(arrays: dict[str, np.ndarray], y_train: np.ndarray, y_test: np.ndarray) -> list[str]:
        if "class_names" in arrays:
            return [str(n) for n in arrays["class_names"].reshape(-1)]
        top = max(int(y_train.max(initial=0)), int(y_test.max(initial=0)))
        return [str(i) for i in range(top + 1)]
