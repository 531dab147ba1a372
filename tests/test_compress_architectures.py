"""Every method on the other architectures: the MLP (all methods) and ResNet-8 (narrowed, on small
3-channel images) for the hard cases — a 3-channel stem m:n cannot split, BatchNormalization folded
into kernels, an L2 kernel regularizer under cluster-preserving QAT."""

from __future__ import annotations

import pytest

from tests.helpers import compose_config, options
from tinyml_exp.compress import FineTuneSettings
from tinyml_exp.config import to_object
from tinyml_exp.errors import ConfigError
from tinyml_exp.export.tflite import convert

ARCHITECTURES = {
    "mlp": ["architecture=mlp", "dataset.num_train=500"],
    # Narrow and small: the invariants do not depend on width or resolution (PCQAT 355 s loaded -> 35 s).
    "resnet8": [
        "architecture=resnet8",
        "architecture.filters=[16,16,32]",  # 8 filters crash oneDNN (TF 2.21)
        "dataset.image_shape=[16,16,3]",
        "dataset.num_train=128",
    ],
}
NO_FINE_TUNE = {"none", "ptq_int8", "ptq_dynamic", "ptq_float16"}
ALL_METHODS = options("compression")


@pytest.fixture(scope="module")
def trained():
    """trained(architecture) -> (model, data, overrides, from_logits), each trained once (1 epoch)."""
    from tinyml_exp.models.train import compile_model, fit, set_global_seed

    done = {}

    def get(architecture: str):
        if architecture not in done:
            overrides = ["dataset=synthetic", "dataset.num_test=100", *ARCHITECTURES[architecture]]
            cfg = compose_config(overrides)
            data = to_object(cfg.dataset).load(0)
            set_global_seed(0)
            architecture_option = to_object(cfg.architecture)
            from_logits = not architecture_option.softmax_output  # ResNet-8 ends in a softmax
            model = architecture_option.build(data.input_shape, data.num_classes)
            compile_model(model, "adam", 1e-3, from_logits)
            fit(model, data, epochs=1, batch_size=32, verbose=0)
            done[architecture] = model, data, overrides, from_logits
        return done[architecture]

    return get


def compress_and_check(trained, architecture: str, name: str, *overrides: str):
    model, data, base_overrides, from_logits = trained(architecture)
    epochs = [] if name in NO_FINE_TUNE else ["compression.epochs=1"]
    cfg = compose_config(
        [*base_overrides, f"compression={name}", *epochs, *(f"compression.{o}" for o in overrides)]
    )
    method = to_object(cfg.compression)
    method.validate()
    result = method.apply(model, data, FineTuneSettings("adam", 32, from_logits, verbose=0))
    verification = result.verify_tflite(convert(result.model, result.recipe, data.x_train[:50]))
    checks = result.checks + verification.checks
    assert all(c.held for c in checks), [c for c in checks if not c.held]
    return result, verification


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL_METHODS)
def test_every_method_on_the_mlp(trained, name: str) -> None:
    compress_and_check(trained, "mlp", name)


@pytest.mark.slow
def test_resnet8_structured_leaves_the_stem_dense_and_prunes_the_rest(trained) -> None:
    result, verification = compress_and_check(trained, "resnet8", "prune_structured", "quantize=int8")
    assert result.tags["prune.dense_layers"] == "stem_conv: input axis of 3 is not a multiple of n=4"
    assert result.metrics["sparsity/pruned_layers"] == 0.5
    assert {c.key for c in verification.checks} == {"sparsity/tflite", "m_by_n/tflite", "tensor_types/tflite"}


@pytest.mark.slow
def test_resnet8_pcqat_keeps_sparsity_and_clusters(trained) -> None:
    """Pruning, sparsity-preserving clustering, then QAT (≈ 40 s: ResNet-8 wrapped three times)."""
    result, verification = compress_and_check(trained, "resnet8", "pcqat")
    assert result.metrics["sparsity/weights"] >= 0.5
    assert result.metrics["clusters/max_unique_per_channel"] <= 16
    assert verification.metrics["clusters/max_unique_per_channel_tflite"] <= 16


def test_m_by_n_with_no_splittable_layer_stops_with_one_line(trained) -> None:
    """n=5: neither the MLP's 784 inputs nor its 64 hidden units split into blocks of 5."""
    with pytest.raises(
        ConfigError, match=r"compression=prune_structured can prune no layer of mlp: hidden0: input"
    ):
        compress_and_check(trained, "mlp", "prune_structured", "m=2", "n=5")
