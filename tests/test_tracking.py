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
