"""Dataset readers on tiny files the tests write (and on the installed Fashion-MNIST), the split, and
the missing-file errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import compose_config, require_dataset
from tinyml_exp.config import to_object
from tinyml_exp.data.base import normalise
from tinyml_exp.data.cifar10 import Cifar10Dataset, read_cifar_bin
from tinyml_exp.data.idx import IdxDataset, read_idx
from tinyml_exp.data.synthetic import SyntheticDataset
from tinyml_exp.errors import DataError

CLASSES = [str(i) for i in range(10)]


def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


def write_mnist_like(root: Path, n_train: int, n_test: int, compress: bool) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    arrays = (
        rng.integers(0, 256, (n_train, 28, 28)),
        rng.integers(0, 10, n_train),
        rng.integers(0, 256, (n_test, 28, 28)),
        rng.integers(0, 10, n_test),
    )
    stems = (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    )
    for stem, array in zip(stems, arrays, strict=True):
        write_idx(root / stem, array, compress)
    return arrays


@pytest.mark.parametrize("compress", [False, True])
def test_idx_files_read_back_exactly(tmp_path: Path, compress: bool) -> None:
    x_train, y_train, x_test, y_test = write_mnist_like(tmp_path, 50, 20, compress)
    ds = IdxDataset(name="fashion_mnist", path=str(tmp_path), class_names=CLASSES, package_hint="hint")
    got = ds.read()
    for expected, actual in zip((x_train, y_train, x_test, y_test), got, strict=True):
        np.testing.assert_array_equal(actual, expected)
    assert got[0].dtype == np.uint8 and got[0].shape == (50, 28, 28)


def test_idx_bad_magic_is_a_data_error(tmp_path: Path) -> None:
    bad = tmp_path / "x"
    bad.write_bytes(b"\x01\x02\x03\x04" + bytes(16))
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(bad)


def test_idx_truncated_file_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "x"
    write_idx(path, np.zeros((3, 2, 2)), compress=False)
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DataError, match="header says"):
        read_idx(path)


def test_missing_files_name_the_path_key_and_the_package(tmp_path: Path) -> None:
    ds = IdxDataset(
        name="mnist", path=str(tmp_path / "nowhere"), class_names=CLASSES, package_hint="apt-get install pkg"
    )
    with pytest.raises(DataError) as info:
        ds.load(seed=0)
    message = str(info.value)
    assert "dataset.path" in message and "nowhere" in message and "apt-get install pkg" in message
    assert "\n" not in message


def test_load_limits_splits_and_normalises(tmp_path: Path) -> None:
    write_mnist_like(tmp_path, 100, 40, compress=True)
    ds = IdxDataset(
        name="mnist", path=str(tmp_path), class_names=CLASSES, package_hint="", train_limit=80, test_limit=30
    )
    splits = ds.load(seed=3)
    assert splits.sizes() == {"train": 72, "val": 8, "test": 30}
    assert splits.x_train.dtype == np.float32 and splits.x_train.min() >= 0.0 and splits.x_train.max() <= 1.0
    assert splits.input_shape == (28, 28) and splits.num_classes == 10
    again = ds.load(seed=3)
    np.testing.assert_array_equal(splits.x_val, again.x_val)
    other = ds.load(seed=4)
    assert not np.array_equal(splits.y_val, other.y_val) or not np.array_equal(splits.x_val, other.x_val)


def cifar_records(n: int, seed: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    chw = rng.integers(0, 256, (n, 3, 32, 32)).astype(np.uint8)
    raw = b"".join(bytes([labels[i]]) + chw[i].tobytes() for i in range(n))
    return raw, chw.transpose(0, 2, 3, 1), labels


def test_cifar_binary_batches(tmp_path: Path) -> None:
    parts = [cifar_records(5, seed) for seed in range(3)]
    for i, (raw, _, _) in enumerate(parts[:2], start=1):
        (tmp_path / f"data_batch_{i}.bin").write_bytes(raw)
    (tmp_path / "test_batch.bin").write_bytes(parts[2][0])
    x_train, _y_train, x_test, y_test = Cifar10Dataset(
        name="cifar10", path=str(tmp_path), class_names=CLASSES
    ).read()
    np.testing.assert_array_equal(x_train, np.concatenate([parts[0][1], parts[1][1]]))
    np.testing.assert_array_equal(y_test, parts[2][2])
    assert x_test.shape == (5, 32, 32, 3)


def test_cifar_truncated_record_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "b.bin"
    path.write_bytes(cifar_records(2, 0)[0][:-5])
    with pytest.raises(DataError, match="whole number"):
        read_cifar_bin(path)


def test_cifar_npz_refuses_pickles(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    np.savez(
        path,
        x_train=np.array([object()], dtype=object),
        y_train=[0],
        x_test=np.zeros((1, 32, 32, 3)),
        y_test=[0],
    )
    with pytest.raises(ValueError, match="pickle"):
        Cifar10Dataset(name="cifar10", path=str(path), class_names=CLASSES).read()


def test_cifar_missing_directory_names_path_key(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"dataset\.path"):
        Cifar10Dataset(name="cifar10", path=str(tmp_path), class_names=CLASSES).read()


def test_synthetic_is_deterministic_and_balanced() -> None:
    ds = SyntheticDataset(name="synthetic", class_names=CLASSES, num_train=200, num_test=50)
    a, b = ds.load(seed=0), ds.load(seed=0)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    counts = np.bincount(np.concatenate([a.y_train, a.y_val]), minlength=10)
    assert counts.min() == counts.max() == 20


def test_synthetic_classes_are_separable_by_nearest_prototype() -> None:
    """The task is learnable: nearest class mean of the training set classifies the test set well."""
    splits = SyntheticDataset(name="synthetic", class_names=CLASSES).load(seed=0)
    means = np.stack([splits.x_train[splits.y_train == c].mean(axis=0) for c in range(10)])
    distances = ((splits.x_test[:, None] - means[None]) ** 2).sum(axis=(2, 3))
    assert (distances.argmin(axis=1) == splits.y_test).mean() > 0.95


def test_normalise_maps_uint8_to_unit_range() -> None:
    out = normalise(np.array([0, 255], dtype=np.uint8))
    assert out.dtype == np.float32 and out.tolist() == [0.0, 1.0]


@require_dataset("fashion_mnist")
def test_the_debian_fashion_mnist_reads_as_the_default_dataset() -> None:
    """The files of Debian's dataset-fashion-mnist, where conf/dataset/fashion_mnist.yaml looks."""
    x_train, y_train, x_test, y_test = to_object(compose_config().dataset).read()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and len(y_train) == 60000 and len(y_test) == 10000
    assert set(np.unique(y_train)) == set(range(10)) and np.bincount(y_test).tolist() == [1000] * 10
