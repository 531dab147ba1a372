"""The real app, as a user runs it: `python -m tinyml_exp ...` in a subprocess, real MLflow store."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import app_command, app_env, default_sigint, interrupt_when, run_app, tiny_overrides

FOUNDATION_METRICS = (
    "accuracy/keras",
    "loss/keras",
    "accuracy/tflite",
    "accuracy/tflm",
    "agreement/tflm_vs_tflite",
    "size/h5_bytes",
    "size/keras_bytes",
    "size/tflite_bytes",
    "size/tflite_gzip_bytes",
    "params/total",
    "compression/factor_h5",
)


def run_once(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return run_app([*args, f"hydra.run.dir={cwd}/outputs/run"], cwd, timeout)


def runs(tmp_path: Path):
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("tinyml_exp")
    return client, client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


@pytest.mark.slow
def test_synthetic_run_logs_everything_then_reuses_the_cached_base(tmp_path: Path) -> None:
    done = run_once(tiny_overrides(tmp_path), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    client, [run] = runs(tmp_path)
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    for name in FOUNDATION_METRICS:
        assert name in metrics, name
    assert metrics["params/total"] == 20_410
    assert metrics["accuracy/keras"] > 0.5
    assert metrics["accuracy/tflite"] == pytest.approx(metrics["accuracy/keras"], abs=0.01)
    assert 2.5 < metrics["compression/factor_h5"] < 4.0  # float .tflite vs .h5 with optimizer state
    params = run.data.params
    assert params["dataset.name"] == "synthetic" and params["train.epochs"] == "1"
    tags = run.data.tags
    assert tags["version.tensorflow"].startswith("2.21") and tags["provenance.git_commit"]
    assert "train.epochs=1" in tags["provenance.overrides"]
    assert tags["base_model.from_cache"] == "False"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert {"model/seed_cnn_none.h5", "model/seed_cnn_none.keras", "model/seed_cnn_none.tflite"} <= artifacts
    assert "config.yaml" in {a.path for a in client.list_artifacts(run.info.run_id)}

    again = run_once(tiny_overrides(tmp_path), tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    _, [_, second] = runs(tmp_path)
    assert second.data.tags["base_model.from_cache"] == "True"
    assert second.data.metrics["accuracy/keras"] == metrics["accuracy/keras"]


def test_missing_dataset_is_one_clear_line(tmp_path: Path) -> None:
    done = run_once([*tiny_overrides(tmp_path), "dataset=mnist", f"dataset.path={tmp_path}/none"], tmp_path)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    errors = [line for line in output.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "dataset.path" in errors[0] and "Traceback" not in output
    _client, [run] = runs(tmp_path)
    assert run.info.status == "FAILED" and run.data.tags["stage_failed"] == "data"


def test_misspelt_key_fails_before_any_work(tmp_path: Path) -> None:
    done = run_once([*tiny_overrides(tmp_path), "train.epoks=3"], tmp_path, timeout=60)
    assert done.returncode != 0 and "epoks" in done.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_unreachable_tracking_server_fails_fast_before_training(tmp_path: Path) -> None:
    import socket
    import time

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        server = f"http://127.0.0.1:{s.getsockname()[1]}"
    start = time.monotonic()
    overrides = [o for o in tiny_overrides(tmp_path) if not o.startswith("tracking.uri")]
    done = run_once([*overrides, f"tracking.uri={server}"], tmp_path, timeout=120)
    assert done.returncode != 0 and time.monotonic() - start < 30  # ≈ 4 s of it Python start-up
    output = done.stdout + done.stderr
    errors = [line for line in output.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and f"tracking.uri={server} is unreachable" in errors[0], output[-2000:]
    assert "Traceback" not in output and "stage train" not in output
    assert not (tmp_path / "cache").exists()  # nothing trained


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl_c", "sigterm"])
def test_ctrl_c_during_training_keeps_the_run_marked_unfinished(tmp_path: Path, signum: int) -> None:
    """Ctrl-C, and `kill` (SIGTERM: `timeout`, SLURM, CI runners), close the run KILLED."""
    args = [*tiny_overrides(tmp_path), "train.epochs=200", "cache.enabled=false"]
    proc = subprocess.Popen(
        app_command(*args, f"hydra.run.dir={tmp_path}/outputs/run"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=app_env(),
        preexec_fn=default_sigint,
    )
    # wait until training has logged its first epoch
    query = "select count(*) from metrics where key='train/loss'"
    interrupt_when(proc, tmp_path / "mlflow.db", query, 1, 120, "training never started", signum)
    assert proc.returncode != 0
    _, [run] = runs(tmp_path)
    assert run.info.status == "KILLED"
    assert run.data.tags["stage_failed"] == "train"
    assert run.data.metrics["data/train_samples"] > 0


def test_a_swallowed_ctrl_c_is_raised_again_at_the_next_check() -> None:
    from tinyml_exp import interrupt

    interrupt._requested.clear()
    # What a weakref callback or __del__ does with the handler's exception: print it, carry on.
    with contextlib.suppress(KeyboardInterrupt):
        interrupt._handler(signal.SIGINT, None)
    try:
        with pytest.raises(KeyboardInterrupt):
            interrupt.check()
    finally:
        interrupt._requested.clear()
    interrupt.check()  # nothing pending: no exception
