"""The flatbuffer part both hand-built test model families share (tests/profile_models.py float32,
tests/cgen_layers.py int8): tensors with their buffers, operators with their opcode table, and the
packed `.tflite`. No TensorFlow import."""

from __future__ import annotations

import numpy as np


class TfliteBuilder:
    description = "test model"

    def __init__(self) -> None:
        from ai_edge_litert import schema_py_generated as s

        self.s = s
        self.tensors: list = []
        self.buffers: list = [s.BufferT()]  # buffer 0: the empty buffer of variable tensors
        self.operators: list = []
        self.opcodes: dict = {}

    def add_tensor(self, shape, type_code: int, data: np.ndarray | None = None, quantization=None) -> int:
        t = self.s.TensorT()
        t.shape, t.type, t.name, t.buffer = list(shape), type_code, f"t{len(self.tensors)}", 0
        if data is not None:
            buffer = self.s.BufferT()
            buffer.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
            self.buffers.append(buffer)
            t.buffer = len(self.buffers) - 1
        t.quantization = quantization
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(self, name: str, inputs, outputs, options=None, options_type: int = 0) -> None:
        code = getattr(self.s.BuiltinOperator, name)
        if code not in self.opcodes:
            opcode = self.s.OperatorCodeT()
            opcode.builtinCode, opcode.deprecatedBuiltinCode, opcode.version = code, min(code, 127), 1
            self.opcodes[code] = (len(self.opcodes), opcode)
        op = self.s.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = self.opcodes[code][0], list(inputs), list(outputs)
        op.builtinOptionsType, op.builtinOptions = options_type, options
        self.operators.append(op)

    def finish(self, inputs: list[int], outputs: list[int]) -> bytes:
        import flatbuffers

        s = self.s
        subgraph = s.SubGraphT()
        subgraph.tensors, subgraph.operators = self.tensors, self.operators
        subgraph.inputs, subgraph.outputs, subgraph.name = inputs, outputs, "main"
        model = s.ModelT()
        model.version, model.description = 3, self.description
        model.subgraphs, model.buffers = [subgraph], self.buffers
        model.operatorCodes = [code for _, code in sorted(self.opcodes.values(), key=lambda p: p[0])]
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())
