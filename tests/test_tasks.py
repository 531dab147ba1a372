"""Non-classification tasks: an autoencoder trains on its input with MSE and is measured by
reconstruction error (and ROC AUC on labelled anomalies), on the interpreters and the device."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import run_app
from tinyml_exp.errors import ConfigError
from tinyml_exp.tasks import roc_auc, targets, task_of


def test_roc_auc_is_the_mann_whitney_statistic_with_ties_counted_half() -> None:
    scores, anomalous = np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])
    assert roc_auc(scores, anomalous) == pytest.approx(0.75)  # the usual 4-sample example
    assert roc_auc(np.ones(4), anomalous) == 0.5
    assert roc_auc(scores, np.zeros(4)) is None


def test_the_target_follows_the_task() -> None:
    x, y = np.arange(12, dtype=np.float32).reshape(3, 2, 2), np.array([0, 1, 0])
    assert targets(x, y, "classification") is y
    np.testing.assert_array_equal(targets(x, y, "autoencoder"), x.reshape(3, 4))
    assert targets(x, y, "regression").shape == (3, 1)
    with pytest.raises(ConfigError, match=r"architecture\.task='ranking'"):
        task_of(type("A", (), {"task": "ranking"})())


@pytest.mark.slow
def test_an_autoencoder_trains_on_mse_and_reports_no_classification_metrics(tmp_path: Path) -> None:
    done = run_app(
        [
            "architecture=fc_autoencoder",
            "dataset=synthetic_fc_autoencoder",
            "dataset.image_shape=[64]",
            "architecture.hidden_units=[16,16]",
            "dataset.num_train=300",
            "dataset.num_test=60",
            "train.epochs=2",
            "compression=ptq_int8",
            "target=qemu_netduinoplus2",
            "benchmark.enabled=true",
            "benchmark.samples=5",
            f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
            f"cache.dir={tmp_path}/cache",
            f"hydra.run.dir={tmp_path}/outputs/run",
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    [run] = client.search_runs([client.get_experiment_by_name("tinyml_exp").experiment_id])
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert len(history) == 2 and history[1].value < history[0].value  # MSE on the input goes down
    assert not [m for m in metrics if m.startswith(("accuracy/", "loss/")) or "accuracy" in m]
    for backend in ("keras", "tflite", "tflm"):
        assert 0 < metrics[f"mse/{backend}"] < 1, backend  # inputs in [0, 1]
        assert 0 <= metrics[f"roc_auc/{backend}"] <= 1, backend
    assert metrics["mse/tflite"] == pytest.approx(metrics["mse/keras"], rel=0.25)  # int8 is close
    assert metrics["error/tflm_vs_tflite_max_abs"] < 0.05
    assert "base/mse_keras" in metrics
    assert metrics["benchmark/samples"] == 5 and metrics["agreement/device_vs_tflite_exact"] == 1.0
    assert "flash/firmware_bytes" in metrics and "cycles/median" in metrics
