"""Small models on synthetic data, their generated C and QEMU firmware, built once per test process
for the benchmark, firmware-stage and MLPerf tests (each build takes seconds; several test modules
share them). Files live in a temporary directory removed at exit."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyml_exp.data import DatasetSplits
from tinyml_exp.hardware.build import FirmwareBuild, build_firmware

IMAGE_SHAPE = (16, 16)  # 256-byte int8 inputs: a quarter of Fashion-MNIST's bytes on the link
QEMU_BOARD = "qemu_netduinoplus2"


@dataclass(frozen=True)
class SmallModel:
    name: str
    tflite: bytes
    data: DatasetSplits
    model_dir: Path  # generated model.c / model.h
    firmware: FirmwareBuild  # for QEMU's netduinoplus2
    activation_bytes: int


@functools.cache
def workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="tme-bench-tests-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@functools.cache
def synthetic_data(num_test: int = 400) -> DatasetSplits:
    from tinyml_exp.data.synthetic import SyntheticDataset

    names = [f"c{i}" for i in range(10)]
    dataset = SyntheticDataset(
        name="synthetic", class_names=names, image_shape=list(IMAGE_SHAPE), num_train=2000, num_test=num_test
    )
    return dataset.load(0)


def keras_model(kind: str):
    """A CNN like the course's, smaller: Reshape → Conv2D(4) → MaxPool → Flatten → Dense(10)."""
    import tf_keras as keras

    from tinyml_exp.models.train import compile_model, fit, set_global_seed

    set_global_seed(0)
    inputs = keras.Input(IMAGE_SHAPE)
    x = keras.layers.Reshape((*IMAGE_SHAPE, 1))(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    if kind == "tanh":  # an operator the C generator does not support
        x = keras.layers.Dense(16, activation="tanh")(x)
    outputs = keras.layers.Dense(10)(x)
    model = keras.Model(inputs, outputs)
    compile_model(model, "adam", 5e-3, from_logits=True)
    fit(model, synthetic_data(), epochs=2, batch_size=32, verbose=0)  # ≈ 96 % test accuracy
    return model


@functools.cache
def tflite_model(kind: str) -> bytes:
    """kind: int8 (PTQ, int8 input and output) | float32 | tanh (float32, unsupported by the generator)."""
    from tinyml_exp.export.tflite import TFLiteRecipe, convert

    data = synthetic_data()
    quantize = "int8" if kind == "int8" else "none"
    return convert(keras_model(kind), TFLiteRecipe(quantize), data.x_train[:100])


@functools.cache
def small_model(kind: str) -> SmallModel:
    """The model of `kind` (int8 | float32) with its QEMU firmware built."""
    from tinyml_exp.export.cgen import generate_c

    name = f"small_{kind}"
    tflite = tflite_model(kind)
    cgen = generate_c(tflite, workdir() / name / "model", name, reference="tflite")
    build = build_firmware(QEMU_BOARD, cgen.model_c.parent, workdir() / name / "build", jobs=2)
    return SmallModel(name, tflite, synthetic_data(), cgen.model_c.parent, build, cgen.activation_bytes)


def quantized_inputs(model: SmallModel, count: int) -> list[bytes]:
    from tinyml_exp.evaluate.interpreters import io_specs
    from tinyml_exp.hardware.bench import quantize_samples

    return quantize_samples(model.data.x_test[:count], io_specs(model.tflite)[0])


def labels(model: SmallModel, count: int) -> np.ndarray:
    return model.data.y_test[:count]
