"""Tiny float32 `.tflite` models built directly with the flatbuffer schema, for profiler tests.

Hand-built so every figure (shapes, MACs, bytes) is known by construction and no TensorFlow
import is needed; the TFLM interpreter runs them, so arena tests use a real runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tests.tflite_builder import TfliteBuilder

FLOAT32, INT32, INT8 = 0, 2, 9
VALID = 1


class _Builder(TfliteBuilder):
    description = "profile test model"

    def tensor(self, shape: tuple[int, ...], data: np.ndarray | None = None, type_code: int = FLOAT32) -> int:
        return self.add_tensor(shape, type_code, data)

    def fully_connected(self, x: int, in_n: int, units: int, seed: int = 0) -> int:
        """FULLY_CONNECTED(units) of `x` (1, in_n): random weights, zero bias; the (1, units) output."""
        w = self.tensor((units, in_n), _weights(units, in_n, seed=seed))
        bias = self.tensor((units,), np.zeros(units, np.float32))
        y = self.tensor((1, units))
        options = self.s.FullyConnectedOptionsT()
        self.op("FULLY_CONNECTED", [x, w, bias], [y], options, self.s.BuiltinOptions.FullyConnectedOptions)
        return y


def _weights(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, shape).astype(np.float32)


def fc_model(inputs: int = 8, units: int = 4) -> bytes:
    """input (1, inputs) -> FULLY_CONNECTED(units) -> (1, units). MACs = inputs · units."""
    b = _Builder()
    x = b.tensor((1, inputs))
    y = b.fully_connected(x, inputs, units)
    return b.finish([x], [y])


def cnn_model(size: int = 6, in_c: int = 2, filters: int = 3, units: int = 5) -> bytes:
    """(1,size,size,in_c) -> CONV_2D 3×3 VALID (filters) -> MAX_POOL 2×2 -> RESHAPE -> FC(units)
    -> SOFTMAX. With the defaults: conv MACs 4·4·3·(3·3·2) = 864, FC 12·5 = 60."""
    b = _Builder()
    s = b.s
    out = size - 2
    pooled = out // 2
    flat = pooled * pooled * filters
    x = b.tensor((1, size, size, in_c))
    w = b.tensor((filters, 3, 3, in_c), _weights(filters, 3, 3, in_c))
    bias = b.tensor((filters,), np.zeros(filters, np.float32))
    conv = b.tensor((1, out, out, filters))
    conv_opts = s.Conv2DOptionsT()
    conv_opts.padding, conv_opts.strideW, conv_opts.strideH, conv_opts.fusedActivationFunction = (
        VALID,
        1,
        1,
        1,
    )
    b.op("CONV_2D", [x, w, bias], [conv], conv_opts, s.BuiltinOptions.Conv2DOptions)
    pool = b.tensor((1, pooled, pooled, filters))
    pool_opts = s.Pool2DOptionsT()
    pool_opts.padding, pool_opts.strideW, pool_opts.strideH = VALID, 2, 2
    pool_opts.filterWidth, pool_opts.filterHeight = 2, 2
    b.op("MAX_POOL_2D", [conv], [pool], pool_opts, s.BuiltinOptions.Pool2DOptions)
    shape = b.tensor((2,), np.array([1, flat], np.int32), INT32)
    flat_t = b.tensor((1, flat))
    b.op("RESHAPE", [pool, shape], [flat_t])
    logits = b.fully_connected(flat_t, flat, units, seed=1)
    probs = b.tensor((1, units))
    softmax_opts = s.SoftmaxOptionsT()
    softmax_opts.beta = 1.0
    b.op("SOFTMAX", [logits], [probs], softmax_opts, s.BuiltinOptions.SoftmaxOptions)
    return b.finish([x], [probs])


def depthwise_model(size: int = 5, channels: int = 4) -> bytes:
    """(1,size,size,channels) -> DEPTHWISE_CONV_2D 3×3 VALID, multiplier 1. MACs = out²·channels·9."""
    b = _Builder()
    s = b.s
    out = size - 2
    x = b.tensor((1, size, size, channels))
    w = b.tensor((1, 3, 3, channels), _weights(1, 3, 3, channels))
    bias = b.tensor((channels,), np.zeros(channels, np.float32))
    y = b.tensor((1, out, out, channels))
    opts = s.DepthwiseConv2DOptionsT()
    opts.padding, opts.strideW, opts.strideH, opts.depthMultiplier = VALID, 1, 1, 1
    b.op("DEPTHWISE_CONV_2D", [x, w, bias], [y], opts, s.BuiltinOptions.DepthwiseConv2DOptions)
    return b.finish([x], [y])


def unsupported_model() -> bytes:
    """A model using an operator neither TFLM nor the C generator implements (SIN is in TFLM; use
    a builtin TFLM lacks: HASHTABLE_LOOKUP)."""
    b = _Builder()
    keys = b.tensor((3,), None, INT32)
    table_keys = b.tensor((4,), np.arange(4, dtype=np.int32), INT32)
    values = b.tensor((4, 2), _weights(4, 2))
    out = b.tensor((3, 2))
    hits = b.tensor((3,), None, 3)
    b.op("HASHTABLE_LOOKUP", [keys, table_keys, values], [out, hits])
    return b.finish([keys], [out, hits])


def course_cnn_tflite(
    representative_samples: int = 100, kernel_pattern: Callable[[Any, np.ndarray], np.ndarray] | None = None
) -> dict[str, bytes]:
    """The course CNN (Reshape → Conv2D 12@3×3 relu → MaxPool 2 → Flatten → Dense 10) with random
    weights, as float32 and full-integer int8 PTQ `.tflite` (batch 1, as the export stage does).
    Figures other than accuracy do not depend on training. `kernel_pattern(layer, kernel)` may
    rewrite each kernel first (e.g. clustered or pruned weights)."""
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.layers.InputLayer((28, 28), batch_size=1),
            keras.layers.Reshape((28, 28, 1)),
            # non-zero biases: the converter drops an all-zero FC bias, which trained models never have
            keras.layers.Conv2D(12, 3, activation="relu", bias_initializer="random_uniform"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(10, bias_initializer="random_uniform"),
        ]
    )
    for layer in model.layers if kernel_pattern is not None else ():
        if layer.weights:
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel_pattern(layer, kernel), bias])
    samples = np.random.default_rng(0).random((representative_samples, 1, 28, 28), dtype=np.float32)
    converted = {"float32": tf.lite.TFLiteConverter.from_keras_model(model).convert()}
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([s] for s in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    converted["int8"] = converter.convert()
    return converted
