"""model=tflite_file: a finished .tflite run without training, through the real app."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import run_app

SYNTHETIC = ["dataset=synthetic", "dataset.num_train=200", "dataset.num_test=50"]


def _vendor_tflite(path: Path) -> Path:
    """A tiny int8 classifier of the synthetic data's shape, converted as a vendor would."""
    import numpy as np
    import tf_keras as keras

    from tinyml_exp.export.tflite import TFLiteRecipe, convert

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")]
    )
    representative = np.random.default_rng(0).uniform(0, 1, (20, 28, 28, 1)).astype(np.float32)
    path.write_bytes(convert(model, TFLiteRecipe("int8"), representative))
    return path


def _run(tmp_path: Path, *args: str):
    return run_app(
        [*args, f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"hydra.run.dir={tmp_path}/outputs/run"],
        tmp_path,
    )


def test_a_truncated_tflite_is_one_line_and_no_run(tmp_path: Path) -> None:
    from tests.profile_models import fc_model

    broken = tmp_path / "vendor.tflite"
    broken.write_bytes(fc_model()[:40])
    done = _run(tmp_path, "model=tflite_file", f"model.path={broken}", *SYNTHETIC)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    lines = [line for line in output.splitlines() if "model.path" in line]
    assert len(lines) == 1 and "truncated or corrupt .tflite" in lines[0], output[-2000:]
    assert "Traceback" not in output


@pytest.mark.slow
def test_a_vendor_tflite_is_evaluated_profiled_and_benchmarked_without_training(tmp_path: Path) -> None:
    vendor = _vendor_tflite(tmp_path / "vendor-model.tflite")
    done = _run(
        tmp_path,
        "model=tflite_file",
        f"model.path={vendor}",
        "target=qemu_netduinoplus2",
        "benchmark.enabled=true",
        "benchmark.samples=5",
        *SYNTHETIC,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    [run] = client.search_runs([client.get_experiment_by_name("tinyml_exp").experiment_id])
    assert run.info.status == "FINISHED"
    metrics, tags = run.data.metrics, run.data.tags
    assert not [m for m in metrics if m.startswith(("train/", "time/train", "time/compress"))]
    assert "accuracy/keras" not in metrics
    for name in ("accuracy/tflite", "accuracy/tflm", "agreement/tflm_vs_tflite", "size/tflite_bytes"):
        assert name in metrics, name
    assert metrics["size/tflite_bytes"] == vendor.stat().st_size
    assert "cycles/estimate" in metrics and "flash/firmware_bytes" in metrics
    assert metrics["benchmark/samples"] == 5 and "cycles/median" in metrics
    assert tags["mlflow.runName"] == "vendor_model-synthetic-qemu_netduinoplus2"
    assert tags["model"] == "tflite_file" and tags["model.path"] == str(vendor.resolve())
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert {"model/vendor_model.tflite", "model/vendor_model_model_data.h"} <= artifacts


def test_the_data_fits_the_file_or_the_run_says_why() -> None:
    from types import SimpleNamespace

    import numpy as np

    from tests.profile_models import fc_model
    from tinyml_exp.sources.tflite_file import data_mismatch, recipe_of

    model = fc_model(inputs=8, units=4)  # float (1, 8) -> (1, 4)
    assert recipe_of(model).quantize == "none"

    def data(shape: tuple[int, ...], classes: int) -> SimpleNamespace:
        return SimpleNamespace(x_test=np.zeros((3, *shape), np.float32), num_classes=classes)

    assert data_mismatch(model, data((8,), 4)) is None
    assert data_mismatch(model, data((8, 1), 4)) is None  # a trailing channel axis of 1 fits
    assert "takes inputs of shape [8]" in data_mismatch(model, data((28, 28), 4))
    assert "gives 4 outputs per sample, the dataset has 10 classes" in data_mismatch(model, data((8,), 10))
