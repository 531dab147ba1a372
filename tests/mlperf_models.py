"""The four MLPerf Tiny reference models as int8 `.tflite`, built from the project's own config
(architecture=<name>, dataset=synthetic_<name>), for the tests and benchmarks/mlperf_tiny.py.

`tiny=True` shrinks the input (and MobileNet's depth) so a test trains, converts and runs the
generated C in seconds; the full size is the MLPerf Tiny reference. The classifiers train with
the pipeline's own training helpers; the autoencoder trains here with mean squared error on its
own input (the pipeline's training is a classifier's), then converts the same way.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

MLPERF_MODELS = ("resnet8", "ds_cnn", "mobilenet_v1", "fc_autoencoder")
# Small inputs of the same kinds (2 × 2 strides still divide them; DS-CNN keeps its 10 × 4 kernel).
TINY_OVERRIDES = {
    "resnet8": ["dataset.image_shape=[8,8,3]", "architecture.filters=[4,8,8]"],
    "ds_cnn": ["dataset.image_shape=[14,8,1]", "architecture.filters=8", "architecture.blocks=2"],
    "mobilenet_v1": ["dataset.image_shape=[16,16,3]", "architecture.blocks=4"],
    "fc_autoencoder": ["dataset.image_shape=[64]", "architecture.hidden_units=[16,16]"],
}


@dataclass(frozen=True)
class MLPerfModel:
    name: str
    tflite: bytes  # int8 PTQ, int8 input and output
    params: int  # Keras parameters
    x_test: np.ndarray  # float inputs in [0, 1] for measuring


def overrides(name: str, tiny: bool, train_limit: int) -> list[str]:
    return [
        f"architecture={name}",
        f"dataset=synthetic_{name}",
        f"dataset.train_limit={train_limit}",
        "dataset.test_limit=100",
        *(TINY_OVERRIDES[name] if tiny else []),
    ]


@functools.cache
def mlperf_model(name: str, tiny: bool = False, train_limit: int = 300, epochs: int = 1) -> MLPerfModel:
    """`name` built from its YAML, trained `epochs` on `train_limit` synthetic samples, int8 PTQ."""
    from tests.helpers import compose_config
    from tinyml_exp.data import load_dataset
    from tinyml_exp.export.tflite import TFLiteRecipe, convert
    from tinyml_exp.models import build_model
    from tinyml_exp.models.train import compile_model, fit, set_global_seed

    cfg = compose_config(overrides(name, tiny, train_limit))
    data = load_dataset(cfg.dataset, cfg.seed)
    set_global_seed(cfg.seed)
    model = build_model(cfg.architecture, data.input_shape, data.num_classes)
    if name == "fc_autoencoder":
        model.compile(optimizer="adam", loss="mse")
        model.fit(
            data.x_train, data.x_train.reshape(len(data.x_train), -1), epochs=epochs, batch_size=32, verbose=0
        )
    else:
        compile_model(model, "adam", 1e-3, from_logits=not cfg.architecture.softmax_output)
        fit(model, data, epochs=epochs, batch_size=32, verbose=0)
    tflite = convert(model, TFLiteRecipe("int8"), data.x_train[:100])
    return MLPerfModel(name, tflite, int(model.count_params()), data.x_test)
