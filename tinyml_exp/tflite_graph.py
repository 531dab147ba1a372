"""A light, read-only view of a `.tflite` flatbuffer, shared by every stage that inspects a model.

Uses the flatbuffer schema module that `ai-edge-litert` ships, so reading a model does not import
TensorFlow (≈ 0.15 s instead of 2–3 s). Only the first subgraph is read: the models this project
produces have one, and a model with more is refused with a clear message.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from tinyml_exp.errors import DataError

# TFLite TensorType code -> numpy dtype (only the types our models can carry).
_NUMPY_DTYPES: dict[int, np.dtype] = {
    0: np.dtype(np.float32),
    1: np.dtype(np.float16),
    2: np.dtype(np.int32),
    3: np.dtype(np.uint8),
    4: np.dtype(np.int64),
    6: np.dtype(np.bool_),
    7: np.dtype(np.int16),
    9: np.dtype(np.int8),
    10: np.dtype(np.float64),
}


class TFLiteGraphError(DataError, ValueError):
    """The file is not a `.tflite` model this project can read (truncated, corrupt or unsupported)."""


# What the flatbuffer accessors raise on a truncated or corrupt buffer: offsets past the end
# (struct.error, IndexError), bad vector lengths (ValueError), bad numbers (TypeError), names that
# are not UTF-8 (UnicodeDecodeError, a ValueError), absent tables (AttributeError).
_CORRUPT = (struct.error, ValueError, TypeError, IndexError, AttributeError, KeyError, OverflowError)


@dataclass(frozen=True)
class Quantization:
    """Affine quantization `real = scale * (q - zero_point)`; per-channel along `axis` when len > 1."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1


@dataclass(frozen=True)
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    type_code: int
    type_name: str
    quantization: Quantization | None
    data: np.ndarray | None = field(repr=False)  # constant tensors only (weights, biases, shapes)

    @property
    def dtype(self) -> np.dtype:
        try:
            return _NUMPY_DTYPES[self.type_code]
        except KeyError as e:
            raise TFLiteGraphError(f"tensor {self.name!r} has unsupported type {self.type_name}") from e

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def num_elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.num_elements * self.dtype.itemsize


@dataclass(frozen=True)
class Operator:
    index: int
    opcode: str  # builtin name as in the schema, e.g. "CONV_2D"; custom ops: "CUSTOM:<name>"
    version: int
    inputs: tuple[int, ...]  # tensor indices; -1 marks an omitted optional input
    outputs: tuple[int, ...]
    options: object | None = field(repr=False)  # the schema's *OptionsT object, e.g. Conv2DOptionsT


@dataclass(frozen=True)
class Graph:
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    model_bytes: int
    description: str = ""

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]

    @cached_property
    def input_tensors(self) -> tuple[Tensor, ...]:
        return tuple(self.tensors[i] for i in self.inputs)

    @cached_property
    def output_tensors(self) -> tuple[Tensor, ...]:
        return tuple(self.tensors[i] for i in self.outputs)

    @cached_property
    def opcodes(self) -> tuple[tuple[str, int], ...]:
        """Distinct (operator, version) pairs in first-use order."""
        return tuple(dict.fromkeys((op.opcode, op.version) for op in self.operators))


def _schema():
    # Imported lazily: only stages that read models pay for it.
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def _enum_names(enum_class: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_") and isinstance(v, int)}


def _read_quantization(q) -> Quantization | None:
    if q is None or q.scale is None or len(q.scale) == 0:
        return None
    zero_point = q.zeroPoint if q.zeroPoint is not None else np.zeros(len(q.scale))
    return Quantization(
        scale=np.asarray(q.scale, dtype=np.float32),
        zero_point=np.asarray(zero_point, dtype=np.int64),
        axis=int(q.quantizedDimension),
    )


def _constant_bytes(model, t, buf: bytes) -> bytes | None:
    """A tensor's constant data: inside its buffer, or (models over 2 GB) at an offset of the file."""
    buffer = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
    if buffer is not None and buffer.data is not None and len(buffer.data) > 0:
        return np.asarray(buffer.data, dtype=np.uint8).tobytes()
    if buffer is not None and buffer.offset and buffer.size:
        return buf[buffer.offset : buffer.offset + buffer.size]
    return None


def _read_tensor(model, index: int, t, buf: bytes, type_names: dict[int, str]) -> Tensor:
    shape = tuple(int(d) for d in t.shape) if t.shape is not None else ()
    name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
    tensor = Tensor(
        index=index,
        name=name,
        shape=shape,
        type_code=int(t.type),
        type_name=type_names.get(int(t.type), str(t.type)),
        quantization=_read_quantization(t.quantization),
        data=None,
    )
    raw = _constant_bytes(model, t, buf)
    if raw is not None:
        data = np.frombuffer(raw, dtype=tensor.dtype).reshape(shape)
        tensor = Tensor(**{**tensor.__dict__, "data": data})
    return tensor


def _read_operator(model, index: int, op, op_names: dict[int, str]) -> Operator:
    code = model.operatorCodes[op.opcodeIndex]
    # Opcodes past 127 live only in builtinCode; older files only fill the deprecated field.
    builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
    name = op_names.get(builtin, str(builtin))
    if name == "CUSTOM":
        custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
        name = f"CUSTOM:{custom}"
    return Operator(
        index=index,
        opcode=name,
        version=int(code.version),
        inputs=tuple(int(i) for i in (op.inputs if op.inputs is not None else ())),
        outputs=tuple(int(i) for i in (op.outputs if op.outputs is not None else ())),
        options=op.builtinOptions,
    )


def read_graph(source: str | Path | bytes) -> Graph:
    """Parse a `.tflite` file (path or bytes) into a `Graph`; `TFLiteGraphError` (one line) for a
    file that is not one, truncated or corrupt."""
    buf = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    where = f"{source}: " if isinstance(source, (str, Path)) else ""
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise TFLiteGraphError(f"{where}not a TFLite flatbuffer (missing the 'TFL3' identifier)")
    try:
        graph = _parse(buf)
    except TFLiteGraphError as e:
        raise TFLiteGraphError(f"{where}{e}") from e
    except _CORRUPT as e:
        kind = "struct.error" if isinstance(e, struct.error) else type(e).__name__
        raise TFLiteGraphError(
            f"{where}truncated or corrupt .tflite ({len(buf)} bytes; {kind} while reading it): "
            "export it again or check the copy"
        ) from e
    _check_indices(graph)
    return graph


def _parse(buf: bytes) -> Graph:
    schema = _schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(buf, 0))
    if not model.subgraphs or len(model.subgraphs) != 1:
        n = 0 if not model.subgraphs else len(model.subgraphs)
        raise TFLiteGraphError(f"expected exactly one subgraph, found {n}")
    type_names = _enum_names(schema.TensorType)
    op_names = _enum_names(schema.BuiltinOperator)
    subgraph = model.subgraphs[0]
    tensors = [_read_tensor(model, i, t, buf, type_names) for i, t in enumerate(subgraph.tensors or [])]
    operators = [_read_operator(model, i, op, op_names) for i, op in enumerate(subgraph.operators or [])]
    description = model.description.decode() if isinstance(model.description, bytes) else ""
    return Graph(
        tensors=tuple(tensors),
        operators=tuple(operators),
        inputs=tuple(int(i) for i in (subgraph.inputs if subgraph.inputs is not None else ())),
        outputs=tuple(int(i) for i in (subgraph.outputs if subgraph.outputs is not None else ())),
        model_bytes=len(buf),
        description=description,
    )


def _check_indices(graph: Graph) -> None:
    """Every tensor index a reader will follow exists: a corrupt file fails here, not deep in a stage."""
    n = len(graph.tensors)
    if not graph.inputs or not graph.outputs:
        raise TFLiteGraphError("corrupt .tflite: the subgraph has no inputs or no outputs")
    for index in (*graph.inputs, *graph.outputs):
        if not 0 <= index < n:
            raise TFLiteGraphError(f"corrupt .tflite: subgraph input/output tensor {index} of {n}")
    for op in graph.operators:
        bad = [i for i in (*op.inputs, *op.outputs) if not -1 <= i < n]
        if bad or -1 in op.outputs:
            raise TFLiteGraphError(
                f"corrupt .tflite: operator {op.index} ({op.opcode}) uses tensor {bad or -1} of {n}"
            )
    for t in graph.tensors:
        if any(d < -1 for d in t.shape):
            raise TFLiteGraphError(f"corrupt .tflite: tensor {t.name!r} has shape {list(t.shape)}")
