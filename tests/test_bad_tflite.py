"""A truncated or corrupt `.tflite`: one line naming the file and a non-zero exit, wherever it is read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import app_env
from tests.profile_models import cnn_model
from tinyml_exp.errors import DataError
from tinyml_exp.tflite_graph import TFLiteGraphError, read_graph


def bad_models(tmp_path: Path) -> dict[str, Path]:
    good = cnn_model()
    root_past_the_end = (len(good) + 100).to_bytes(4, "little") + good[4:]
    files = {
        "truncated": good[: len(good) // 2],
        "corrupt": root_past_the_end,
        "not_tflite": b"this is a text file, not a model\n",
        "empty": b"",
    }
    for name, data in files.items():
        (tmp_path / f"{name}.tflite").write_bytes(data)
    return {name: tmp_path / f"{name}.tflite" for name in files}


MESSAGES = {
    "truncated": r"truncated or corrupt \.tflite \(\d+ bytes; struct\.error while reading it\): export it again",
    "corrupt": r"truncated or corrupt \.tflite",
    "not_tflite": r"not a TFLite flatbuffer \(missing the 'TFL3' identifier\)",
    "empty": r"not a TFLite flatbuffer",
}


@pytest.mark.parametrize("kind", sorted(MESSAGES))
def test_read_graph_names_the_file_and_the_problem(tmp_path: Path, kind: str) -> None:
    path = bad_models(tmp_path)[kind]
    with pytest.raises(TFLiteGraphError, match=f"^{path}: {MESSAGES[kind]}") as info:
        read_graph(path)
    assert isinstance(info.value, DataError) and isinstance(info.value, ValueError)


def test_read_graph_of_bytes_has_no_path() -> None:
    with pytest.raises(TFLiteGraphError, match=f"^{MESSAGES['truncated']}"):
        read_graph(cnn_model()[:300])


def cli(module: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=app_env())  # fmt: skip


@pytest.mark.parametrize("kind", ["truncated", "corrupt"])
def test_profile_cli_one_line_and_exit_2(tmp_path: Path, kind: str) -> None:
    path = bad_models(tmp_path)[kind]
    done = cli("tinyml_exp.cli.profile", [str(path)], tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith(f"tinyml-exp-profile: {path}: truncated or corrupt .tflite")


def test_bench_cli_checks_the_model_before_connecting(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((2, 6, 6, 2), np.float32))
    path = bad_models(tmp_path)["truncated"]
    args = ["--port", "socket://127.0.0.1:9", "--data", str(tmp_path / "x.npy"), "--model", str(path)]
    done = cli("tinyml_exp.cli.bench", args, tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: {path}: truncated or corrupt .tflite ({path.stat().st_size} bytes; struct.error while reading it): "
        "export it again or check the copy"
    ]
