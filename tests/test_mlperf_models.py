"""The MLPerf Tiny reference architectures (ds_cnn, mobilenet_v1, fc_autoencoder; resnet8 is in
test_models.py): their parameter and MAC counts, int8 conversion, the generated C bit-exact on
the host, and the activation plan (in-place overlaps) against the lifetimes-only plan and TFLM.

Fast tests use tiny inputs (tests/mlperf_models.py); the `slow` ones build the full-size models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers import compose_config, require_commands
from tests.mlperf_models import MLPERF_MODELS, mlperf_model
from tests.test_cgen import _check_program, compile_host, random_inputs, run_host, run_tflite_ref, run_tflm
from tinyml_exp.export.cgen import build_program, generate_c
from tinyml_exp.export.cgen.planner import find_conflicts
from tinyml_exp.models import build_model
from tinyml_exp.tflite_graph import read_graph

# (input shape, classes, Keras parameters, MACs of the int8 model), the MLPerf Tiny figures
REFERENCE = {
    "resnet8": ((32, 32, 3), 10, 78_666, 12_501_632),
    "ds_cnn": ((49, 10, 1), 12, 24_908, 2_656_768),
    "mobilenet_v1": ((96, 96, 3), 2, 221_794, 7_489_664),
    "fc_autoencoder": ((640,), 2, 269_992, 264_192),
}


def _plans(tflite: bytes) -> tuple[int, int]:
    """(planned bytes, lifetimes-only bytes) of the generated C; the plan has no conflict."""
    program, graph, _ = build_program(tflite)
    assert find_conflicts(program.requests, program.plan) == []
    planned = program.plan.total_bytes
    program.plan_buffers(graph=graph, overlap=False)
    return planned, program.plan.total_bytes


@pytest.mark.parametrize("name", ["ds_cnn", "mobilenet_v1", "fc_autoencoder"])
def test_architecture_has_the_reference_parameter_count(name: str) -> None:
    shape, classes, params, _ = REFERENCE[name]
    cfg = compose_config([f"architecture={name}", f"dataset=synthetic_{name}"])
    assert tuple(cfg.dataset.image_shape) == shape and len(cfg.dataset.class_names) == classes
    model = build_model(cfg.architecture, shape, classes)
    assert model.count_params() == params
    assert model.output_shape == (None, 640 if name == "fc_autoencoder" else classes)


@require_commands("gcc")
@pytest.mark.parametrize(
    "name", [n if n == "ds_cnn" else pytest.param(n, marks=pytest.mark.slow) for n in MLPERF_MODELS]
)
def test_tiny_model_trains_converts_and_its_c_is_bit_exact(name: str, tmp_path: Path) -> None:
    """Synthetic data, one epoch, int8 PTQ, generated C on the host against TFLite's reference
    kernels and TFLite Micro, value for value; the plan is valid and no larger than before.
    ≈ 10 s per model (tracing and conversion), so only DS-CNN outside the slow set."""
    model = mlperf_model(name, tiny=True, train_limit=200)
    graph = read_graph(model.tflite)
    assert [t.type_name for t in (*graph.input_tensors, *graph.output_tensors)] == ["INT8", "INT8"]
    x = random_inputs(model.tflite, 200, seed=2)
    out_shape = tuple(graph.output_tensors[0].shape[1:])
    for reference, run_reference in (("tflite", run_tflite_ref), ("tflm", run_tflm)):
        generate_c(model.tflite, tmp_path / reference, name, reference=reference)
        got = run_host(compile_host(tmp_path / reference), x, out_shape, np.int8)
        np.testing.assert_array_equal(got, run_reference(model.tflite, x))
    _check_program(model.tflite)
    planned, lifetimes_only = _plans(model.tflite)
    assert planned <= lifetimes_only


def test_plans_of_the_bench_models_do_not_grow() -> None:
    from tests.bench_models import tflite_model

    for kind in ("int8", "float32"):
        planned, lifetimes_only = _plans(tflite_model(kind))
        assert planned <= lifetimes_only


@pytest.mark.slow
@pytest.mark.parametrize("name", MLPERF_MODELS)
def test_full_model_macs_and_activation_bytes_reach_the_targets(name: str) -> None:
    """The reference MACs; planned activations ≤ 0.8 × the TFLM arena (ResNet-8: ≤ 34,000 B,
    was 49,440 with lifetimes only), below the lifetimes-only plan on the conv models."""
    from tinyml_exp.profile.memory import measure_arena

    model = mlperf_model(name)
    program, _, _ = build_program(model.tflite)
    assert sum(step.macs for step in program.steps) == REFERENCE[name][3]
    planned, lifetimes_only = _plans(model.tflite)
    _check_program(model.tflite)
    assert planned <= 0.8 * measure_arena(model.tflite, probe=False).total_bytes
    if name == "resnet8":
        assert planned <= 34_000
    if name != "fc_autoencoder":
        assert planned < lifetimes_only


@pytest.mark.slow
@require_commands("gcc")
def test_full_ds_cnn_c_is_bit_exact(tmp_path: Path) -> None:
    model = mlperf_model("ds_cnn")
    x = random_inputs(model.tflite, 1000, seed=3)
    generate_c(model.tflite, tmp_path, "ds_cnn", reference="tflite")
    got = run_host(compile_host(tmp_path), x, (12,), np.int8)
    np.testing.assert_array_equal(got, run_tflite_ref(model.tflite, x))
