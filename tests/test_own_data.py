"""Datasets a user brings: npz arrays, a folder of images per class, CSV time series in windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import compose_config, run_app, tiny_overrides
from tinyml_exp.config import to_object
from tinyml_exp.data.csv_windows import CsvWindowsDataset
from tinyml_exp.data.image_folder import ImageFolderDataset
from tinyml_exp.data.npz import NpzDataset
from tinyml_exp.errors import DataError


def write_npz(path: Path, n_train: int = 40, n_test: int = 10, shape=(16, 3), **override) -> Path:
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.random((n_train, *shape), dtype=np.float32),
        "y_train": np.arange(n_train) % 3,
        "x_test": rng.random((n_test, *shape), dtype=np.float32),
        "y_test": np.arange(n_test) % 3,
        **override,
    }
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def write_csv(path: Path, rows: int = 400, labels=("run", "walk"), session: bool = False) -> Path:
    lines = ["time,ax,ay,subject,label" if session else "time,ax,ay,label"]
    for i in range(rows):
        label = labels[(i // 50) % len(labels)]
        fields = [
            str(i),
            f"{np.sin(i / 5):.4f}",
            f"{(i % 7) / 7:.4f}",
            *(["s1" if i < rows // 2 else "s2"] if session else []),
        ]
        lines.append(",".join([*fields, label]))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_images(root: Path, classes=("cat", "dog"), n: int = 5, size=(20, 30)) -> Path:
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            suffix = ".png" if i % 2 else ".jpg"
            Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(root / c / f"{i}{suffix}")
    return root


# ---------------------------------------------------------------------------------------------- npz


@pytest.mark.parametrize(
    "shape", [(16,), (16, 3), (8, 8), (8, 8, 3)], ids=["1d", "1d_channels", "grey", "rgb"]
)
def test_npz_any_sample_shape_floats_kept(tmp_path: Path, shape: tuple) -> None:
    path = write_npz(tmp_path / "d.npz", shape=shape)
    data = NpzDataset(name="npz", path=str(path)).load(0)
    assert data.input_shape == shape and data.class_names == ("0", "1", "2")
    assert data.sizes() == {"train": 36, "val": 4, "test": 10}
    raw = np.load(path)["x_test"]
    np.testing.assert_array_equal(data.x_test, raw)  # floats as they are


def test_npz_uint8_is_scaled_and_class_names_come_from_the_file(tmp_path: Path) -> None:
    x = np.full((10, 4, 4), 255, dtype=np.uint8)
    path = write_npz(tmp_path / "d.npz", x_train=x, y_train=np.arange(10) % 2, x_test=x[:4], y_test=np.arange(4) % 2,
                     class_names=np.array(["no", "yes"]))  # fmt: skip
    data = NpzDataset(name="npz", path=str(path)).load(0)
    assert (
        data.class_names == ("no", "yes") and data.x_train.dtype == np.float32 and data.x_train.max() == 1.0
    )


def test_npz_scale_multiplies_int16(tmp_path: Path) -> None:
    x = np.full((10, 8), 16384, dtype=np.int16)
    path = write_npz(
        tmp_path / "d.npz", x_train=x, y_train=np.arange(10) % 3, x_test=x[:3], y_test=np.arange(3)
    )
    data = NpzDataset(name="npz", path=str(path), scale=1 / 32768).load(0)
    assert np.all(data.x_test == 0.5)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"y_test": None}, r"lacks arrays \['y_test'\]"),
        ({"y_train": np.arange(39) % 3}, "x_train has 40 samples but y_train has 39 labels"),
        (
            {"x_test": np.zeros((10, 5, 3), np.float32)},
            r"x_train samples are \[16, 3\] but x_test samples \[5, 3\]",
        ),
        ({"y_train": np.full(40, 0.5)}, "expected integer class labels"),
        ({"x_train": np.full((40, 16, 3), np.nan, np.float32)}, "NaN"),
    ],
    ids=["missing", "lengths", "shapes", "float_labels", "nan"],
)
def test_bad_npz_names_the_problem(tmp_path: Path, override: dict, message: str) -> None:
    path = write_npz(tmp_path / "d.npz", **override)
    with pytest.raises(DataError, match=message):
        NpzDataset(name="npz", path=str(path)).load(0)


def test_npz_labels_out_of_range_of_the_class_names(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "d.npz", y_test=np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 7]))
    with pytest.raises(
        DataError, match=r"test labels span 0 … 7 but there are 3 classes .* labels must be 0 … 2"
    ):
        NpzDataset(name="npz", path=str(path), class_names=["a", "b", "c"]).load(0)
    with pytest.raises(DataError, match="labels span -1"):
        NpzDataset(name="npz", path=str(write_npz(tmp_path / "e.npz", y_train=np.arange(40) % 3 - 1))).load(0)


def test_not_an_npz_is_one_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match=r"junk\.npz is not a readable \.npz"):
        NpzDataset(name="npz", path=str(junk)).load(0)
    single = tmp_path / "one.npz"
    with open(single, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(DataError, match=r"single \.npy array"):
        NpzDataset(name="npz", path=str(single)).load(0)
    with pytest.raises(DataError, match="no such file"):
        NpzDataset(name="npz", path=str(tmp_path / "absent.npz")).load(0)


def test_app_with_a_bad_npz_prints_one_line_and_exits_non_zero(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "d.npz", y_train=np.arange(39) % 3)
    done = run_app(["dataset=npz", f"dataset.path={path}", *tiny_overrides(tmp_path)[1:]], cwd=tmp_path)
    assert done.returncode != 0
    output = done.stdout + done.stderr  # Hydra's logging goes to stdout
    errors = [line for line in output.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and errors[0].endswith(
        "d.npz: x_train has 40 samples but y_train has 39 labels"
    ), output
    assert "Traceback" not in output


# ---------------------------------------------------------------------------------------------- csv


def test_csv_windows_shape_labels_and_split(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "imu.csv")
    ds = CsvWindowsDataset(name="csv", path=str(path), channels=["ax", "ay"], window=20, stride=10)
    x_train, y_train, x_test, _ = ds.read()
    assert ds.class_names == ["run", "walk"]
    # 400 rows: the first 320 train (31 windows of 20 every 10), the last 80 test (7 windows)
    assert x_train.shape == (31, 20, 2) and x_test.shape == (7, 20, 2)
    assert y_train[0] == 0 and y_train[5] == 1  # rows 0-19 run; rows 50-69 walk
    np.testing.assert_allclose(x_train[1, 0], [np.sin(10 / 5), (10 % 7) / 7], atol=1e-4)
    assert x_test[0, 0, 0] == pytest.approx(np.sin(320 / 5), abs=1e-4)


@pytest.mark.parametrize(("rule", "label_of_window_40_59"), [("majority", 0), ("last", 1), ("uniform", None)])
def test_csv_label_rules(tmp_path: Path, rule: str, label_of_window_40_59: int | None) -> None:
    # rows 40-49 run (10 rows), 50-59 walk (10 rows): a tie goes to the earlier class
    path = write_csv(tmp_path / "imu.csv")
    ds = CsvWindowsDataset(name="csv", path=str(path), channels=["ax"], window=20, stride=20, label_rule=rule,
                           test_fraction=0.0, test_path=str(path))  # fmt: skip
    _, y, _, _ = ds.read()  # 20 windows, starting at rows 0, 20, 40, ...
    if label_of_window_40_59 is None:
        assert len(y) == 16  # the 4 that straddle a change of label (rows 50, 150, 250, 350) dropped
    else:
        assert len(y) == 20 and y[2] == label_of_window_40_59


def test_csv_windows_never_cross_a_session(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "imu.csv", rows=100, session=True)
    ds = CsvWindowsDataset(name="csv", path=str(path), channels=["ax"], session_column="subject", window=30,
                           stride=10, test_fraction=0.0, test_path=str(path))  # fmt: skip
    x, _, _, _ = ds.read()
    assert len(x) == 6  # per 50-row session: starts 0, 10, 20 (30 + 30 > 50)


@pytest.mark.parametrize(
    ("text", "keys", "message"),
    [
        (
            "a,label\n1,x\n",
            {"channels": ["b"]},
            r"columns \['b'\] not found; the header has \['a', 'label'\]",
        ),
        ("a,label\n1,x\nfoo,y\n", {}, r"imu.csv:3: could not convert string to float: 'foo'"),
        ("a,label\n1,x\n2\n", {}, r"imu.csv:3: 1 fields but the header has 2"),
        ("a,label\n1,x\n2,y\n", {"window": 5}, "no window of dataset.window=5 rows fits"),
        (
            "a,label\n1,x\n2,y\n",
            {"label_rule": "mode"},
            "dataset.label_rule='mode' is not one of majority, last",
        ),
        ("a,label\n1,x\n2,y\n", {"class_names": ["x"]}, r"labels \['y'\] are not in dataset.class_names"),
        ("", {}, "is empty; expected a header row"),
    ],
)
def test_bad_csv_names_the_line_or_key(tmp_path: Path, text: str, keys: dict, message: str) -> None:
    path = tmp_path / "imu.csv"
    path.write_text(text)
    ds = CsvWindowsDataset(
        name="csv", path=str(path), test_path=str(path), **{"window": 1, "stride": 1, **keys}
    )
    with pytest.raises(DataError, match=message):
        ds.load(0)


def test_csv_binary_file_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "imu.csv"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError, match="not a readable UTF-8 CSV"):
        CsvWindowsDataset(name="csv", path=str(path)).read()


# ------------------------------------------------------------------------------------- image folder


@pytest.mark.parametrize(("color", "shape"), [("grey", (12, 10)), ("rgb", (12, 10, 3))])
def test_image_folder_resizes_and_splits_per_class(tmp_path: Path, color: str, shape: tuple) -> None:
    root = write_images(tmp_path / "pets", n=10)
    ds = ImageFolderDataset(
        name="image_folder", path=str(root), image_size=[12, 10], color=color, val_fraction=0.0
    )
    data = ds.load(0)
    assert data.input_shape == shape and data.class_names == ("cat", "dog")
    assert data.sizes() == {"train": 16, "val": 0, "test": 4}
    assert (
        np.bincount(data.y_test).tolist() == [2, 2]
        and data.x_train.min() >= 0.0
        and data.x_train.max() <= 1.0
    )


def test_image_folder_train_and_test_folders(tmp_path: Path) -> None:
    write_images(tmp_path / "pets" / "train", n=6)
    write_images(tmp_path / "pets" / "test", n=3)
    (tmp_path / "pets" / "train" / "cat" / ".DS_Store").write_bytes(b"\x00")  # hidden files are skipped
    x_train, _, x_test, _ = ImageFolderDataset(name="f", path=str(tmp_path / "pets")).read()
    assert x_train.shape == (12, 32, 32, 3) and x_test.shape == (6, 32, 32, 3) and x_train.dtype == np.uint8


def test_image_folder_bad_inputs(tmp_path: Path) -> None:
    root = write_images(tmp_path / "pets")
    (root / "dog" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match=r"dog/notes.txt is not an image \(.png, .jpg, .jpeg\)"):
        ImageFolderDataset(name="f", path=str(root)).read()
    (root / "dog" / "notes.txt").unlink()
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(DataError, match=r"broken\.png is not a readable PNG/JPEG image"):
        ImageFolderDataset(name="f", path=str(root)).read()
    single = write_images(tmp_path / "one", classes=("cat",))
    with pytest.raises(
        DataError, match=r"found 1 class folder\(s\) \['cat'\]; a classifier needs at least 2"
    ):
        ImageFolderDataset(name="f", path=str(single)).read()


# ------------------------------------------------------------------------------------------ options


@pytest.mark.parametrize("option", ["npz", "csv", "image_folder"])
def test_options_compose_and_path_keys_override(tmp_path: Path, option: str) -> None:
    cfg = compose_config([f"dataset={option}", f"dataset.path={tmp_path}"])
    dataset = to_object(cfg.dataset)
    assert dataset.name == option and dataset.path == str(tmp_path)
