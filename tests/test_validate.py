"""Cross-group rules (tinyml_exp/validate.py): each bad combination, composed from the real config,
fails before any work with a message that names the keys involved."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.helpers import compose_config
from tinyml_exp.config import to_object
from tinyml_exp.errors import ConfigError
from tinyml_exp.validate import evaluation_backends, fine_tune_steps_problem, known_train_samples, validate

GROUPS = ("dataset", "architecture", "compression", "target")


def run_validate(overrides: list[str]) -> None:
    cfg = compose_config(overrides)
    # The group options as their classes, as the pipeline hands them over.
    validate(cfg, SimpleNamespace(**{group: to_object(cfg[group]) for group in GROUPS}))


def refused(overrides: list[str]) -> str:
    with pytest.raises(ConfigError) as caught:
        run_validate(overrides)
    return str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "keys"),
    [
        # compression × export
        (
            ["compression=ptq_int8", "export.representative_samples=0"],
            ["compression.quantize=int8", "export.representative_samples"],
        ),
        # compression × train × dataset: 90 samples, batch 128 -> 1 step per epoch, 1 epoch
        (
            [
                "dataset=synthetic",
                "dataset.train_limit=100",
                "train.batch_size=128",
                "compression=prune_polynomial",
                "compression.epochs=1",
            ],
            [
                "compression=prune_polynomial",
                "compression.epochs=1",
                "train.batch_size=128",
                "90 training samples",
            ],
        ),
        # architecture task × compression: fine-tuning uses the classifier's loss
        (
            ["architecture=fc_autoencoder", "dataset=synthetic_fc_autoencoder", "compression=qat"],
            ["compression=qat", "architecture.task='autoencoder'", "compression=none, ptq_int8"],
        ),
        # profile × target
        (
            ["profile.backend=tflm_cmsis_nn", "target=esp32_s3_devkitc"],
            ["profile.backend='tflm_cmsis_nn'", "target.core='xtensa-lx7'"],
        ),
        (["profile.backend=tflm"], ["profile.backend='tflm' is not one of tflm_reference"]),
        (
            ["export.weights=lut"],
            ["export.weights='lut' is not one of dense, sparse, clustered, smallest, auto"],
        ),
        (["target.core=cortex-m99"], ["target.core='cortex-m99'", "has no cost model"]),
        (["target.count_unit=ticks"], ["target.count_unit='ticks'"]),
        (["profile.probe_timeout_s=0"], ["profile.probe_timeout_s=0"]),
        # firmware × target
        (
            ["target=host", "firmware.enabled=true"],
            ["firmware.enabled=true", "target 'host'", "target.firmware_board"],
        ),
        (["firmware.reference=tflm_cmsis"], ["firmware.reference='tflm_cmsis' is not one of tflite, tflm"]),
        (["firmware.jobs=0"], ["firmware.jobs=0"]),
        # benchmark × firmware × target
        (
            ["target=host", "benchmark.enabled=true"],
            [
                "benchmark.enabled=true needs a target with a firmware port; target 'host'",
                "target.firmware_board",
            ],
        ),
        (
            ["target=qemu_netduinoplus2", "benchmark.enabled=true", "firmware.enabled=false"],
            ["benchmark.enabled=true", "set firmware.enabled=true"],
        ),
        (
            ["target=b_l475e_iot01a", "benchmark.enabled=true", "benchmark.port=null"],
            ["benchmark.port is not set for the real board 'b_l475e_iot01a'"],
        ),
        (
            ["target=qemu_netduinoplus2", "benchmark.enabled=true", "benchmark.samples=0"],
            ["benchmark.samples=0 must be >= 1"],
        ),
        (
            ["target=qemu_netduinoplus2", "benchmark.enabled=true", "benchmark.timeout_s=0"],
            ["benchmark.timeout_s=0"],
        ),
    ],
)
def test_bad_combination_is_refused_naming_the_keys(overrides: list[str], keys: list[str]) -> None:
    message = refused(overrides)
    for key in keys:
        assert key in message


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["compression=qat", "export.representative_samples=0"],  # QAT learns its ranges
        ["profile.enabled=false", "target=esp32_s3_devkitc", "profile.backend=tflm_cmsis_nn"],
        ["target=host", "firmware.enabled=false"],
        ["target=qemu_netduinoplus2", "benchmark.enabled=true"],  # QEMU starts on a free port
        ["dataset=synthetic", "compression=prune_polynomial", "compression.epochs=1"],
    ],
)
def test_good_combinations_pass(overrides: list[str]) -> None:
    run_validate(overrides)


def test_fine_tune_steps_rule_counts_what_the_config_knows() -> None:
    synthetic = compose_config(["dataset=synthetic"]).dataset  # 2000 generated, 10 % for validation
    assert known_train_samples(synthetic) == 1800
    limited = compose_config(["dataset=synthetic", "dataset.train_limit=50", "dataset.val_fraction=0.2"])
    assert known_train_samples(limited.dataset) == 40
    assert known_train_samples(compose_config().dataset) is None  # Fashion-MNIST: the files know
    ramp = to_object(compose_config(["compression=prune_polynomial", "compression.epochs=1"]).compression)
    assert fine_tune_steps_problem(ramp, train_samples=33, batch_size=32) is None  # 2 steps
    assert "gives 1" in (fine_tune_steps_problem(ramp, train_samples=32, batch_size=32) or "")
    constant = to_object(compose_config(["compression=prune_constant", "compression.epochs=1"]).compression)
    assert fine_tune_steps_problem(constant, train_samples=1, batch_size=32) is None  # no schedule to lay out


@pytest.mark.parametrize(
    ("compression", "evaluate", "backends", "skipped"),
    [
        ("none", [], ("tflite", "tflm"), None),
        ("ptq_int8", [], ("tflite", "tflm"), None),
        ("ptq_dynamic", [], ("tflite",), "TFLM has no kernels for quantize=dynamic models"),
        ("ptq_float16", [], ("tflite",), "TFLM has no kernels for quantize=float16 models"),
        ("ptq_dynamic", ["evaluate.tflm=false"], ("tflite",), None),  # not asked for: nothing skipped
        ("none", ["evaluate.tflite=false"], ("tflm",), None),
    ],
)
def test_which_interpreters_evaluate_the_model(
    compression: str, evaluate: list[str], backends: tuple[str, ...], skipped: str | None
) -> None:
    cfg = compose_config([f"compression={compression}", *evaluate])
    plan = evaluation_backends(cfg.evaluate, to_object(cfg.compression).recipe())
    assert (plan.backends, plan.tflm_skipped) == (backends, skipped)


def test_the_app_refuses_a_bad_combination_before_any_work(tmp_path) -> None:
    """One line naming the keys, non-zero exit, and no run in the MLflow store."""
    from tests.helpers import run_app, tiny_overrides

    done = run_app(
        [*tiny_overrides(tmp_path), "target=host", "benchmark.enabled=true"], tmp_path, timeout=120
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "benchmark.enabled=true needs a target with a firmware port; target 'host'" in output
    assert "Traceback" not in output
    assert not (tmp_path / "mlflow.db").exists()
