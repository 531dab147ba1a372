"""Export round trips (Keras files, .tflite with batch 1, C header) and interpreter evaluation."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import require_commands, trained_seed_cnn
from tinyml_exp.evaluate import cross_entropy, evaluate
from tinyml_exp.evaluate.interpreters import TensorSpec, quantize_input
from tinyml_exp.export import export_artifacts
from tinyml_exp.export.c_header import write_c_header
from tinyml_exp.export.tflite import TFLiteRecipe, convert
from tinyml_exp.sizes import factor, gzip_bytes
from tinyml_exp.tflite_graph import read_graph


@pytest.fixture(scope="module")
def trained():
    """The seed CNN after one epoch on synthetic data (a few seconds)."""
    return trained_seed_cnn()


def test_float_tflite_has_batch_one_and_no_shape_ops(trained) -> None:
    model, _, _ = trained
    graph = read_graph(convert(model, TFLiteRecipe("none")))
    assert graph.input_tensors[0].shape == (1, 28, 28)
    assert graph.input_tensors[0].type_name == "FLOAT32"
    ops = [op for op, _ in graph.opcodes]
    assert ops == ["RESHAPE", "CONV_2D", "MAX_POOL_2D", "FULLY_CONNECTED"]


def test_int8_tflite_has_int8_input_and_output(trained) -> None:
    model, data, _ = trained
    graph = read_graph(convert(model, TFLiteRecipe("int8"), data.x_train[:50]))
    assert graph.input_tensors[0].type_name == "INT8" and graph.output_tensors[0].type_name == "INT8"
    weights = [t for t in graph.tensors if t.is_constant and t.type_name == "INT8"]
    assert weights, "int8 model without int8 weights"


def test_export_writes_loadable_artifacts_with_same_predictions(trained, tmp_path: Path) -> None:
    import tf_keras as keras

    model, data, cfg = trained
    result = export_artifacts(model, TFLiteRecipe("none"), data, tmp_path, "m", cfg.export)
    assert set(result.paths) == {"h5", "keras", "tflite", "c_header"}
    expected = model.predict(data.x_test[:20], verbose=0)
    for kind in ("h5", "keras"):
        loaded = keras.models.load_model(result.paths[kind])
        np.testing.assert_allclose(
            loaded.predict(data.x_test[:20], verbose=0), expected, rtol=1e-5, atol=1e-6
        )
    assert result.paths["tflite"].read_bytes() == result.tflite
    reference = {"h5_bytes": 300_000.0, "tflite_bytes": float(len(result.tflite)), "tflite_gzip_bytes": 1.0}
    metrics = result.size_metrics(reference)
    assert metrics["size/tflite_bytes"] == len(result.tflite)
    assert metrics["size/tflite_gzip_bytes"] == gzip_bytes(result.tflite)
    assert metrics["compression/factor_tflite"] == 1.0
    assert metrics["compression/factor_h5"] == pytest.approx(300_000 / len(result.tflite))


@require_commands("gcc")
def test_c_header_compiles_and_holds_the_model_bytes(tmp_path: Path) -> None:
    model = bytes(range(256)) * 3 + b"\x07"
    header = write_c_header(model, tmp_path / "model_data.h", "2nd-model")
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include <stdint.h>\n#include "model_data.h"\n'
        "int main(void) { unsigned long sum = 0; for (unsigned i = 0; i < _2nd_model_len; ++i) sum += _2nd_model[i];\n"
        '  printf("%u %lu %d\\n", _2nd_model_len, sum, (int)((uintptr_t)_2nd_model % 16)); return 0; }\n'
    )
    exe = tmp_path / "main"
    subprocess.run(
        ["gcc", "-std=c99", "-Wall", "-Werror", "-o", str(exe), str(tmp_path / "main.c")], check=True
    )
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(len(model)), str(sum(model)), "0"]
    assert header.read_text().count("0x") == len(model)


def test_evaluation_agrees_across_backends(trained) -> None:
    model, data, _ = trained
    tflite = convert(model, TFLiteRecipe("none"))
    result = evaluate(model, tflite, data, from_logits=True)
    m = result.metrics
    assert m["accuracy/keras"] > 0.5
    assert m["accuracy/tflite"] == pytest.approx(m["accuracy/keras"], abs=0.01)
    assert m["agreement/tflm_vs_tflite"] == 1.0
    assert m["loss/tflite"] == pytest.approx(m["loss/keras"], rel=1e-3)
    keras_loss = model.evaluate(data.x_test, data.y_test, verbose=0)[0]
    assert m["loss/keras"] == pytest.approx(keras_loss, rel=1e-4)


def test_int8_evaluation_runs_in_both_interpreters(trained) -> None:
    model, data, _ = trained
    tflite = convert(model, TFLiteRecipe("int8"), data.x_train[:100])
    m = evaluate(None, tflite, data, from_logits=True).metrics
    assert m["accuracy/tflite"] > 0.5 and m["accuracy/tflm"] > 0.5
    assert m["agreement/tflm_vs_tflite"] > 0.98


def test_quantize_input_rounds_half_away_from_zero() -> None:
    spec = TensorSpec((1, 4), np.dtype(np.int8), scale=0.5, zero_point=-3)
    x = np.array([0.25, -0.25, 0.75, 100.0], dtype=np.float32)  # /0.5 -> 0.5, -0.5, 1.5, 200
    np.testing.assert_array_equal(quantize_input(x, spec), [1 - 3, -1 - 3, 2 - 3, 127])


def test_cross_entropy_of_logits_and_probabilities_agree() -> None:
    logits = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([0, 1])
    expected = -np.mean(np.log(probs[[0, 1], labels]))
    assert cross_entropy(logits, labels, from_logits=True) == pytest.approx(expected)
    assert cross_entropy(probs, labels, from_logits=False) == pytest.approx(expected, rel=1e-6)


def test_size_factor_maths() -> None:
    assert factor(300, 100) == 3.0
    with pytest.raises(ValueError):
        factor(1, 0)
    redundant = bytes(10_000)
    assert gzip_bytes(redundant) < 100 < gzip_bytes(np.random.default_rng(0).bytes(10_000))
