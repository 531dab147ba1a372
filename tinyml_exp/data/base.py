"""What every dataset option shares: limits, validation split, normalisation, the loaded splits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from omegaconf import MISSING

from tinyml_exp.errors import DataError

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class DatasetSplits:
    """Inputs as float32 (uint8 pixels scaled to [0, 1]; shape N × sample shape, e.g. N × H × W,
    N × H × W × C or N × T × C) and integer labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


@dataclass
class Dataset:
    """Base schema of the `dataset` group; options add where and how to read their files."""

    name: str = MISSING
    path: str | None = None
    train_limit: int | None = None  # null = all
    test_limit: int | None = None  # null = all
    val_fraction: float = 0.1  # taken from the training set, after train_limit
    class_names: list[str] = MISSING

    def read(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Raw (x_train uint8, y_train, x_test uint8, y_test) arrays. Options override this."""
        raise NotImplementedError

    def load(self, seed: int) -> DatasetSplits:
        """Read, limit, split and normalise. The split is a seeded shuffle, so it is reproducible.
        In a process that keeps what it loaded (`keep_loaded`), the same option and seed give the
        splits loaded before, read-only."""
        key = (type(self).__module__, type(self).__qualname__, repr(self), seed)
        if _kept is not None and _kept[0] == key:
            return _kept[1]
        splits = self._read_split_normalise(seed)
        if _keep:
            _kept_splits(key, splits)
        return splits

    def _read_split_normalise(self, seed: int) -> DatasetSplits:
        import numpy as np

        x_train, y_train, x_test, y_test = self.read()
        check_label_range(self.name, len(self.class_names), y_train, y_test)
        if self.train_limit is not None:
            x_train, y_train = x_train[: self.train_limit], y_train[: self.train_limit]
        if self.test_limit is not None:
            x_test, y_test = x_test[: self.test_limit], y_test[: self.test_limit]
        order = np.random.default_rng(seed).permutation(len(y_train))
        n_val = round(len(order) * self.val_fraction)
        val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
        return DatasetSplits(
            name=self.name,
            x_train=normalise(x_train[train_idx]),
            y_train=y_train[train_idx].astype(np.int64),
            x_val=normalise(x_train[val_idx]),
            y_val=y_train[val_idx].astype(np.int64),
            x_test=normalise(x_test),
            y_test=y_test.astype(np.int64),
            class_names=tuple(self.class_names),
        )


# A sweep worker runs job after job on the same data: it keeps the last splits it loaded (one
# entry: the memory a job holds anyway), so only its first job decodes the files.
_keep = False
_kept: tuple[tuple, DatasetSplits] | None = None


def keep_loaded(keep: bool) -> None:
    """Whether this process keeps the last splits `Dataset.load` returned (a sweep's workers do)."""
    global _keep, _kept
    _keep = keep
    if not keep:
        _kept = None


def _kept_splits(key: tuple, splits: DatasetSplits) -> None:
    global _kept
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        getattr(splits, name).flags.writeable = False  # shared by the process's jobs: never changed
    _kept = (key, splits)


def check_label_range(name: str, num_classes: int, y_train: np.ndarray, y_test: np.ndarray) -> None:
    """Every label is a class index: 0 … num_classes − 1 (a label past the end fails the loss late)."""
    for split, y in zip(("train", "test"), (y_train, y_test), strict=True):
        if len(y) == 0:
            raise DataError(f"{name}: the {split} split is empty")
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= num_classes:
            raise DataError(
                f"{name}: {split} labels span {low} … {high} but there are {num_classes} classes "
                f"(dataset.class_names); labels must be 0 … {num_classes - 1}"
            )


def normalise(images: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1] (float input passes through unchanged)."""
    import numpy as np

    if images.dtype == np.uint8:
        return images.astype(np.float32) / np.float32(255.0)
    return images.astype(np.float32, copy=False)
