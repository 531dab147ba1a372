"""A Conv1D sensor model on CSV time series: trains, quantizes to int8, and its generated C is
bit-exact with TFLite and TFLM on the host; on the emulated board through the whole app (slow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import compose_config, qemu_benchmark_overrides, require_commands, run_app
from tests.test_cgen import compile_host, random_inputs, run_host, run_tflite_ref, run_tflm
from tinyml_exp.config import to_object

FREQUENCIES = {"idle": 0.02, "walk": 0.08, "run": 0.2}  # cycles per row of the ax channel


def write_imu_csv(path: Path, rows: int = 3000, seed: int = 0) -> Path:
    """ax: a sine whose frequency is the activity's, ay: noise, az: the activity's offset; the
    label changes every 60 rows."""
    rng = np.random.default_rng(seed)
    names = list(FREQUENCIES)
    lines = ["t,ax,ay,az,activity"]
    phase = 0.0
    for i in range(rows):
        name = names[(i // 60) % len(names)]
        phase += 2 * np.pi * FREQUENCIES[name]
        ax = np.sin(phase) + rng.normal(0, 0.2)
        lines.append(
            f"{i},{ax:.4f},{rng.normal(0, 1):.4f},{names.index(name) * 0.3 + rng.normal(0, 0.3):.4f},{name}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def csv_overrides(path: Path) -> list[str]:
    return [
        "dataset=csv",
        f"dataset.path={path}",
        "dataset.label_column=activity",
        "dataset.channels=[ax,ay,az]",
        "dataset.window=40",
        "dataset.stride=10",
        "dataset.label_rule=uniform",
        "architecture=sensor_cnn_sequential",
    ]


@pytest.mark.slow
@require_commands("gcc")
def test_conv1d_on_csv_trains_quantizes_and_generates_bit_exact_c(tmp_path: Path) -> None:
    from tinyml_exp.evaluate import evaluate
    from tinyml_exp.export.cgen import generate_c
    from tinyml_exp.export.tflite import TFLiteRecipe, convert
    from tinyml_exp.models.train import compile_model, fit, set_global_seed
    from tinyml_exp.tflite_graph import read_graph

    cfg = compose_config(csv_overrides(write_imu_csv(tmp_path / "imu.csv")))
    data = to_object(cfg.dataset).load(0)
    assert data.input_shape == (40, 3) and data.class_names == ("idle", "run", "walk")
    set_global_seed(0)
    model = to_object(cfg.architecture).build(data.input_shape, data.num_classes)
    compile_model(model, "adam", 3e-3, from_logits=True)
    fit(model, data, epochs=15, batch_size=16, verbose=0)
    tflite = convert(model, TFLiteRecipe("int8"), data.x_train[:100])
    ops = [op.opcode for op in read_graph(tflite).operators]
    assert "CONV_2D" in ops and "EXPAND_DIMS" not in ops, ops
    accuracy = evaluate(model, tflite, data, True, backends=("tflite",)).metrics["accuracy/tflite"]
    assert accuracy > 0.6, f"int8 accuracy {accuracy:.3f} (chance 0.33)"

    x = random_inputs(tflite, 300, seed=5)
    for reference, want in (("tflite", run_tflite_ref(tflite, x)), ("tflm", run_tflm(tflite, x))):
        generate_c(tflite, tmp_path / reference, "sensor", reference=reference)
        got = run_host(compile_host(tmp_path / reference), x, want.shape[1:], want.dtype)
        assert int((got != want).sum()) == 0, f"{reference}: C differs"


@pytest.mark.slow
@require_commands("arm-none-eabi-gcc", "qemu-system-arm", "make")
def test_conv1d_csv_run_on_the_emulated_board_is_bit_exact(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = [
        *csv_overrides(write_imu_csv(tmp_path / "imu.csv")),
        "train.epochs=15",
        "train.learning_rate=0.003",
        "train.batch_size=16",
        *qemu_benchmark_overrides(tmp_path, uri),
    ]
    done = run_app(args, tmp_path)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("tinyml_exp").experiment_id])
    m = run.data.metrics
    assert run.info.status == "FINISHED" and m["benchmark/samples"] == m["data/test_samples"] > 0
    assert (
        m["agreement/device_vs_tflite_exact"] == 1.0
        and m["accuracy/device"] == m["accuracy/tflite_reference"]
    )
    assert m["cycles/median"] > 0 and m["accuracy/device"] > 0.6  # chance: 0.33
