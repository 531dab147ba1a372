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
def test_parallel_sweep_of_8_jobs_loses_no_run_and_no_metric(tmp_path: Path) -> None:
    run_sweep(tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=range(8)")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client, [parent], children = all_runs(uri)
    assert len(children) == 8
    assert sorted(int(r.data.params["seed"]) for r in children) == list(range(8))
    assert {r.info.status for r in children} == {"FINISHED"}
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    metric_sets = {frozenset(r.data.metrics) for r in children}
    assert len(metric_sets) == 1 and "accuracy/tflite" in next(iter(metric_sets))
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["jobs_finished"] == "8" and parent.data.tags["sweep.launcher"] == "JoblibLauncher"
    report = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/summary.md", "report/summary.csv", "report/pareto_size.png"} <= report
    table = (tmp_path / "sweep" / "report" / "summary.md").read_text()
    assert table.count("\n| none | mlp |") == 8


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
        app_command(*sweep_args(tmp_path, "seed=range(4)")),
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
    # the jobs the workers were running when the sweep stopped are closed too, none left RUNNING
    assert "RUNNING" not in {r.info.status for r in before}
    finished_before = {r.data.tags["config_hash"] for r in before if r.info.status == "FINISHED"}
    assert 2 <= len(finished_before) < 4

    run_sweep(tmp_path, "seed=range(4)", "sweep.resume=true")
    client, parents, after = all_runs(uri)
    finished = [r for r in after if r.info.status == "FINISHED"]
    hashes = [r.data.tags["config_hash"] for r in finished]
    assert len(set(hashes)) == 4 and len(hashes) == len(set(hashes)), "a finished job was redone"
    second = next(p for p in parents if p.info.run_id != first_parent.info.run_id)
    new_children = [r for r in after if r.data.tags.get("mlflow.parentRunId") == second.info.run_id]
    assert {r.data.tags["config_hash"] for r in new_children}.isdisjoint(finished_before)
    report = client.download_artifacts(second.info.run_id, "report/summary.csv", str(tmp_path))
    assert len(Path(report).read_text().strip().splitlines()) == 1 + 4  # reused runs are reported too


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
    run_sweep(tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1", uri=mlflow_server)
    experiment = rest(mlflow_server, "experiments/get-by-name?experiment_name=tinyml_exp")
    found = rest(
        mlflow_server, "runs/search", {"experiment_ids": [experiment["experiment"]["experiment_id"]]}
    )
    runs = found["runs"]
    tags = [{t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in runs]
    parents = [r for r, t in zip(runs, tags, strict=True) if t.get("run_kind") == "sweep_parent"]
    assert len(runs) == 3 and len(parents) == 1
    parent_id = parents[0]["info"]["run_id"]
    children = [(r, t) for r, t in zip(runs, tags, strict=True) if t.get("mlflow.parentRunId") == parent_id]
    assert len(children) == 2
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
    assert rows[1][header.index("tflite B")] == "24,000"
    text = to_markdown(header, rows)
    assert text.splitlines()[1].startswith("| --- |") and "| ptq_int8 |" in text


# The seed study's shape on the emulated board (figures made up, not measured): float methods
# near 84 kB / 46 M instructions, int8 ones crowded near 25 kB / 14 M, encodings on some.
_FLOAT = ("none", "prune_constant", "prune_polynomial", "prune_structured", "cluster", "ptq_float16")
_INT8 = ("ptq_int8", "qat", "pqat", "cqat", "pcqat")
_ENCODED = {"prune_constant": ("sparse", 0.55), "cluster": ("clustered", 0.14), "pcqat": ("clustered", 0.38)}


def _study_figures(method: str, i: int, device: bool) -> tuple[dict[str, float], dict[str, str]]:
    floating = method in _FLOAT
    weights = 80_000.0 if floating else 20_000.0
    encoding, ratio = _ENCODED.get(method, ("dense", 1.0))
    metrics = {
        "accuracy/keras": 0.88 + 0.001 * i,
        "accuracy/tflite": 0.879 + 0.001 * i,
        "evaluate/tflite_samples": 10_000.0,
        "size/tflite_bytes": 83_856.0 if floating else 24_500.0 + 10 * i,
        "size/tflite_gzip_bytes": (60_000.0 if floating else 19_000.0) * (ratio if ratio < 1 else 1.0),
        "ram/estimate_bytes": 42_000.0 if floating else 11_000.0 + i,
        "flash/estimate_bytes": weights + 9_000.0,
        "cycles/estimate": 45e6 if floating else 14e6 + 1e4 * i,
    }
    tags = {"compression": method, "architecture": "seed_cnn", "target": "qemu_netduinoplus2"}
    tags |= {"profile.backend": "cgen", "cycles_unit": "instructions", "fits_target": "true"}
    if device:
        metrics |= {
            "accuracy/device": 0.88,
            "benchmark/samples": 200.0,
            "flash/firmware_bytes": 10_000.0 + weights * ratio,
            "flash/c_weights_bytes": weights * ratio,
            "flash/c_weights_dense_bytes": weights,
            "flash/c_weights_ratio": ratio,
            "ram/c_bytes": 42_000.0 if floating else 11_000.0,
            "cycles/median": (46e6 if floating else 14.2e6 + 2e4 * i) * (0.7 if ratio < 1 else 1.0),
        }
        layers = ["op0_CONV_2D=dense", "op2_CONV_2D=dense", f"op5_FULLY_CONNECTED={encoding}"]
        tags |= {"firmware.weights": "auto", "firmware.encodings": ", ".join(layers)}
    return metrics, tags


def _log_study(uri: str, experiment: str, device: bool, methods: tuple[str, ...] = ()) -> str:
    """A sweep parent and its children (the 12 methods by default) in a real MLflow store, one
    batch per run; ptq_dynamic has no firmware (the generator refuses hybrid models), so its
    device figures are missing. The parent's id."""
    from mlflow.entities import Metric

    from tinyml_exp.tracking import artifact_root_for
    from tinyml_exp.tracking.connect import ensure_experiment

    client = MlflowClient(uri)
    experiment_id = ensure_experiment(client, experiment, artifact_root_for(uri))
    parent = client.create_run(experiment_id, run_name="sweep", tags={"run_kind": "sweep_parent"})
    for i, method in enumerate(methods or (*_FLOAT, *_INT8, "ptq_dynamic")):
        metrics, tags = _study_figures(method, i, device and method != "ptq_dynamic")
        tags["mlflow.parentRunId"] = parent.info.run_id
        run = client.create_run(experiment_id, run_name=method, tags=tags)
        client.log_batch(run.info.run_id, metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()])
        client.set_terminated(run.info.run_id, "FINISHED")
    return parent.info.run_id


def test_report_of_a_study_with_the_device_has_its_columns_and_pictures(tmp_path: Path) -> None:
    from tinyml_exp.report import write_report

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    written = write_report(uri, tmp_path / "dev", parent_run_id=_log_study(uri, "dev", device=True))
    lines = (tmp_path / "dev" / "summary.md").read_text().splitlines()
    header, _, *rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    for title in ("acc keras %", "acc tflite %", "acc device %", "tflite B", "gzip B", "firmware flash B"):
        assert title in header
    for title in ("activation RAM B", "instructions on device", "weights vs dense", "weight encodings"):
        assert title in header
    assert "cycles on device" not in header and "flash B" not in header  # one measure per column
    by_method = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert len(by_method) == 12 and "0" not in by_method["ptq_dynamic"].values()
    assert (
        by_method["ptq_dynamic"]["firmware flash B"] == "—"
        and by_method["ptq_dynamic"]["acc device %"] == "—"
    )
    assert by_method["ptq_dynamic"]["acc tflite %"] == "89.00"
    assert by_method["pcqat"]["weights vs dense"] == "0.38×"
    assert by_method["pcqat"]["weight encodings"] == "auto: dense ×2, clustered ×1"
    assert by_method["qat"]["weight encodings"] == "auto: dense ×3"
    assert by_method["qat"]["instructions on device"] == "14,340,000"
    device = (tmp_path / "dev" / "device.md").read_text().splitlines()
    assert device[0].startswith("| method | status | acc keras % | acc tflite % | acc device % |")
    assert "instructions on device" in device[0] and "RAM formula" not in device[0] and len(device) == 14
    names = {p.name for p in written.paths}
    assert {
        "pareto_ram.png",
        "pareto_flash.png",
        "pareto_size.png",
        "pareto_cycles.png",
        "device_bars.png",
    } <= names

    # Without the device: no device column, no bars.
    parent = _log_study(uri, "plain", device=False, methods=("none", "ptq_int8", "qat"))
    plain = write_report(uri, tmp_path / "plain", parent_run_id=parent)
    header = (tmp_path / "plain" / "summary.md").read_text().splitlines()[0]
    assert "firmware flash B" not in header and "on device" not in header and "encodings" not in header
    assert not {"device_bars.png", "device.md"} & {p.name for p in plain.paths}


def test_axes_state_one_measure_and_every_point_is_named_without_overlaps() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinyml_exp.report.labels import place_labels
    from tinyml_exp.report.pareto import COSTS, axis_label, choose, point_labels

    methods = _FLOAT + _INT8
    runs = [Run(m, m, "FINISHED", *_study_figures(m, i, device=i > 0), {}) for i, m in enumerate(methods)]
    measure, usable = choose(runs, dict(COSTS)["pareto_cycles"])
    assert measure.metric == "cycles/median" and len(usable) == len(methods) - 1  # "none" has no device
    assert axis_label(measure, usable) == "instructions per inference, measured on qemu_netduinoplus2"
    measure, _ = choose(runs[:2], dict(COSTS)["pareto_cycles"])
    assert measure.metric == "cycles/estimate"  # one run measured is not an axis: the estimate is
    assert point_labels(usable[:2]) == ["prune_constant", "prune_polynomial"]

    fig, ax = plt.subplots(figsize=(8, 5.5))
    points = [(r.metrics["cycles/median"], 100 * r.metrics["accuracy/tflite"]) for r in usable]
    ax.scatter(*zip(*points, strict=True))
    ax.margins(0.18)
    fig.tight_layout()
    labels = place_labels(ax, points, [r.name for r in usable])
    fig.canvas.draw()  # measured as drawn
    boxes = [label.get_window_extent(fig.canvas.get_renderer()) for label in labels]
    plt.close(fig)
    assert sorted(label.get_text() for label in labels) == sorted(r.name for r in usable)
    overlapping = [(i, j) for i in range(len(boxes)) for j in range(i) if boxes[i].overlaps(boxes[j])]
    assert not overlapping, overlapping


def test_bars_pair_a_dense_run_with_an_encoded_one_or_compute_dense_flash() -> None:
    from tinyml_exp.report.bars import pairs
    from tinyml_exp.report.table import encodings_summary

    def run(method: str, weights: str, i: int) -> Run:
        metrics, tags = _study_figures(method, i, device=True)
        if weights == "dense":  # the same model built with dense weights
            dense = metrics["flash/c_weights_dense_bytes"]
            metrics |= {
                "flash/firmware_bytes": 10_000 + dense,
                "flash/c_weights_bytes": dense,
                "cycles/median": 46e6,
            }
        return Run(
            f"{method}-{weights}", method, "FINISHED", metrics, {**tags, "firmware.weights": weights}, {}
        )

    found = pairs([run("cluster", "dense", 4), run("cluster", "auto", 4), run("pcqat", "auto", 10)])
    assert [p.label for p in found] == ["cluster", "pcqat"]
    assert found[0].flash() == pytest.approx((90_000.0, False, 21_200.0))  # both built
    assert found[0].count() == pytest.approx((46e6, 46e6 * 0.7))
    assert found[1].flash() == pytest.approx((30_000.0, True, 17_600.0))  # dense: from the encoded image
    assert found[1].count()[0] is None  # no dense run, no dense count
    dense = {
        "firmware.weights": "dense",
        "firmware.encodings": "op0_CONV_2D=dense, op5_FULLY_CONNECTED=dense",
    }
    assert encodings_summary(Run("r", "r", "FINISHED", {}, dense, {})) == "dense ×2"  # no "dense: dense"


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
