"""Tiny int8 `.tflite` models of one or two layers, written with the flatbuffer schema (no TensorFlow),
for the kernel exactness tests: random int8 weights, per-channel scales, zero points != 0, odd
channel counts. Every model has one int8 input and one int8 output."""

from __future__ import annotations

import numpy as np

from tests.tflite_builder import TfliteBuilder

INT32, INT8 = 2, 9
SAME, VALID = 0, 1
RELU, RELU6 = 1, 3


class Int8Builder(TfliteBuilder):
    description = "cgen kernel test"

    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__()
        self.rng = rng

    def tensor(self, shape, type_code=INT8, data=None, scale=None, zp=None, axis: int = 0) -> int:
        q = None
        if scale is not None:
            q = self.s.QuantizationParametersT()
            q.scale = [float(v) for v in np.atleast_1d(scale)]
            q.zeroPoint = [int(v) for v in np.atleast_1d(zp if zp is not None else 0)]
            q.quantizedDimension = axis
        return self.add_tensor(shape, type_code, data, q)

    def activation(self, shape, scale: float | None = None, zp: int | None = None) -> int:
        scale = float(self.rng.uniform(0.01, 0.05)) if scale is None else scale
        zp = int(self.rng.integers(-40, 40)) if zp is None else zp
        return self.tensor(shape, scale=np.float32(scale), zp=zp)

    def _filter(self, shape, channels: int, axis: int, in_scale: float, taps: int, w=None):
        w = self.rng.integers(-127, 128, size=shape, dtype=np.int8) if w is None else w.astype(np.int8)
        w_scale = self.rng.uniform(0.5, 2.0, channels).astype(np.float32) / (127 * np.sqrt(taps))
        wt = self.tensor(shape, data=w, scale=w_scale, zp=np.zeros(channels, np.int64), axis=axis)
        b_scale = np.float32(in_scale) * w_scale
        bias = np.round(self.rng.normal(0, 0.3, channels) / b_scale).astype(np.int32)
        bt = self.tensor((channels,), INT32, data=bias, scale=b_scale, zp=np.zeros(channels, np.int64))
        return wt, bt

    def conv(self, x: int, out_c: int, k: tuple[int, int], stride: int = 1, padding: int = SAME,
             act: int = 0, depthwise: bool = False, out_scale: float | None = None,
             weights: np.ndarray | None = None, out_zp: int | None = None) -> int:  # fmt: skip
        """`weights`: the int8 CONV_2D filter [out_c, k_h, k_w, in_c] to use (random when None);
        `out_scale`, `out_zp`: the output's quantization (random when None)."""
        s = self.s
        _, h, w, in_c = self.tensors[x].shape
        in_scale = self.tensors[x].quantization.scale[0]
        oh, ow = ((h + stride - 1) // stride, (w + stride - 1) // stride) if padding == SAME else (
            (h - k[0]) // stride + 1, (w - k[1]) // stride + 1)  # fmt: skip
        if depthwise:
            wt, bt = self._filter((1, *k, out_c), out_c, 3, in_scale, k[0] * k[1])
            opt = s.DepthwiseConv2DOptionsT()
            opt.depthMultiplier = out_c // in_c
            name, otype = "DEPTHWISE_CONV_2D", s.BuiltinOptions.DepthwiseConv2DOptions
        else:
            wt, bt = self._filter((out_c, *k, in_c), out_c, 0, in_scale, k[0] * k[1] * in_c, weights)
            opt, name, otype = s.Conv2DOptionsT(), "CONV_2D", s.BuiltinOptions.Conv2DOptions
        opt.padding, opt.strideH, opt.strideW, opt.fusedActivationFunction = padding, stride, stride, act
        opt.dilationHFactor = opt.dilationWFactor = 1
        y = self.activation((1, oh, ow, out_c), out_scale, out_zp)
        self.op(name, [x, wt, bt], [y], opt, otype)
        return y

    def fully_connected(self, x: int, out_n: int, act: int = 0, weights: np.ndarray | None = None) -> int:
        """`weights`: the int8 [out_n, in_n] array to use (random when None)."""
        s = self.s
        in_n = int(np.prod(self.tensors[x].shape))
        wt, bt = self._filter((out_n, in_n), out_n, 0, self.tensors[x].quantization.scale[0], in_n, weights)
        opt = s.FullyConnectedOptionsT()
        opt.fusedActivationFunction = act
        y = self.activation((1, out_n))
        self.op("FULLY_CONNECTED", [x, wt, bt], [y], opt, s.BuiltinOptions.FullyConnectedOptions)
        return y

    def add(self, a: int, b: int, act: int = 0) -> int:
        s = self.s
        opt = s.AddOptionsT()
        opt.fusedActivationFunction = act
        y = self.activation(self.tensors[a].shape)
        self.op("ADD", [a, b], [y], opt, s.BuiltinOptions.AddOptions)
        return y

    def avg_pool(self, x: int, f: int | tuple[int, int], stride: int, padding: int = VALID,
                 opcode: str = "AVERAGE_POOL_2D") -> int:  # fmt: skip
        s = self.s
        _, h, w, c = self.tensors[x].shape
        fh, fw = (f, f) if isinstance(f, int) else f
        oh, ow = ((h + stride - 1) // stride, (w + stride - 1) // stride) if padding == SAME else (
            (h - fh) // stride + 1, (w - fw) // stride + 1)  # fmt: skip
        q = self.tensors[x].quantization
        y = self.tensor((1, oh, ow, c), scale=np.float32(q.scale[0]), zp=q.zeroPoint[0])
        opt = s.Pool2DOptionsT()
        opt.padding, opt.strideH, opt.strideW = padding, stride, stride
        opt.filterHeight, opt.filterWidth = fh, fw
        self.op(opcode, [x], [y], opt, s.BuiltinOptions.Pool2DOptions)
        return y

    def max_pool(self, x: int, f: int, stride: int) -> int:
        return self.avg_pool(x, f, stride, VALID, opcode="MAX_POOL_2D")
