"""Every file reader, fed random and mutated bytes, raises its clean error type or reads: never
another exception (Hypothesis, bounded so the whole file runs in seconds)."""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.profile_models import cnn_model
from tinyml_exp.data.cifar10 import Cifar10Dataset, read_cifar_bin
from tinyml_exp.data.csv_windows import read_csv_table
from tinyml_exp.data.idx import read_idx
from tinyml_exp.data.image_folder import read_image
from tinyml_exp.data.npz import read_npz
from tinyml_exp.errors import DataError
from tinyml_exp.tflite_graph import TFLiteGraphError, read_graph

BOUNDED = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def mutated(seed: bytes) -> st.SearchStrategy[bytes]:
    """Random bytes, the seed cut short, or the seed with a few bytes overwritten."""

    @st.composite
    def flipped(draw) -> bytes:
        data = bytearray(seed)
        for _ in range(draw(st.integers(1, 12))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)

    truncated = st.integers(0, len(seed) - 1).map(lambda n: seed[:n])
    return st.one_of(st.binary(max_size=2 * len(seed)), truncated, flipped())


def idx_bytes() -> bytes:
    images = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    return b"\x00\x00\x08\x03" + b"".join(int(d).to_bytes(4, "big") for d in images.shape) + images.tobytes()


def npz_bytes() -> bytes:
    out = io.BytesIO()
    np.savez(
        out, x_train=np.zeros((2, 3), np.float32), y_train=np.arange(2), x_test=np.ones((1, 3)), y_test=[0]
    )
    return out.getvalue()


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3)).save(out, format="PNG")
    return out.getvalue()


CSV = b"t,ax,ay,label\n0,0.1,0.2,run\n1,0.3,0.4,walk\n2,0.5,0.6,run\n"
CIFAR = bytes(range(256)) * 24 + bytes(3073 * 2 - 256 * 24)  # two records

READERS: dict[str, tuple[str, bytes, Callable[[Path], object], type[Exception]]] = {
    "tflite": ("m.tflite", cnn_model(), read_graph, TFLiteGraphError),
    "idx": ("images-idx3-ubyte", idx_bytes(), read_idx, DataError),
    "idx_gz": ("images-idx3-ubyte.gz", gzip.compress(idx_bytes()), read_idx, DataError),
    "npz": ("d.npz", npz_bytes(), read_npz, DataError),
    "cifar": ("data_batch_1.bin", CIFAR, read_cifar_bin, DataError),
    "cifar_npz": (
        "c.npz",
        npz_bytes(),
        lambda p: Cifar10Dataset(name="c", path=str(p), class_names=["a"]).read(),
        DataError,
    ),
    "csv": ("imu.csv", CSV, lambda p: read_csv_table(p, "label", [], None), DataError),
    "image": ("a.png", png_bytes(), lambda p: read_image(p, (8, 8), "rgb"), DataError),
}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_the_seed_file_reads(tmp_path: Path, reader: str) -> None:
    name, seed, read, _ = READERS[reader]
    (tmp_path / name).write_bytes(seed)
    assert read(tmp_path / name) is not None


def _fuzz(reader: str) -> Callable[..., None]:
    name, seed, read, clean = READERS[reader]

    @BOUNDED
    @given(data=mutated(seed))
    def check(tmp_path: Path, data: bytes) -> None:
        path = tmp_path / name
        path.write_bytes(data)
        try:
            read(path)
        except clean as e:
            assert str(e) and "\n" not in str(e)  # one line for the user

    return check


test_fuzz_tflite = _fuzz("tflite")
test_fuzz_idx = _fuzz("idx")
test_fuzz_idx_gz = _fuzz("idx_gz")
test_fuzz_npz = _fuzz("npz")
test_fuzz_cifar = _fuzz("cifar")
test_fuzz_cifar_npz = _fuzz("cifar_npz")
test_fuzz_csv = _fuzz("csv")
test_fuzz_image = _fuzz("image")


@BOUNDED
@given(data=mutated(cnn_model()))
def test_fuzz_tflite_from_bytes(data: bytes) -> None:
    try:
        graph = read_graph(data)
    except TFLiteGraphError:
        return
    for op in graph.operators:  # what a reader follows exists
        for index in (*op.inputs, *op.outputs):
            assert index == -1 or graph.tensor(index) is not None
