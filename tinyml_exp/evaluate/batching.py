"""Batched TFLite inference: many images per `invoke`, where the model allows it.

The exported models have batch 1 (what a microcontroller runs), and their RESHAPE ops carry that
batch as a constant shape `[1, …]`, so resizing the input alone fails. `any_batch` writes a copy
whose RESHAPE shapes start with -1 (the batch is then inferred); `BatchedRunner` resizes that
copy's input to `batch` rows and checks, on the first rows, that the batched outputs equal the
one-at-a-time outputs of the original model. When any step fails, the caller runs one image at a
time, as before: predictions never depend on whether batching was possible.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

log = logging.getLogger(__name__)

CHECK_ROWS = 4  # rows compared with the one-at-a-time outputs before trusting a batched model


def any_batch(model: bytes) -> bytes | None:
    """A copy of `model` whose RESHAPE ops take any batch size (constant shapes `[1, …]` or
    `[-1, …]` become `[-1, …]`); None when a RESHAPE's shape cannot be relaxed."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    root = schema.ModelT.InitFromObj(schema.Model.GetRootAs(model, 0))
    reshape = schema.BuiltinOperator.RESHAPE
    subgraph = root.subgraphs[0]
    for op in subgraph.operators or []:
        code = root.operatorCodes[op.opcodeIndex]
        if max(int(code.builtinCode), int(code.deprecatedBuiltinCode)) != reshape:
            continue
        if op.inputs is not None and len(op.inputs) > 1 and op.inputs[1] >= 0:
            buffer = root.buffers[subgraph.tensors[op.inputs[1]].buffer]
            if buffer.data is None or len(buffer.data) < 4:
                return None  # a computed shape: leave the model alone
            shape = np.frombuffer(bytes(bytearray(buffer.data)), dtype=np.int32).copy()
            if shape[0] not in (1, -1) or (shape[1:] == -1).any():
                return None  # -1 already past the batch (or no batch first): leave it
            shape[0] = -1
            buffer.data = shape.view(np.uint8)
        options = op.builtinOptions
        if options is not None and getattr(options, "newShape", None) is not None and len(options.newShape):
            options.newShape = [-1, *list(options.newShape)[1:]]
    builder = flatbuffers.Builder(len(model) + 1024)
    builder.Finish(root.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


class BatchedRunner:
    """Runs up to `batch` quantized inputs per invoke in a resized LiteRT interpreter."""

    def __init__(self, interpreter, batch: int) -> None:
        self.interpreter, self.batch = interpreter, batch
        self.input = interpreter.get_input_details()[0]
        self.output = interpreter.get_output_details()[0]

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        n = len(rows)
        if n < self.batch:  # pad the last chunk; padded rows are dropped
            rows = np.concatenate([rows, np.zeros((self.batch - n, *rows.shape[1:]), rows.dtype)])
        self.interpreter.set_tensor(self.input["index"], rows)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"])[:n].copy()


def batched_runner(
    model: bytes, make: Callable[[bytes], object], batch: int, first: np.ndarray, single: np.ndarray
) -> BatchedRunner | None:
    """A runner for `batch` rows when the model can be batched and gives, on `first` (a few
    quantized inputs), exactly the outputs `single` of the one-at-a-time run; else None."""
    relaxed = any_batch(model)
    if relaxed is None or batch <= 1:
        return None
    try:
        interpreter = make(relaxed)
        detail = interpreter.get_input_details()[0]
        interpreter.resize_tensor_input(detail["index"], [batch, *detail["shape"][1:]], strict=False)
        interpreter.allocate_tensors()
        runner = BatchedRunner(interpreter, batch)
        got = runner(first)
    except (RuntimeError, ValueError) as e:
        log.debug("batched TFLite not possible (%s): one image at a time", e)
        return None
    if got.shape[0] != len(first) or got.reshape(single.shape).tobytes() != single.tobytes():
        log.debug("batched TFLite outputs differ from one-at-a-time ones: one image at a time")
        return None
    return runner
