"""A sweep over compression methods from the command line, as a user runs it: every method logs
its figures and invariants to MLflow, and the base model is trained once for all of them."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import run_app

# A small MLP on a small synthetic set: each job takes seconds.
JOB = [
    "dataset=synthetic",
    "dataset.num_train=400",
    "dataset.num_test=100",
    "architecture=mlp",
    "architecture.hidden_units=[16]",
    "train.epochs=2",
]
COMMON_METRICS = (
    "accuracy/keras",
    "accuracy/tflite",
    "accuracy/delta_vs_base",
    "params/nonzero",
    "sparsity/weights",
    "sparsity/weights_tflite",
    "size/tflite_bytes",
    "size/tflite_gzip_bytes",
    "compression/factor_tflite",
    "compression/factor_gzip",
    "compression/factor_h5",
)


@pytest.mark.slow
def test_sweep_logs_every_method_and_trains_the_base_once(tmp_path: Path) -> None:
    done = run_app(
        [
            "-m",
            *JOB,
            "compression=none,ptq_int8,ptq_dynamic,prune_structured,cqat",
            f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
            f"cache.dir={tmp_path}/cache",
            f"hydra.sweep.dir={tmp_path}/sweep",
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("tinyml_exp")
    every = client.search_runs([experiment.experiment_id])
    runs = {r.data.tags["compression"]: r for r in every if "compression" in r.data.tags}
    (parent,) = [r for r in every if "compression" not in r.data.tags]  # the sweep's parent run
    assert set(runs) == {"none", "ptq_int8", "ptq_dynamic", "prune_structured", "cqat"}
    assert all(r.info.status == "FINISHED" for r in runs.values())

    # The shared base model is trained once, before the fan-out, and every job reads it from the cache.
    assert (
        parent.data.tags["sweep.base_models"] == "1" and parent.data.tags["sweep.base_models_trained"] == "1"
    )
    assert [r.data.tags["base_model.from_cache"] for r in runs.values()] == ["True"] * 5
    assert len({r.data.tags["base_model.cache_key"] for r in runs.values()}) == 1

    for name, run in runs.items():
        metrics = run.data.metrics
        missing = [m for m in COMMON_METRICS if m not in metrics]
        assert not missing, (name, missing)
        assert metrics["invariant/tensor_types/tflite"] == 1.0, name
    none, ptq, structured, cqat = (
        runs[n].data.metrics for n in ("none", "ptq_int8", "prune_structured", "cqat")
    )
    assert none["compression/factor_tflite"] == 1.0 and none["accuracy/delta_vs_base"] == 0.0
    assert ptq["compression/factor_tflite"] > 3.0  # int8 weights: a quarter of the float bytes
    assert structured["sparsity/weights"] == 0.5 and structured["invariant/m_by_n/tflite"] == 1.0
    assert structured["params/nonzero"] < 0.6 * structured["params/total"]
    assert structured["compression/factor_tflite"] == pytest.approx(1.0, abs=0.01)  # zeros still stored
    assert structured["compression/factor_gzip"] > 1.3  # ... but they compress
    assert cqat["clusters/max_unique_per_kernel"] <= 16 and cqat["invariant/clusters/tflite"] == 1.0
    # TFLM has no hybrid kernels: the dynamic-range model is measured in TFLite only, and says so.
    assert "accuracy/tflm" not in runs["ptq_dynamic"].data.metrics and "accuracy/tflm" in none
    assert "dynamic" in runs["ptq_dynamic"].data.tags["evaluate.tflm_skipped"]
