"""What compression did to the weights, measured on the artifacts themselves (never taken from the
settings that asked for it): sparsity, the m:n pattern, unique values per kernel, parameter counts.

"Kernels" are the weight tensors of Dense, Conv1D, Conv2D (transposed too) and DepthwiseConv2D
layers — the tensors pruning and clustering act on. Biases, BatchNormalization statistics and the ranges that
quantization-aware training adds are not kernels and are never counted in sparsity or clusters.

Both the Keras model and the converted `.tflite` are measured, in one common view: a kernel as a
2-D array `rows × inputs` whose last axis is the layer's input axis (TFLite stores Conv2D kernels
as OHWI and Dense kernels as [out, in], so the input axis is already last there; Keras kernels
are HWIO / [in, out] and are transposed). m:n blocks run along that axis, as TFMOT's
`sparsity_m_by_n` builds them and as sparse m:n kernels would read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import tf_keras

    from tinyml_exp.tflite_graph import Graph, Tensor

# TFLite operators whose input 1 is a kernel: (does it have an input axis m:n pruning can act on,
# which axis holds the output channels). A depthwise kernel mixes no input channels: there is
# nothing to group along. TFLite layouts: CONV_2D and TRANSPOSE_CONV OHWI, FULLY_CONNECTED
# [out, in], DEPTHWISE_CONV_2D [1, H, W, out].
_TFLITE_KERNEL_OPS = {
    "CONV_2D": (True, 0),
    "FULLY_CONNECTED": (True, 0),
    "DEPTHWISE_CONV_2D": (False, 3),
    "TRANSPOSE_CONV": (False, 0),
}


@dataclass(frozen=True)
class Kernel:
    """One kernel as measured. `rows_by_input` is `rows × inputs` for layers with an input axis
    (Conv, Dense) and None for depthwise kernels; `output_axis` holds the output channels."""

    name: str
    values: np.ndarray
    rows_by_input: np.ndarray | None
    output_axis: int
    type_name: str = "FLOAT32"  # TFLite's name of the stored type (Keras kernels are float32)

    @property
    def size(self) -> int:
        return int(self.values.size)

    @property
    def zeros(self) -> int:
        import numpy as np

        return int(self.values.size - np.count_nonzero(self.values))

    @property
    def input_size(self) -> int | None:
        return None if self.rows_by_input is None else int(self.rows_by_input.shape[-1])

    def max_unique(self, per_channel: bool) -> int:
        """Distinct values in the kernel, or in its most varied output channel."""
        import numpy as np

        if not per_channel:
            return len(np.unique(self.values))
        return max(len(np.unique(channel)) for channel in np.moveaxis(self.values, self.output_axis, 0))


def unwrap(layer: tf_keras.layers.Layer) -> tf_keras.layers.Layer:
    """The layer inside TFMOT wrappers (pruning, clustering, quantization): the one that owns the
    kernel variable."""
    import tf_keras as keras

    while isinstance(layer, keras.layers.Wrapper):
        layer = layer.layer
    return layer


def is_kernel_layer(layer: tf_keras.layers.Layer) -> bool:
    """Dense, Conv1D, Conv2D (and its transposed form) and DepthwiseConv2D: the layers whose
    kernels are pruned, clustered and counted."""
    import tf_keras as keras

    return isinstance(
        layer, (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
    )


def has_input_axis(layer: tf_keras.layers.Layer) -> bool:
    """Dense and ordinary convolutions; not depthwise or transposed convolutions."""
    import tf_keras as keras

    return isinstance(
        layer, (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D)
    ) and not isinstance(layer, (keras.layers.Conv2DTranspose, keras.layers.Conv1DTranspose))


def keras_input_view(kernel: np.ndarray) -> np.ndarray:
    """Keras kernel (…spatial, in, out) -> (out · spatial, in), the TFLite order."""
    import numpy as np

    moved = np.moveaxis(kernel, -1, 0)  # out, …spatial, in
    return moved.reshape(-1, kernel.shape[-2])


def _variable_name(weight: tf_keras.Variable) -> tuple[str, str]:
    """("conv", "kernel") for "conv/kernel:0"."""
    scope, _, name = weight.name.rpartition("/")
    return scope.rpartition("/")[-1], name.split(":")[0]


def own_weights(outer: tf_keras.layers.Layer) -> list[tf_keras.Variable]:
    """The weights of the layer inside any wrappers, including those a QAT wrapper took over
    (it moves the kernel out of the inner layer's list), without the wrapper's own variables
    (ranges, step counters, masks), which are created under the wrapper's name. (The inner
    variables' names are no guide: a stripped clustered layer names its kernel just "kernel".)"""
    if unwrap(outer) is outer:
        return list(outer.weights)
    return [w for w in outer.weights if _variable_name(w)[0] != outer.name]


def kernel_variable(outer: tf_keras.layers.Layer) -> tf_keras.Variable:
    inner = unwrap(outer)
    name = "depthwise_kernel" if hasattr(inner, "depthwise_kernel") else "kernel"
    for weight in own_weights(outer):
        if _variable_name(weight)[1] == name:
            return weight
    raise ValueError(f"layer {inner.name!r} has no {name} variable")


def keras_kernels(model: tf_keras.Model) -> list[Kernel]:
    import numpy as np

    kernels = []
    for outer in model.layers:
        layer = unwrap(outer)
        if not is_kernel_layer(layer):
            continue
        values = np.asarray(kernel_variable(outer).numpy())
        rows = keras_input_view(values) if has_input_axis(layer) else None
        kernels.append(Kernel(layer.name, values, rows, values.ndim - 1))
    return kernels


def _constant_input(graph: Graph, tensor_index: int) -> Tensor | None:
    """The constant behind an operator input, looking through DEQUANTIZE (float16 weights)."""
    tensor = graph.tensor(tensor_index)
    if tensor.is_constant:
        return tensor
    for op in graph.operators:
        if tensor_index in op.outputs and op.opcode == "DEQUANTIZE":
            source = graph.tensor(op.inputs[0])
            return source if source.is_constant else None
    return None


def tflite_kernels(graph: Graph) -> list[Kernel]:
    import numpy as np

    kernels = []
    for op in graph.operators:
        if op.opcode not in _TFLITE_KERNEL_OPS or len(op.inputs) < 2:
            continue
        tensor = _constant_input(graph, op.inputs[1])
        if tensor is None:  # a kernel computed at run time is not a stored weight
            continue
        values = np.asarray(tensor.data)
        input_axis, output_axis = _TFLITE_KERNEL_OPS[op.opcode]
        rows = values.reshape(-1, values.shape[-1]) if input_axis else None
        kernels.append(Kernel(tensor.name, values, rows, output_axis, tensor.type_name))
    return kernels


def sparsity(kernels: list[Kernel]) -> float:
    """Zeros among all kernel weights (0.0 when there are no kernels)."""
    total = sum(k.size for k in kernels)
    return sum(k.zeros for k in kernels) / total if total else 0.0


def m_by_n_violations(kernel: Kernel, m: int, n: int) -> int:
    """Blocks of `n` consecutive weights along the input axis holding more than `n - m` non-zero
    values. Kernels whose input axis is not a multiple of `n` have no whole blocks: not checked."""
    import numpy as np

    rows = kernel.rows_by_input
    if rows is None or rows.shape[-1] % n:
        return 0
    blocks = rows.reshape(rows.shape[0], -1, n)
    return int((np.count_nonzero(blocks, axis=-1) > n - m).sum())


def m_by_n_eligible(kernel: Kernel, n: int) -> bool:
    return kernel.input_size is not None and kernel.input_size % n == 0


def max_unique(kernels: list[Kernel], per_channel: bool) -> int:
    return max((k.max_unique(per_channel) for k in kernels), default=0)


def weight_metrics(kernels: list[Kernel], artifact: str, clusters: bool) -> dict[str, float]:
    """Sparsity of the kernels and, for clustered models, their distinct values per kernel and
    per output channel. Keras figures keep the plain names (`sparsity/weights`); `.tflite`
    figures end in `_tflite`, and count per channel only (see `ClustersKept`)."""
    if artifact == "keras":
        metrics = {"sparsity/weights": sparsity(kernels)}
        if clusters:
            metrics["clusters/max_unique_per_kernel"] = float(max_unique(kernels, per_channel=False))
            metrics["clusters/max_unique_per_channel"] = float(max_unique(kernels, per_channel=True))
        return metrics
    metrics = {f"sparsity/weights_{artifact}": sparsity(kernels)}
    if clusters:
        metrics[f"clusters/max_unique_per_channel_{artifact}"] = float(max_unique(kernels, per_channel=True))
    return metrics


def parameter_counts(model: tf_keras.Model) -> dict[str, float]:
    """`params/total` and `params/nonzero` over the weights of the model's own layers (kernels,
    biases, BatchNormalization statistics). The variables TFMOT wrappers add — quantization
    ranges, step counters, pruning masks — are not parameters of the model and are left out, so a
    QAT model counts the same parameters as its base."""
    import numpy as np
    from tensorflow_model_optimization.python.core.quantization.keras.quantize_layer import QuantizeLayer

    total = nonzero = 0
    for outer in model.layers:
        if isinstance(outer, QuantizeLayer):  # the input's quantization range, not a parameter
            continue
        for weight in own_weights(outer):
            values = np.asarray(weight.numpy())
            total += values.size
            nonzero += int(np.count_nonzero(values))
    return {"params/total": float(total), "params/nonzero": float(nonzero)}
