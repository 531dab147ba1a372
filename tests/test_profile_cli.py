"""`tinyml-exp-profile` on a `.tflite` given by path, and the profile stage inside the real app."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import app_env, run_app, tiny_overrides
from tests.profile_models import cnn_model, unsupported_model

ISSUE_METRICS = (
    "macs/total",
    "ram/formula_bytes",
    "ram/tflm_arena_bytes",
    "ram/tflm_arena_min_bytes",
    "flash/estimate_bytes",
    "cycles/estimate",
    "latency/estimate_ms",
    "throughput/estimate_fps",
)


def profile_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tinyml_exp.cli.profile", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=app_env(),
    )


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "small_cnn.tflite"
    path.write_bytes(cnn_model())
    return path


def test_profile_a_tflite_by_path_without_training_or_mlflow(tmp_path: Path, model_file: Path) -> None:
    out = tmp_path / "prof"
    done = profile_cli(
        [str(model_file), "target=nucleo_h743zi2", "profile.backend=tflm_cmsis_nn", "--out", str(out)],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    text = done.stdout
    assert "MACs    924" in text and "nucleo_h743zi2" in text and "Verdict FITS (tflm_cmsis_nn)" in text
    assert "| CONV_2D | 1 | FLOAT32 | 1x6x6x2 | 1x4x4x3 |" in text  # the per-layer table
    rows = list(csv.DictReader((out / "small_cnn_layers.csv").open()))
    assert [r["op"] for r in rows] == [
        "CONV_2D",
        "MAX_POOL_2D",
        "RESHAPE",
        "FULLY_CONNECTED",
        "SOFTMAX",
        "TOTAL",
    ]
    assert rows[-1]["macs"] == "924"
    png = (out / "small_cnn_memory.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "| SOFTMAX | 1 | yes | yes | yes |" in (out / "small_cnn_operators.md").read_text()
    assert not list(tmp_path.glob("*.db")) and not (tmp_path / "mlruns").exists()  # nothing logged


def test_several_targets_and_check_exit_code(tmp_path: Path, model_file: Path) -> None:
    args = [str(model_file), "target=b_l475e_iot01a,pico_rp2040", "target.reserved_ram_bytes=130000"]
    done = profile_cli([*args, "profile.backend=tflm_reference", "--check", "--no-table", "-q"], tmp_path)
    assert done.returncode == 3, done.stderr[-3000:]
    table = done.stdout.split("target                 fits")[1]
    assert "b_l475e_iot01a         NO" in table and "short by" in table
    assert "pico_rp2040            yes" in table


def test_bad_override_names_the_key(tmp_path: Path, model_file: Path) -> None:
    done = profile_cli([str(model_file), "target.ram_byts=1"], tmp_path)
    assert done.returncode == 2 and "ram_byts" in done.stderr
    missing = profile_cli([str(tmp_path / "nope.tflite")], tmp_path)
    assert missing.returncode == 2 and "nope.tflite: no such file" in missing.stderr


def test_profile_logged_to_mlflow_when_asked(tmp_path: Path, model_file: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    done = profile_cli(
        [str(model_file), "target=sparkfun_edge", f"tracking.uri={uri}", "--mlflow", "-q"], tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("tinyml_exp").experiment_id])
    assert run.data.tags["target"] == "sparkfun_edge" and run.data.tags["fits_target"] == "true"
    assert run.data.params["target.clock_hz"] == "48000000"
    for name in ISSUE_METRICS:
        assert name in run.data.metrics, name
    assert run.data.metrics["energy/estimate_uj"] > 0  # the Apollo3 has a power figure


def test_preflight_reports_an_unsupported_operator_without_failing(tmp_path: Path) -> None:
    from tinyml_exp.profile.stage import preflight
    from tinyml_exp.tracking import Tracker

    with Tracker(f"sqlite:///{tmp_path}/mlflow.db", "preflight") as tracker:
        result = preflight(unsupported_model(), tmp_path, "bad")
        tracker.log_result(result)
        check = result.check
        run_id = tracker.run_id
    assert not check.supported("tflm_reference")
    tags = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(run_id).data.tags
    assert tags["ops.tflm_initialises"] == tags["ops.cgen_generates"] == "false"
    assert tags["ops.cgen_unsupported"] == "HASHTABLE_LOOKUP"
    table = (tmp_path / "profile" / "bad_operators.md").read_text()
    assert "| HASHTABLE_LOOKUP | 1 | no | no | no |" in table and "Didn't find op" in table


@pytest.mark.slow
def test_app_sweep_over_targets_logs_profile_and_fit(tmp_path: Path) -> None:
    """`python -m tinyml_exp -m target=a,b`: every job profiles; a board the model does not fit is
    a FINISHED run tagged fits_target=false, so the sweep can be filtered on it."""
    overrides = [
        *tiny_overrides(tmp_path),
        "target=b_l475e_iot01a,pico_rp2040",
        "target.reserved_ram_bytes=130000",  # leaves 1 KB on the B-L475E, 140 KB on the Pico
        f"hydra.sweep.dir={tmp_path}/multirun",
    ]
    done = run_app(["-m", *overrides], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("tinyml_exp").experiment_id
    jobs = [r for r in client.search_runs([experiment]) if "fits_target" in r.data.tags]  # not the parent
    assert {r.data.tags["target"]: r.data.tags["fits_target"] for r in jobs} == {
        "b_l475e_iot01a": "false",
        "pico_rp2040": "true",
    }
    [too_small] = client.search_runs([experiment], "tags.fits_target = 'false'")
    assert too_small.info.status == "FINISHED"
    assert "RAM: needs" in too_small.data.tags["fits_target.reason"]
    for run in jobs:
        for name in ISSUE_METRICS:
            assert name in run.data.metrics, (run.data.tags["target"], name)
        assert run.data.metrics["macs/total"] == 93_288
        assert run.data.tags["ops.list"].startswith("RESHAPE v1, CONV_2D")
        assert run.data.tags["ops.tflm_initialises"] == run.data.tags["ops.cgen_generates"] == "true"
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "profile")}
        assert {"profile/seed_cnn_none_layers.csv", "profile/seed_cnn_none_memory.png"} <= artifacts
