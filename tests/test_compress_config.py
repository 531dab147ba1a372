"""Compression options compose from conf/, and nonsense fails before any work, naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import compose_config, options, run_app, tiny_overrides
from tinyml_exp.compress import CompressionMethod
from tinyml_exp.config import option_classes, to_object
from tinyml_exp.errors import ConfigError

METHODS = options("compression")


def method(name: str, *overrides: str) -> CompressionMethod:
    cfg = compose_config([f"compression={name}", *(f"compression.{o}" for o in overrides)])
    return to_object(cfg.compression)


def test_every_option_has_a_yaml_and_a_class() -> None:
    # The options the compression issue promises users, by name.
    promised = "none ptq_int8 ptq_dynamic ptq_float16 qat prune_structured prune_constant prune_polynomial pqat cluster cqat pcqat"
    assert set(METHODS) == set(promised.split())
    assert set(METHODS) == set(option_classes("compression"))


@pytest.mark.parametrize("name", METHODS)
def test_defaults_are_valid_and_named_after_the_option(name: str) -> None:
    option = method(name)
    option.validate()
    assert option.name == name


@pytest.mark.parametrize(
    ("name", "override", "message"),
    [
        ("prune_constant", "sparsity=1.5", "compression.sparsity=1.5 must be in [0, 1)"),
        ("prune_constant", "sparsity=-0.1", "compression.sparsity=-0.1 must be in [0, 1)"),
        ("pqat", "sparsity=1.0", "compression.sparsity=1.0 must be in [0, 1)"),
        ("prune_polynomial", "final_sparsity=1.5", "compression.final_sparsity=1.5 must be in [0, 1)"),
        ("prune_polynomial", "initial_sparsity=0.9", "compression.initial_sparsity=0.9 must be ≤"),
        ("prune_polynomial", "ramp_fraction=0", "compression.ramp_fraction=0.0 must be in (0, 1]"),
        ("prune_structured", "m=5", "compression.m=5 must be in [1, compression.n=4)"),
        ("prune_structured", "m=4", "compression.m=4 must be in [1, compression.n=4)"),
        ("prune_structured", "n=1", "compression.n=1 must be ≥ 2"),
        ("cluster", "clusters=0", "compression.clusters=0 must be in [2, 1024]"),
        ("cqat", "clusters=1", "compression.clusters=1 must be in [2, 1024]"),
        ("pcqat", "clusters=0", "compression.clusters=0"),
        ("cluster", "init=median", "compression.init='median' is not one of kmeans_plus_plus"),
        ("qat", "epochs=0", "compression.epochs=0 must be ≥ 1"),
        ("prune_constant", "learning_rate=0", "compression.learning_rate=0.0 must be > 0"),
        ("qat", "quantize=float16", "compression.quantize='float16' is not possible for compression=qat"),
        ("pcqat", "quantize=none", "compression.quantize='none' is not possible for compression=pcqat"),
        ("ptq_int8", "quantize=float16", "compression.quantize='float16' contradicts compression=ptq_int8"),
        ("ptq_dynamic", "quantize=none", "choose compression=none"),
        ("cluster", "quantize=int4", "compression.quantize='int4' is not one of none, int8"),
    ],
)
def test_nonsense_is_rejected_naming_the_key(name: str, override: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        method(name, override).validate()
    assert message in str(caught.value)


@pytest.mark.parametrize("name", ["prune_constant", "cluster", "prune_structured", "prune_polynomial"])
@pytest.mark.parametrize("quantize", ["int8", "dynamic", "float16"])
def test_pruned_or_clustered_models_can_be_quantized(name: str, quantize: str) -> None:
    option = method(name, f"quantize={quantize}")
    option.validate()
    assert option.recipe().quantize == quantize and not option.recipe().quantization_aware


@pytest.mark.parametrize("name", ["qat", "pqat", "cqat", "pcqat"])
def test_qat_family_converts_from_learnt_ranges(name: str) -> None:
    recipe = method(name).recipe()
    assert recipe.quantize == "int8" and recipe.quantization_aware


def test_nonsense_on_the_command_line_fails_before_any_work(tmp_path: Path) -> None:
    done = run_app(
        [
            *tiny_overrides(tmp_path),
            "compression=prune_structured",
            "compression.m=5",
            f"hydra.run.dir={tmp_path}/out",
        ],
        tmp_path,
        timeout=120,
    )
    output = done.stdout + done.stderr
    errors = [line for line in output.splitlines() if "ERROR" in line]
    assert done.returncode != 0
    assert len(errors) == 1 and "compression.m=5" in errors[0] and "Traceback" not in output
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "cache").exists()
