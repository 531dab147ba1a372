"""Invariants: the measurements they rest on, each check failing on a model that breaks it, and a
lost invariant ending a real run FAILED with the tag that names it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from tests.helpers import compose_config, tiny_overrides
from tinyml_exp.compress.invariants import (
    ClustersKept,
    InvariantError,
    MByNPattern,
    SparsityKept,
    TensorTypes,
    check_keras,
    enforce_invariants,
    verify_tflite,
)
from tinyml_exp.compress.measure import Kernel, m_by_n_eligible, m_by_n_violations, parameter_counts, sparsity
from tinyml_exp.compress.pruning import FIRST_STEP, ramp_steps
from tinyml_exp.compress.qat import PQAT
from tinyml_exp.export.tflite import TFLiteRecipe, convert
from tinyml_exp.tracking import Tracker


def kernel(rows_by_input: np.ndarray) -> Kernel:
    return Kernel("k", rows_by_input, rows_by_input, output_axis=0)


def test_m_by_n_counts_blocks_along_the_input_axis() -> None:
    good = np.array([[1.0, 0.0, 2.0, 0.0, 0.0, 0.0, 3.0, 4.0]])
    bad = np.array([[1.0, 1.0, 2.0, 0.0, 0.0, 0.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]])
    assert m_by_n_violations(kernel(good), 2, 4) == 0
    assert m_by_n_violations(kernel(bad), 2, 4) == 2
    assert m_by_n_violations(kernel(bad), 1, 4) == 1  # only the all-non-zero block breaks 1:4
    assert m_by_n_violations(kernel(good), 1, 2) == 1  # [3, 4] breaks 1:2
    odd = kernel(np.ones((3, 6)))  # 6 inputs: no whole block of 4, nothing m:n could prune
    assert not m_by_n_eligible(odd, 4) and m_by_n_violations(odd, 2, 4) == 0


def test_sparsity_weights_every_kernel_weight_equally() -> None:
    assert sparsity([kernel(np.zeros((1, 4))), kernel(np.ones((3, 4)))]) == 0.25
    assert sparsity([]) == 0.0


def test_ramp_ends_on_a_mask_update_within_the_run() -> None:
    for total in (2, 3, 7, 57, 100, 1687, 3375, 10_000):
        for fraction in (0.1, 0.8, 1.0):
            begin, end, frequency = ramp_steps(total, fraction)
            assert begin == FIRST_STEP < end <= total
            assert (end - begin) % frequency == 0 and 1 <= frequency <= 100
            assert (end - begin) // frequency >= min(10, end - begin)  # ≥ 10 updates when there is room


@pytest.fixture(scope="module")
def dense_model():
    """An untrained MLP: dense weights, no zeros, many distinct values."""
    cfg = compose_config(["architecture=mlp", "architecture.hidden_units=[8]"])
    from tinyml_exp.config import to_object

    return to_object(cfg.architecture).build((28, 28), 10)


def test_each_invariant_fails_on_a_model_that_breaks_it(dense_model) -> None:
    checks = check_keras(
        [SparsityKept(0.5, "prune"), MByNPattern(2, 4), ClustersKept(16), TensorTypes("int8")],
        dense_model,
        "qat",
    )
    assert [(c.key, c.held) for c in checks] == [
        ("sparsity/qat", False),
        ("m_by_n/qat", False),
        ("clusters/qat", False),
    ]  # tensor types say nothing about a Keras model
    assert "0.0000, 0.5000 reached after prune" in checks[0].detail
    assert "hidden0" in checks[1].detail and "dense" in checks[1].detail

    verification = verify_tflite(
        [SparsityKept(0.5, "prune")], TFLiteRecipe("int8"), convert(dense_model, TFLiteRecipe())
    )
    lost = {c.key: c.detail for c in verification.checks if not c.held}
    assert set(lost) == {"sparsity/tflite", "tensor_types/tflite"}
    assert "input" in lost["tensor_types/tflite"] and "FLOAT32, not INT8" in lost["tensor_types/tflite"]
    assert verification.metrics == {"sparsity/weights_tflite": 0.0}


def test_parameter_counts_leave_out_what_wrappers_add(dense_model) -> None:
    import tensorflow_model_optimization as tfmot

    quantized = tfmot.quantization.keras.quantize_model(dense_model)
    assert (
        parameter_counts(dense_model)["params/total"]
        == dense_model.count_params()
        == 784 * 8 + 8 + 8 * 10 + 10
    )
    assert parameter_counts(quantized) == parameter_counts(dense_model)


def test_a_lost_invariant_fails_the_run_with_a_tag(tmp_path: Path) -> None:
    from tinyml_exp.compress.invariants import Check

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    checks = [Check("sparsity", "prune", True, "ok"), Check("sparsity", "qat", False, "kernel sparsity 0.01")]
    from tinyml_exp.results import StageResult

    tracker = Tracker(uri, "t")
    with pytest.raises(InvariantError, match=r"invariant sparsity/qat lost: kernel sparsity 0.01"), tracker:
        try:
            enforce_invariants(StageResult(), checks)
        except InvariantError as e:  # the pipeline logs the checks the error carries
            tracker.log_result(e.partial)
            raise
    run = MlflowClient(uri).get_run(tracker.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["invariant_failed"] == "sparsity/qat"
    assert (
        run.data.metrics["invariant/sparsity/prune"] == 1.0
        and run.data.metrics["invariant/sparsity/qat"] == 0.0
    )


@dataclass
class PruneThenPlainQAT(PQAT):
    """What PQAT would be with TFMOT's default scheme: QAT fine-tunes the pruned weights back."""

    scheme: ClassVar[str] = "default"


@pytest.mark.slow
def test_plain_qat_after_pruning_is_caught_and_fails_the_run(tmp_path: Path) -> None:
    """The real pipeline, in process, with a method that really loses its sparsity."""
    from tinyml_exp.pipeline import run_experiment

    cfg = compose_config(
        [
            *tiny_overrides(tmp_path),
            "dataset.num_train=600",
            "dataset.num_test=100",
            "architecture=mlp",
            "architecture.hidden_units=[16]",
            "evaluate.tflm=false",
        ]
    )
    cfg.compression = OmegaConf.structured(PruneThenPlainQAT(name="pqat", epochs=1))
    with pytest.raises(InvariantError, match=r"invariant sparsity/qat lost"):
        run_experiment(cfg, tmp_path / "out")
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    [run] = client.search_runs([client.get_experiment_by_name("tinyml_exp").experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.tags["invariant_failed"] == "sparsity/qat"
    assert run.data.tags["stage_failed"] == "compress"
    assert "invariant sparsity/qat lost" in run.data.tags["failure_reason"]
    assert run.data.metrics["invariant/sparsity/prune"] == 1.0
    assert run.data.metrics["sparsity/after_prune"] == pytest.approx(0.5, abs=0.01)
    assert run.data.metrics["sparsity/weights"] < 0.4  # what plain QAT left: logged, then refused
    assert "size/tflite_bytes" not in run.data.metrics  # nothing exported from a broken model
