"""Per-layer figures of a `.tflite` graph: shapes, dtype, parameters, MACs and activation bytes.

One `LayerProfile` per operator, in graph order. Counting rules (the course's, made explicit):

- MACs count multiply-accumulates of CONV_2D (out_h·out_w·out_c·k_h·k_w·in_c), DEPTHWISE_CONV_2D
  (out_h·out_w·out_c·k_h·k_w), FULLY_CONNECTED (batch·units·inputs), BATCH_MATMUL and
  TRANSPOSE_CONV. Bias additions, fused activations and requantization are not MACs (one add /
  clamp / rescale per output element; the cost model charges them per output element).
- Pooling has no MACs: a 2×2 max pool does 4 comparisons per output; these are counted as
  `window_ops` (output elements × window) and priced separately by the cost model.
- Element-wise operators (ADD, MUL, activations, QUANTIZE, ...) and SOFTMAX count `elements`
  (output elements); RESHAPE moves `copy_bytes` (TFLM copies, generated C aliases).
- params are the elements of constant inputs (weights, bias), except the shape operand of RESHAPE
  (metadata, not a parameter); `params_bytes` uses the artifact's dtypes (int8 weights, int32 bias).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyml_exp.tflite_graph import Graph, Operator, Tensor

# MAC-carrying operators and the cost class each belongs to.
MAC_CLASSES = {
    "CONV_2D": "conv",
    "DEPTHWISE_CONV_2D": "depthwise",
    "TRANSPOSE_CONV": "conv",
    "FULLY_CONNECTED": "fc",
    "BATCH_MATMUL": "fc",
}
POOL_OPS = ("MAX_POOL_2D", "AVERAGE_POOL_2D", "L2_POOL_2D")
COPY_OPS = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
# Operands that describe a shape rather than hold learned values.
_SHAPE_OPERANDS = {
    "RESHAPE": (1,),
    "EXPAND_DIMS": (1,),
    "MEAN": (1,),
    "SUM": (1,),
    "PAD": (1,),
    "PADV2": (1,),
}


@dataclass(frozen=True)
class LayerProfile:
    """What one operator computes and holds. Bytes use the artifact's dtypes; activations are the
    layer's non-constant inputs and its outputs (what must be live while it runs)."""

    index: int
    op: str
    version: int
    dtype: str  # activation type of the layer's first input, e.g. "INT8", "FLOAT32"
    input_shapes: tuple[tuple[int, ...], ...]
    output_shapes: tuple[tuple[int, ...], ...]
    params: int
    params_bytes: int
    input_bytes: int
    output_bytes: int
    macs: int
    mac_class: str | None  # conv | depthwise | fc, None for layers without MACs
    window_ops: int = 0  # pooling: output elements × window size
    elements: int = 0  # element-wise / softmax / reductions: elements produced (or reduced)
    copy_bytes: int = 0  # reshape-like: bytes moved when the runtime copies
    names: tuple[str, ...] = field(default=(), repr=False)  # output tensor names (Keras layer names)

    @property
    def formula_bytes(self) -> int:
        """The course's per-layer memory term inₗ + outₗ + paramsₗ (bytes)."""
        return self.input_bytes + self.output_bytes + self.params_bytes

    @property
    def activation_bytes(self) -> int:
        return self.input_bytes + self.output_bytes


def _window(op: Operator) -> int:
    opts = op.options
    return int(getattr(opts, "filterHeight", 1) * getattr(opts, "filterWidth", 1)) if opts else 1


def _count_macs(op: Operator, graph: Graph) -> int:
    out = graph.tensor(op.outputs[0])
    if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        weights = graph.tensor(op.inputs[1])
        # CONV_2D weights are [out_c, k_h, k_w, in_c]; DEPTHWISE are [1, k_h, k_w, out_c].
        per_output = int(np.prod(weights.shape[1:3])) * (weights.shape[3] if op.opcode == "CONV_2D" else 1)
        return out.num_elements * per_output
    if op.opcode == "TRANSPOSE_CONV":
        weights = graph.tensor(op.inputs[1])  # [out_c, k_h, k_w, in_c]; each input pixel scatters
        data = graph.tensor(op.inputs[2])
        return data.num_elements * int(np.prod(weights.shape[:3]))
    if op.opcode == "FULLY_CONNECTED":
        weights = graph.tensor(op.inputs[1])  # [units, inputs]
        batch = out.num_elements // weights.shape[0]
        return batch * int(weights.shape[0]) * int(weights.shape[1])
    if op.opcode == "BATCH_MATMUL":
        lhs, rhs = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
        adj_x = bool(getattr(op.options, "adjX", False))
        inner = lhs.shape[-2] if adj_x else lhs.shape[-1]
        del rhs  # only the shared (inner) dimension matters
        return out.num_elements * int(inner)
    return 0


def _constant_inputs(op: Operator, graph: Graph) -> list[Tensor]:
    skip = _SHAPE_OPERANDS.get(op.opcode, ())
    return [
        graph.tensor(i)
        for position, i in enumerate(op.inputs)
        if i >= 0 and graph.tensor(i).is_constant and position not in skip
    ]


def analyze_layers(graph: Graph) -> list[LayerProfile]:
    """One `LayerProfile` per operator of the graph, in execution order."""
    layers = []
    for op in graph.operators:
        inputs = [graph.tensor(i) for i in op.inputs if i >= 0]
        outputs = [graph.tensor(i) for i in op.outputs]
        variable_inputs = [t for t in inputs if not t.is_constant]
        constants = _constant_inputs(op, graph)
        out_elements = sum(t.num_elements for t in outputs)
        mac_class = MAC_CLASSES.get(op.opcode)
        macs = _count_macs(op, graph) if mac_class else 0
        first = variable_inputs[0] if variable_inputs else (inputs[0] if inputs else outputs[0])
        layers.append(
            LayerProfile(
                index=op.index,
                op=op.opcode,
                version=op.version,
                dtype=first.type_name,
                input_shapes=tuple(t.shape for t in variable_inputs),
                output_shapes=tuple(t.shape for t in outputs),
                params=sum(t.num_elements for t in constants),
                params_bytes=sum(t.nbytes for t in constants),
                input_bytes=sum(t.nbytes for t in variable_inputs),
                output_bytes=sum(t.nbytes for t in outputs),
                macs=macs,
                mac_class=mac_class,
                window_ops=out_elements * _window(op) if op.opcode in POOL_OPS else 0,
                elements=0 if (mac_class or op.opcode in POOL_OPS or op.opcode in COPY_OPS) else out_elements,
                copy_bytes=sum(t.nbytes for t in outputs) if op.opcode in COPY_OPS else 0,
                names=tuple(t.name for t in outputs),
            )
        )
    return layers


def model_dtype(layers: list[LayerProfile]) -> str:
    """The dtype of the MAC-heavy layers ("INT8", "FLOAT32", ...): what the cost model prices."""
    by_type: dict[str, int] = {}
    for layer in layers:
        by_type[layer.dtype] = by_type.get(layer.dtype, 0) + max(layer.macs, 1)
    return max(by_type, key=by_type.__getitem__) if by_type else "FLOAT32"


def formula_peak(layers: list[LayerProfile]) -> tuple[int, LayerProfile | None]:
    """M = maxₗ(inₗ + outₗ + paramsₗ) in bytes and the layer that sets it."""
    if not layers:
        return 0, None
    peak = max(layers, key=lambda layer: layer.formula_bytes)
    return peak.formula_bytes, peak
