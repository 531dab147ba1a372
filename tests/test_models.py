"""Architectures: exact parameter counts (computed by hand in the comments) and shapes."""

from __future__ import annotations

import pytest

from tests.helpers import compose_config
from tinyml_exp.models import build_model


def test_seed_cnn_is_exactly_the_course_model() -> None:
    model = build_model(compose_config()["architecture"], (28, 28), 10)
    # conv 12·(3·3·1) + 12 = 120; dense (13·13·12)·10 + 10 = 20,290
    assert model.count_params() == 20_410
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["InputLayer", "Reshape", "Conv2D", "MaxPooling2D", "Flatten", "Dense"]
    assert model.output_shape == (None, 10)


def test_seed_cnn_is_built_from_config_values() -> None:
    cfg = compose_config(["architecture.filters=8", "architecture.kernel_size=5"])
    model = build_model(cfg.architecture, (28, 28), 10)
    # conv 8·25 + 8 = 208; dense (12·12·8)·10 + 10 = 11,530
    assert model.count_params() == 208 + 11_530


def test_resnet8_matches_mlperf_tiny() -> None:
    model = build_model(compose_config(["architecture=resnet8"]).architecture, (32, 32, 3), 10)
    # stem 448 + BN 64; stack 1: 2·2,320 + BN 128; stack 2: 4,640 + 9,248 + shortcut 544 + BN 256;
    # stack 3: 18,496 + 36,928 + shortcut 2,112 + BN 512; dense 650 -> 78,666 (MLPerf Tiny's figure)
    assert model.count_params() == 78_666
    assert model.layers[-1].activation.__name__ == "softmax"


def test_mlp_parameter_count() -> None:
    model = build_model(compose_config(["architecture=mlp"]).architecture, (28, 28), 10)
    assert model.count_params() == 784 * 64 + 64 + 64 * 10 + 10


@pytest.mark.parametrize("architecture", ["seed_cnn", "resnet8", "mlp"])
@pytest.mark.parametrize("shape", [(28, 28), (32, 32, 3)])
def test_every_architecture_builds_for_grey_and_colour_images(architecture: str, shape: tuple) -> None:
    model = build_model(compose_config([f"architecture={architecture}"]).architecture, shape, 10)
    assert model.input_shape == (None, *shape) and model.output_shape == (None, 10)
