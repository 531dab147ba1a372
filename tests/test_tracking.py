"""MLflow tracking against a real sqlite store: statuses, params, metrics, provenance."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from tinyml_exp.tracking import Tracker, artifact_root_for, flatten, resolve_tracking_uri
from tinyml_exp.tracking.provenance import provenance_tags


def test_flatten_uses_dotted_keys() -> None:
    cfg = OmegaConf.create({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": None})
    assert flatten(cfg) == {"a.b": "1", "a.c.d": "[1, 2]", "e": "null"}


def test_relative_sqlite_uri_resolves_against_the_working_directory(tmp_path: Path) -> None:
    uri = resolve_tracking_uri("sqlite:///mlflow.db", tmp_path)
    assert uri == f"sqlite:///{tmp_path}/mlflow.db"
    assert resolve_tracking_uri(uri) == uri
    assert resolve_tracking_uri("http://host:5000") == "http://host:5000"
    assert artifact_root_for(uri) == (tmp_path / "mlartifacts").as_uri()


def _run(uri: str, run_id: str):
    return MlflowClient(uri).get_run(run_id)


@pytest.mark.parametrize(
    ("error", "status"),
    [(None, "FINISHED"), (RuntimeError("boom"), "FAILED"), (KeyboardInterrupt(), "KILLED")],
)
def test_run_status_and_logged_values_survive_errors(tmp_path: Path, error, status: str) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracker = Tracker(uri, "exp")
    with pytest.raises(type(error)) if error else _nothing(), tracker:
        tracker.log_params({"a.b": 1})
        tracker.log_metrics({"accuracy/keras": 0.5, "nan": float("nan")})
        tracker.log_text("hello", "notes.txt")
        if error:
            raise error
    run = _run(uri, tracker.run_id)
    assert run.info.status == status
    assert run.data.params["a.b"] == "1"
    assert run.data.metrics == {"accuracy/keras": 0.5}
    if status == "FAILED":
        assert run.data.tags["failure_reason"] == "RuntimeError: boom"
    artifact_dir = tmp_path / "mlartifacts"
    assert list(artifact_dir.rglob("notes.txt")), "artifacts must be stored beside the database"


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_provenance_names_versions_git_and_command() -> None:
    tags = provenance_tags(["train.epochs=1"])
    for key in (
        "python",
        "tensorflow",
        "tf_keras",
        "tfmot",
        "tflite_micro",
        "ai_edge_litert",
        "mlflow",
        "hydra",
    ):
        assert tags[f"version.{key}"] not in ("", "not installed"), key
    assert len(tags["provenance.git_commit"]) in (40, len("unknown"))
    assert tags["provenance.git_dirty"] in ("true", "false", "unknown")
    assert tags["provenance.overrides"] == "train.epochs=1"


def test_experiments_get_the_classic_ml_kind_new_and_existing(tmp_path: Path) -> None:
    """MLflow 3.17's UI opens an experiment without `mlflow.experimentKind` in its GenAI view."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    old = client.create_experiment("old", artifact_location=(tmp_path / "a").as_uri())
    for name in ("new", "old"):
        with Tracker(uri, name):
            pass
        tags = client.get_experiment_by_name(name).tags
        assert tags.get("mlflow.experimentKind") == "custom_model_development", name
    assert client.get_experiment(old).tags["mlflow.experimentKind"] == "custom_model_development"


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_fails_fast_naming_the_key_or_falls_back(tmp_path: Path, monkeypatch) -> None:
    import time

    from tinyml_exp.tracking.connect import TrackingUnreachable

    for key in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(key, raising=False)
    server = f"http://127.0.0.1:{_closed_port()}"
    start = time.monotonic()
    with (
        pytest.raises(TrackingUnreachable, match=rf"tracking.uri={server} is unreachable"),
        Tracker(server, "e"),
    ):
        pass
    assert time.monotonic() - start < 15
    fallback = f"sqlite:///{tmp_path}/mlflow.db"
    with Tracker(server, "e", fallback_uri=fallback) as tracker:
        tracker.log_metrics({"m": 1.0})
    assert tracker.uri == fallback
    assert _run(fallback, tracker.run_id).data.metrics == {"m": 1.0}


def test_run_logs_dataset_inputs_with_contexts_digests_and_sizes(tmp_path: Path) -> None:
    import numpy as np

    from tinyml_exp.data.base import DatasetSplits

    rng = np.random.default_rng(0)
    x, y = rng.random((10, 4, 4), dtype=np.float32), np.arange(10) % 2
    data = DatasetSplits("toy", x[:6], y[:6], x[6:6], y[6:6], x[6:], y[6:], ("a", "b"))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    with Tracker(uri, "exp") as tracker:
        tracker.log_datasets(data, str(tmp_path))
    inputs = _run(uri, tracker.run_id).inputs.dataset_inputs
    contexts = {i.tags[0].value: i for i in inputs}  # the empty validation split is left out
    assert sorted(contexts) == ["test", "train"]
    train, test = contexts["train"].dataset, contexts["test"].dataset
    assert train.name == test.name == "toy" and train.digest != test.digest
    assert str(tmp_path) in train.source and '"features_shape": [6, 4, 4]' in train.profile
    assert {t.key: t.value for t in contexts["test"].tags}["split_sizes"] == "train=6, val=0, test=4"


def test_source_tags_are_mlflows_own_beside_ours() -> None:
    tags = provenance_tags([])
    assert tags["mlflow.source.type"] == "LOCAL" and tags["mlflow.source.name"]
    if tags["provenance.git_commit"] != "unknown":
        assert len(tags["mlflow.source.git.commit"]) == 40
