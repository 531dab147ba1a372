"""Against a real `mlflow server` (sqlite store in tmp_path, started and stopped here), through its
REST API as the UI reads it: a tiny run of the app shows the experiment's kind, the run's dataset
inputs, source tags, logged model and description, and the registered model; the terminal shows
the key-figure table and the run's URL. An unreachable server fails the app fast, naming the key."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers import require_commands, run_app, tiny_overrides


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("server")
    port = _free_port()
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    store = ["--backend-store-uri", f"sqlite:///{tmp}/mlflow.db", "--artifacts-destination", str(tmp / "art")]
    proc = subprocess.Popen(
        [str(mlflow_cli), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1", *store],
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not answer /health within 120 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _api(server: str, path: str, **params: str) -> dict:
    reply = requests.get(f"{server}/api/2.0/mlflow/{path}", params=params, timeout=30)
    assert reply.ok, f"{path}: {reply.status_code} {reply.text[:300]}"
    return reply.json()


@pytest.fixture(scope="module")
def tiny_run(server: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(the app's stdout, its run id) for one tiny run logged to `server`, registered as `tiny`."""
    tmp = tmp_path_factory.mktemp("run")
    overrides = [o for o in tiny_overrides(tmp) if not o.startswith("tracking.uri")]
    done = run_app([*overrides, f"tracking.uri={server}", "tracking.register=tiny"], cwd=tmp)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "cuInit" not in done.stderr and "absl::InitializeLog" not in done.stderr  # verbose=false
    run_id = re.search(r"^Run ([0-9a-f]{32})$", done.stdout, re.M).group(1)
    return done.stdout, run_id


pytestmark = [pytest.mark.slow, pytest.mark.firmware, require_commands("arm-none-eabi-gcc", "make")]


def test_terminal_ends_with_the_table_and_the_runs_url(server: str, tiny_run: tuple[str, str]) -> None:
    stdout, run_id = tiny_run
    tail = stdout[stdout.index(f"Run {run_id}") :]
    assert re.search(r"^  accuracy  keras +\d+\.\d\d %$", tail, re.M), tail
    assert re.search(r"^  bytes     \.tflite +\d{1,3}(,\d{3})+ B$", tail, re.M), tail
    assert re.search(r"^  fits ", tail, re.M) and "e+0" not in tail
    assert re.search(rf"The run: +{server}/#/experiments/\d+/runs/{run_id}$", tail, re.M), tail


def test_the_ui_finds_kind_datasets_source_model_description(server: str, tiny_run: tuple[str, str]) -> None:
    _, run_id = tiny_run
    run = _api(server, "runs/get", run_id=run_id)["run"]
    experiment = _api(server, "experiments/get", experiment_id=run["info"]["experiment_id"])["experiment"]
    assert {"key": "mlflow.experimentKind", "value": "custom_model_development"} in experiment["tags"]

    inputs = run["inputs"]["dataset_inputs"]
    contexts = sorted(t["value"] for i in inputs for t in i["tags"] if t["key"] == "mlflow.data.context")
    assert contexts == ["test", "train", "validation"]
    assert all(i["dataset"]["name"] == "synthetic" and i["dataset"]["digest"] for i in inputs)

    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["mlflow.source.type"] == "LOCAL" and tags["mlflow.source.name"].endswith("__main__.py")
    assert len(tags["mlflow.source.git.commit"]) == 40
    assert tags["mlflow.note.content"].startswith("seed_cnn · none · synthetic · b_l475e_iot01a: accuracy")

    (output,) = run["outputs"]["model_outputs"]
    model = requests.get(f"{server}/api/2.0/mlflow/logged-models/{output['model_id']}", timeout=30).json()
    info = model["model"]["info"]
    assert info["status"] == "LOGGED_MODEL_READY" and info["source_run_id"] == run_id

    version = _api(server, "registered-models/get", name="tiny")["registered_model"]["latest_versions"][0]
    version_tags = {t["key"]: t["value"] for t in version["tags"]}
    assert version_tags["run_id"] == run_id and float(version_tags["accuracy/tflite"]) > 0.5
    assert version_tags["fits_target"] == "true" and int(version_tags["size/tflite_bytes"]) > 10_000


def test_the_logged_model_predicts_with_the_tflite_and_carries_the_c(
    server: str, tiny_run: tuple[str, str], tmp_path: Path
) -> None:
    import mlflow
    import numpy as np

    _, run_id = tiny_run
    client = mlflow.MlflowClient(server)
    (output,) = client.get_run(run_id).outputs.model_outputs
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(server)  # models:/ URIs resolve through the global tracking URI
    try:
        local = Path(
            mlflow.artifacts.download_artifacts(f"models:/{output.model_id}", dst_path=str(tmp_path))
        )
    finally:
        mlflow.set_tracking_uri(previous)
    files = sorted(p.name for p in (local / "artifacts").iterdir())
    assert "model.c" in files and "model.h" in files and any(f.endswith(".tflite") for f in files)
    assert (local / "requirements.txt").read_text().count("==") == 3  # our pins, nothing inferred
    model = mlflow.pyfunc.load_model(str(local))
    scores = model.predict(np.random.default_rng(0).random((3, 28, 28), dtype=np.float32))
    assert scores.shape == (3, 10) and np.isfinite(scores).all()
