"""Run a `.tflite` on many inputs in the TFLite interpreter (LiteRT) or the TFLM interpreter.

Inputs are float images; for integer models they are quantized exactly as the model's input
tensor says, and outputs are dequantized, so every backend is compared in the same float units.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tinyml_exp.evaluate.batching import CHECK_ROWS, batched_runner
from tinyml_exp.tflite_graph import Tensor, read_graph

log = logging.getLogger(__name__)

TFLITE_BATCH = 256  # images per invoke when batching is possible (memory: 256 × the largest layer)


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0


def quantize_input(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """float -> the tensor's dtype as TFLite's reference QUANTIZE kernel does it: float32 division,
    rounding half away from zero (std::round, not NumPy's half-to-even), zero point, saturation."""
    if not spec.quantized:
        return x.astype(spec.dtype, copy=False)
    info = np.iinfo(spec.dtype)
    # Divide in float32 as the kernel does; round in float64, where adding 0.5 is exact.
    scaled = (x.astype(np.float32) / np.float32(spec.scale)).astype(np.float64)
    rounded = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)
    return np.clip(rounded.astype(np.int64) + spec.zero_point, info.min, info.max).astype(spec.dtype)


def dequantize_output(y: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if not spec.quantized:
        return y.astype(np.float32, copy=False)
    return ((y.astype(np.int32) - spec.zero_point) * spec.scale).astype(np.float32)


def io_specs(model: bytes) -> tuple[TensorSpec, TensorSpec]:
    """Input and output tensor specs read from the model itself (the interpreters report them in
    different formats; the flatbuffer is the one source both agree with)."""
    graph = read_graph(model)

    def spec(tensor: Tensor) -> TensorSpec:
        q = tensor.quantization
        scale, zero_point = (float(q.scale[0]), int(q.zero_point[0])) if q is not None else (0.0, 0)
        return TensorSpec(tensor.shape, tensor.dtype, scale, zero_point)

    return spec(graph.input_tensors[0]), spec(graph.output_tensors[0])


def _run_loop(
    x: np.ndarray,
    in_spec: TensorSpec,
    out_spec: TensorSpec,
    invoke: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    batch = quantize_input(x, in_spec).reshape((len(x), *in_spec.shape[1:]))
    outputs = [invoke(sample[None, ...]) for sample in batch]
    return dequantize_output(np.stack(outputs).reshape(len(x), -1), out_spec)


def run_tflite(
    model: bytes, x: np.ndarray, reference_kernels: bool = False, batch: int = TFLITE_BATCH
) -> np.ndarray:
    """Outputs (dequantized, N × classes) of the LiteRT interpreter; `reference_kernels` selects
    TFLite's reference kernels (bit-exact with TFLM) instead of the default optimized ones.
    `batch` images per invoke when the model allows it (`evaluate.batching`; the outputs are
    checked equal to one-at-a-time ones first), else one at a time."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.BUILTIN_REF if reference_kernels else OpResolverType.AUTO

    def make(content: bytes) -> Interpreter:
        return Interpreter(model_content=content, experimental_op_resolver_type=resolver)

    interpreter = make(model)
    interpreter.allocate_tensors()
    in_detail, out_detail = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def invoke(sample: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(in_detail["index"], sample)
        interpreter.invoke()
        return interpreter.get_tensor(out_detail["index"]).copy()

    in_spec, out_spec = io_specs(model)
    quantized = quantize_input(x, in_spec).reshape((len(x), *in_spec.shape[1:]))
    head = quantized[: min(CHECK_ROWS, len(x))]
    single = np.stack([invoke(sample[None, ...]) for sample in head]) if len(head) else head
    runner = batched_runner(model, make, min(batch, len(x)), head, single) if len(x) > len(head) else None
    if runner is None:
        return _run_loop(x, in_spec, out_spec, invoke)
    chunks = [runner(quantized[i : i + runner.batch]) for i in range(0, len(x), runner.batch)]
    return dequantize_output(np.concatenate(chunks).reshape(len(x), -1), out_spec)


def run_tflm(model: bytes, x: np.ndarray, arena_bytes: int | None = None) -> np.ndarray:
    """Outputs of the TensorFlow Lite Micro interpreter (the runtime that runs on the board)."""
    from tflite_micro.python.tflite_micro import runtime

    kwargs = {} if arena_bytes is None else {"arena_size": arena_bytes}
    interpreter = runtime.Interpreter.from_bytes(model, **kwargs)

    def invoke(sample: np.ndarray) -> np.ndarray:
        interpreter.set_input(sample, 0)
        interpreter.invoke()
        return interpreter.get_output(0).copy()

    return _run_loop(x, *io_specs(model), invoke)
