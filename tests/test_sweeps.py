"""Multiruns: parent/child runs across joblib workers, failures, resume, report, tracking server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import app_command, app_env, default_sigint, interrupt_when, require_modules, run_app
from tinyml_exp.report.pareto import pareto_front
from tinyml_exp.report.table import Run, table_rows, to_markdown

# A job that takes about a second: tiny MLP, small synthetic set, no TFLM pass.
TINY_JOB = [
    "firmware.enabled=false",  # the firmware stage has its own tests; these are about sweeping
    "dataset=synthetic",
    "dataset.num_train=200",
    "dataset.num_test=50",
    "architecture=mlp",
    "architecture.hidden_units=[8]",
    "train.epochs=1",
    "evaluate.tflm=false",
    "export.c_header=false",
]


def sweep_args(tmp_path: Path, *args: str, uri: str | None = None, job: list[str] = TINY_JOB) -> list[str]:
    return [
        "-m",
        *job,
        f"tracking.uri={uri or f'sqlite:///{tmp_path}/mlflow.db'}",
        f"cache.dir={tmp_path}/cache",
        f"hydra.sweep.dir={tmp_path}/sweep",
        *args,
    ]


def run_sweep(
    tmp_path: Path,
    *args: str,
    uri: str | None = None,
    job: list[str] = TINY_JOB,
    timeout: float = 600,
    env_extra: dict[str, str] | None = None,
):
    done = run_app(sweep_args(tmp_path, *args, uri=uri, job=job), tmp_path, timeout, env_extra)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done


def all_runs(uri: str):
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("tinyml_exp")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("run_kind") == "sweep_parent"]
    children = [r for r in runs if r.data.tags.get("run_kind") != "sweep_parent"]
    return client, parents, children


@pytest.mark.slow
def test_parallel_sweep_of_24_jobs_loses_no_run_and_no_metric(tmp_path: Path) -> None:
    run_sweep(tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=range(24)")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client, [parent], children = all_runs(uri)
    assert len(children) == 24
    assert sorted(int(r.data.params["seed"]) for r in children) == list(range(24))
    assert {r.info.status for r in children} == {"FINISHED"}
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    metric_sets = {frozenset(r.data.metrics) for r in children}
    assert len(metric_sets) == 1 and "accuracy/tflite" in next(iter(metric_sets))
    assert parent.info.status == "FINISHED"
    assert (
        parent.data.tags["jobs_finished"] == "24" and parent.data.tags["sweep.launcher"] == "JoblibLauncher"
    )
    report = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/summary.md", "report/summary.csv", "report/pareto_size.png"} <= report
    table = (tmp_path / "sweep" / "report" / "summary.md").read_text()
    assert table.count("\n| none | mlp |") == 24


@pytest.mark.slow
def test_failing_job_is_marked_failed_and_the_others_finish(tmp_path: Path) -> None:
    job = [a for a in TINY_JOB if not a.startswith("dataset")]  # mnist has no num_train key
    done = run_sweep(tmp_path, "dataset=synthetic,mnist", f"dataset.path={tmp_path}/no_mnist", job=job)
    _, [parent], children = all_runs(f"sqlite:///{tmp_path}/mlflow.db")
    by_dataset = {r.data.tags["dataset"]: r for r in children}
    assert by_dataset["synthetic"].info.status == "FINISHED"
    failed = by_dataset["mnist"]
    assert failed.info.status == "FAILED" and failed.data.tags["stage_failed"] == "data"
    assert "dataset.path" in failed.data.tags["failure_reason"]
    assert parent.data.tags["jobs_failed"] == "1" and parent.info.status == "FINISHED"
    assert "1 of 2 jobs FAILED" in done.stdout + done.stderr


@pytest.mark.slow
def test_interrupted_sweep_resumes_without_redoing_finished_jobs(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    proc = subprocess.Popen(
        app_command(*sweep_args(tmp_path, "seed=range(6)")),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=app_env(),
        preexec_fn=default_sigint,
    )
    query = "select count(*) from runs where status='FINISHED' and name not like 'sweep-%'"
    interrupt_when(proc, db, query, 2, 300, "the sweep never finished two jobs")  # after two jobs
    uri = f"sqlite:///{db}"
    _, [first_parent], before = all_runs(uri)
    assert first_parent.info.status == "KILLED"
    finished_before = {r.data.tags["config_hash"] for r in before if r.info.status == "FINISHED"}
    assert 2 <= len(finished_before) < 6

    run_sweep(tmp_path, "seed=range(6)", "sweep.resume=true")
    client, parents, after = all_runs(uri)
    finished = [r for r in after if r.info.status == "FINISHED"]
    hashes = [r.data.tags["config_hash"] for r in finished]
    assert len(set(hashes)) == 6 and len(hashes) == len(set(hashes)), "a finished job was redone"
    second = next(p for p in parents if p.info.run_id != first_parent.info.run_id)
    new_children = [r for r in after if r.data.tags.get("mlflow.parentRunId") == second.info.run_id]
    assert {r.data.tags["config_hash"] for r in new_children}.isdisjoint(finished_before)
    report = client.download_artifacts(second.info.run_id, "report/summary.csv", str(tmp_path))
    assert len(Path(report).read_text().strip().splitlines()) == 1 + 6  # reused runs are reported too


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path: Path):
    """A real `mlflow server` (sqlite backend, local artifact root) on a free port."""
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp_path}/server.db",
            "--artifacts-destination",
            str(tmp_path / "server_artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    pytest.fail("mlflow server did not start")
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


def rest(url: str, endpoint: str, body: dict | None = None) -> dict:
    """GET without a body, POST with one: MLflow's REST API as documented."""
    request = urllib.request.Request(
        f"{url}/api/2.0/mlflow/{endpoint}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


@pytest.mark.slow
def test_parallel_sweep_against_a_tracking_server(tmp_path: Path, mlflow_server: str) -> None:
    run_sweep(tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1,2", uri=mlflow_server)
    experiment = rest(mlflow_server, "experiments/get-by-name?experiment_name=tinyml_exp")
    found = rest(
        mlflow_server, "runs/search", {"experiment_ids": [experiment["experiment"]["experiment_id"]]}
    )
    runs = found["runs"]
    tags = [{t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in runs]
    parents = [r for r, t in zip(runs, tags, strict=True) if t.get("run_kind") == "sweep_parent"]
    assert len(runs) == 4 and len(parents) == 1
    parent_id = parents[0]["info"]["run_id"]
    children = [(r, t) for r, t in zip(runs, tags, strict=True) if t.get("mlflow.parentRunId") == parent_id]
    assert len(children) == 3
    for run, _ in children:
        assert run["info"]["status"] == "FINISHED"
        metrics = {m["key"] for m in run["data"]["metrics"]}
        assert {"accuracy/tflite", "size/tflite_bytes"} <= metrics
        assert run["info"]["artifact_uri"].startswith("mlflow-artifacts:")
    assert list((tmp_path / "server_artifacts").rglob("*.tflite")), "artifacts went through the server"


def _run(name: str, acc: float, size: float, **tags: str) -> Run:
    metrics = {"accuracy/tflite": acc, "size/tflite_bytes": size}
    return Run(name, name, "FINISHED", metrics, {"compression": name, **tags}, {})


def test_pareto_front_keeps_only_undominated_points() -> None:
    points = [(10.0, 0.9), (5.0, 0.85), (20.0, 0.88), (5.0, 0.8), (1.0, 0.5), (10.0, 0.9)]
    assert pareto_front(points) == [4, 1, 0, 5]


def test_summary_table_skips_columns_no_run_has() -> None:
    header, rows = table_rows([_run("none", 0.9, 83_000), _run("ptq_int8", 0.895, 24_000)])
    assert header[:4] == ["method", "architecture", "target", "status"]
    assert "acc tflite %" in header and "acc device %" not in header
    assert rows[1][header.index("tflite bytes")] == "24,000"
    text = to_markdown(header, rows)
    assert text.splitlines()[1].startswith("| --- |") and "| ptq_int8 |" in text


@pytest.mark.slow
@require_modules("hydra_plugins.hydra_ray_launcher", extra="scale")
def test_ray_launcher_in_local_mode(tmp_path: Path) -> None:
    import shutil
    import tempfile

    # Ray's unix sockets live under its temp dir and must stay short (108-byte path limit).
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    try:
        run_sweep(
            tmp_path,
            "hydra/launcher=ray_local",
            "hydra.launcher.ray.init.num_cpus=2",
            f"+hydra.launcher.ray.init._temp_dir={ray_tmp}",
            "seed=0,1",
            env_extra={"RAY_AUTH_MODE": "disabled"},
        )
    finally:
        subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"], capture_output=True)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    _, [parent], children = all_runs(f"sqlite:///{tmp_path}/mlflow.db")
    assert parent.data.tags["sweep.launcher"] == "RayLauncher"
    assert len(children) == 2 and {r.info.status for r in children} == {"FINISHED"}
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}


@require_modules("hydra_plugins.hydra_submitit_launcher", extra="scale")
def test_slurm_launcher_config_composes() -> None:
    from hydra.utils import get_class

    from tests.helpers import compose_config

    overrides = ["hydra/launcher=slurm", "hydra.launcher.partition=cpu", "tracking.uri=http://mlflow:5000"]
    launcher = compose_config(overrides, with_hydra=True).hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher") and get_class(launcher._target_)
    assert launcher.partition == "cpu" and launcher.timeout_min > 0 and launcher.cpus_per_task >= 1
