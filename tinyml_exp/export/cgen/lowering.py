"""Graph -> Program: operator dispatch, RESHAPE aliasing, CONV + MAX_POOL and CONV + ADD fusion."""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import numpy as np

from tinyml_exp.export.cgen import ops_f32, ops_hybrid, ops_int8, ops_int8_conv, ops_misc
from tinyml_exp.export.cgen.ops_common import PADDING_VALID, LowerContext, check_type, option
from tinyml_exp.export.cgen.program import CGenError, Program, Step, UnsupportedOperatorError
from tinyml_exp.tflite_graph import Graph, Operator

SUPPORTED_OPERATORS = (
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "MAX_POOL_2D",
    "AVERAGE_POOL_2D",
    "ADD",
    "RESHAPE",
    "SOFTMAX",
    "MEAN",
    "QUANTIZE",
    "DEQUANTIZE",
)
SUPPORTED_TYPES = ("FLOAT32", "INT8")

# (opcode, activation type) -> lowering function; conv-likes also take the fused pool (or None)
_LOWER = {
    ("CONV_2D", "INT8"): ops_int8_conv.lower_conv,
    ("DEPTHWISE_CONV_2D", "INT8"): ops_int8_conv.lower_conv,
    ("CONV_2D", "FLOAT32"): ops_f32.lower_conv,
    ("DEPTHWISE_CONV_2D", "FLOAT32"): ops_f32.lower_conv,
    ("FULLY_CONNECTED", "INT8"): ops_int8.lower_fc,
    ("FULLY_CONNECTED", "FLOAT32"): ops_f32.lower_fc,
    ("MAX_POOL_2D", "INT8"): ops_int8.lower_pool,
    ("AVERAGE_POOL_2D", "INT8"): ops_int8.lower_pool,
    ("MAX_POOL_2D", "FLOAT32"): ops_f32.lower_pool,
    ("AVERAGE_POOL_2D", "FLOAT32"): ops_f32.lower_pool,
}
_HYBRID = {"FULLY_CONNECTED": ops_hybrid.lower_fc}
_LOWER_ANY_TYPE = {
    "ADD": ops_misc.lower_add,
    "MEAN": ops_misc.lower_mean,
    "SOFTMAX": ops_misc.lower_softmax,
    "QUANTIZE": ops_misc.lower_quantize,
    "DEQUANTIZE": ops_misc.lower_dequantize,
}


def fold_float16_weights(graph: Graph) -> tuple[Graph, frozenset[int], dict[int, np.ndarray]]:
    """The graph with every DEQUANTIZE of a constant FLOAT16 tensor (what float16 quantization
    makes of weights and biases) replaced by its float32 result; the indices of those operators;
    and, per folded tensor, its float16 values.

    TFLite computes the same values at run time (float16 -> float32 is exact), so the float
    kernels run unchanged on constant float32 weights. FULLY_CONNECTED keeps its weights as
    float16 in flash (kernels/fc_f16w.c converts each as it is used: one VCVTB per MAC on
    Cortex-M4, half the bytes); convolution weights are stored as float32, since each is used
    once per output pixel and they are few (benchmarks/seed_study_device.md has both figures)."""
    tensors, folded, halves = list(graph.tensors), set(), {}
    for op in graph.operators:
        if op.opcode != "DEQUANTIZE" or len(op.inputs) != 1 or len(op.outputs) != 1:
            continue
        src, dst = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        if src.type_name != "FLOAT16" or src.data is None or dst.type_name != "FLOAT32":
            continue
        half = src.data.astype(np.float16).reshape(dst.shape)
        tensors[dst.index] = dataclasses.replace(dst, data=half.astype(np.float32))
        folded.add(op.index)
        halves[dst.index] = half
    if not folded:
        return graph, frozenset(), {}
    return dataclasses.replace(graph, tensors=tuple(tensors)), frozenset(folded), halves


def _check_operator(graph: Graph, op: Operator) -> None:
    if op.opcode not in SUPPORTED_OPERATORS:
        raise UnsupportedOperatorError(
            f"{op.opcode} (op {op.index}) is not supported by the C generator; "
            f"supported: {', '.join(SUPPORTED_OPERATORS)}"
        )
    roles = [("input", i) for i in op.inputs[:1]] + [("output", i) for i in op.outputs]
    for role, index in roles:
        if op.opcode == "QUANTIZE" or op.opcode == "DEQUANTIZE":
            break  # these convert between the two supported types; checked in their lowering
        check_type(op, graph.tensor(index), SUPPORTED_TYPES, role)


def _fusable_pool(graph: Graph, op: Operator, consumers: dict[int, list[Operator]]) -> Operator | None:
    """The MAX_POOL_2D that alone consumes this conv's output, if it tiles it exactly."""
    out = op.outputs[0]
    users = consumers.get(out, [])
    if len(users) != 1 or out in graph.outputs or users[0].opcode != "MAX_POOL_2D":
        return None
    pool = users[0]
    f = (option(pool, "filterHeight"), option(pool, "filterWidth"))
    s = (option(pool, "strideH"), option(pool, "strideW"))
    h, w = graph.tensor(out).shape[1:3]
    tiles = option(pool, "padding") == PADDING_VALID or (h % f[0] == 0 and w % f[1] == 0)
    if f != s or not tiles:
        return None
    return pool


def _fusable_add(ctx: LowerContext, op: Operator, consumers: dict[int, list[Operator]]) -> Operator | None:
    """The residual ADD that alone consumes this conv's output, if its other input already exists
    (produced by an earlier operator or the graph input) and the conv takes the dual-MAC path."""
    graph = ctx.graph
    out = op.outputs[0]
    users = consumers.get(out, [])
    if len(users) != 1 or out in graph.outputs or users[0].opcode != "ADD" or len(users[0].inputs) != 2:
        return None
    add = users[0]
    other = add.inputs[1] if add.inputs[0] == out else add.inputs[0]
    if other == out:
        return None
    producer = next((o.index for o in graph.operators if other in o.outputs), -1)
    if producer >= op.index or not ops_int8_conv.conv_add_fusable(ctx, op, add):
        return None
    _check_operator(graph, add)
    return add


def _check_io(graph: Graph) -> None:
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise CGenError(
            f"the C API has one input and one output; this model has {len(graph.inputs)} inputs and "
            f"{len(graph.outputs)} outputs"
        )
    for t in (*graph.input_tensors, *graph.output_tensors):
        if t.type_name not in SUPPORTED_TYPES or any(d <= 0 for d in t.shape) or len(t.shape) > 4:
            raise UnsupportedOperatorError(
                f"model {'input' if t.index in graph.inputs else 'output'} {t.name!r} of type "
                f"{t.type_name} and shape {list(t.shape)} is not supported by the C generator"
            )


def _reshape_alias(graph: Graph, op: Operator) -> tuple[int, int]:
    """(output, input) of a RESHAPE: the same bytes under a new shape, so no code."""
    src, dst = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if src.is_constant or src.nbytes != dst.nbytes:
        raise UnsupportedOperatorError(f"RESHAPE (op {op.index}) of a constant tensor is not supported")
    return dst.index, src.index


def _lower_op(ctx: LowerContext, op: Operator, consumers: dict[int, list[Operator]], fused: set[int]) -> Step:
    """The kernel call of one operator; a conv that takes the MAX_POOL_2D after it adds that to `fused`."""
    graph = ctx.graph
    if op.opcode in _LOWER_ANY_TYPE:
        return _LOWER_ANY_TYPE[op.opcode](ctx, op)
    kind = graph.tensor(op.outputs[0]).type_name
    if kind == "FLOAT32" and op.opcode in _HYBRID and graph.tensor(op.inputs[1]).type_name == "INT8":
        return _HYBRID[op.opcode](ctx, op)  # dynamic-range quantization: int8 weights, float activations
    lower = _LOWER[(op.opcode, kind)]
    if op.opcode not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        return lower(ctx, op)
    pool = _fusable_pool(graph, op, consumers)
    if pool is not None and kind == "INT8" and not ops_int8_conv.conv_pool_fusable(ctx, op, pool):
        pool = None
    if pool is not None:
        fused.add(pool.index)
    add = _fusable_add(ctx, op, consumers) if pool is None and kind == "INT8" else None
    if add is not None:
        fused.add(add.index)
        return ops_int8_conv.lower_conv(ctx, op, None, add)
    return lower(ctx, op, pool)


def _tensor_bytes(graph: Graph, steps: list[Step], aliases: dict[int, int]) -> dict[int, int]:
    tensor_bytes = {}
    for step in steps:
        for t in (*step.inputs, step.output):
            tensor_bytes[t] = graph.tensor(t).nbytes
    for t in (graph.inputs[0], graph.outputs[0], *aliases, *aliases.values()):
        tensor_bytes[t] = graph.tensor(t).nbytes
    return tensor_bytes


_WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def lower_graph(graph: Graph, reference: str = "tflm", weights: str = "dense") -> Program:
    """Turn every operator into a kernel call (RESHAPE into an alias); `weights`: encodings.py."""
    _check_io(graph)
    graph, folded, halves = fold_float16_weights(graph)
    ctx = LowerContext(graph=graph, reference=reference, weights=weights, float16=halves)
    consumers: dict[int, list[Operator]] = defaultdict(list)
    for op in graph.operators:
        for i in op.inputs:
            consumers[i].append(op)
    steps: list[Step] = []
    aliases: dict[int, int] = {}
    fused: set[int] = set()
    for op in graph.operators:
        if op.index in fused or op.index in folded:
            continue
        _check_operator(graph, op)
        ctx.op_index = op.index
        if op.opcode == "RESHAPE":
            dst, src = _reshape_alias(graph, op)
            aliases[dst] = src
        else:
            steps.append(_lower_op(ctx, op, consumers, fused))
            if op.opcode in _WEIGHTED and f"op{op.index}_{op.opcode}" not in ctx.encodings:
                reason = (
                    "export.weights=dense"
                    if weights == "dense"
                    else "no encoded kernel for this operator yet"
                )
                ctx.record(op, "dense", reason)
    return Program(
        steps=steps,
        tensor_bytes=_tensor_bytes(graph, steps, aliases),
        aliases=aliases,
        input_tensor=graph.inputs[0],
        output_tensor=graph.outputs[0],
        encodings=ctx.encodings,
    )
