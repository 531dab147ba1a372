"""Every compression method on a trained seed CNN (synthetic data, real TFMOT and TFLite): the
`.tflite` has the tensor types promised, sparsity and clusters are what was asked for, the m:n
pattern holds, accuracy stays near the base, and the base model is left as it was.

The assertions read the models directly (Keras weights, `.tflite` constants via `read_graph`), so
they do not lean on the library's own measuring code they are meant to check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from tests.helpers import compose_config, options
from tinyml_exp.compress import CompressResult, FineTuneSettings
from tinyml_exp.compress.invariants import Verification
from tinyml_exp.config import to_object
from tinyml_exp.evaluate import evaluate
from tinyml_exp.export.tflite import convert
from tinyml_exp.tflite_graph import Graph, read_graph

# Small enough that a method takes a few seconds; the base learns the synthetic task in 3 epochs
# of 1000 images (> 90 %), so a drop in accuracy means something.
DATA = ["dataset=synthetic", "dataset.num_train=1000", "dataset.num_test=300"]
FINE_TUNE = ["compression.epochs=1"]
NO_FINE_TUNE = {"none", "ptq_int8", "ptq_dynamic", "ptq_float16"}
INT8_METHODS = ("ptq_int8", "qat", "pqat", "cqat", "pcqat")
KERNEL_OPS = ("CONV_2D", "FULLY_CONNECTED")


@dataclass
class Outcome:
    result: CompressResult
    tflite: bytes
    graph: Graph
    verification: Verification
    accuracy_keras: float
    accuracy_tflite: float


@pytest.fixture(scope="module")
def base():
    """The seed CNN trained three epochs, with a copy of its weights to prove methods leave it alone."""
    from tinyml_exp.models.train import compile_model, fit, set_global_seed

    cfg = compose_config(DATA)
    data = to_object(cfg.dataset).load(0)
    set_global_seed(0)
    model = to_object(cfg.architecture).build(data.input_shape, data.num_classes)
    compile_model(model, "adam", 1e-3, from_logits=True)
    fit(model, data, epochs=3, batch_size=32, verbose=0)
    accuracy = evaluate(model, convert(model, to_object(cfg.compression).recipe()), data, True, ()).metrics
    return model, data, accuracy["accuracy/keras"], [w.copy() for w in model.get_weights()]


@pytest.fixture(scope="module")
def compress(base):
    """compress(name, *overrides) -> Outcome, each combination computed once per module."""
    model, data, _, _ = base
    done: dict[tuple[str, ...], Outcome] = {}

    def run(name: str, *overrides: str) -> Outcome:
        key = (name, *overrides)
        if key not in done:
            extra = [] if name in NO_FINE_TUNE else FINE_TUNE
            cfg = compose_config(
                [*DATA, f"compression={name}", *extra, *(f"compression.{o}" for o in overrides)]
            )
            method = to_object(cfg.compression)
            method.validate()
            result = method.apply(model, data, FineTuneSettings("adam", 32, from_logits=True, verbose=0))
            tflite = convert(result.model, result.recipe, data.x_train[:100])
            metrics = evaluate(result.model, tflite, data, True, ("tflite",)).metrics
            done[key] = Outcome(
                result,
                tflite,
                read_graph(tflite),
                result.verify_tflite(tflite),
                metrics["accuracy/keras"],
                metrics["accuracy/tflite"],
            )
        return done[key]

    return run


def tflite_kernels(graph: Graph) -> list[np.ndarray]:
    """Constant kernels of CONV_2D (OHWI) and FULLY_CONNECTED ([out, in]) operators."""
    return [graph.tensor(op.inputs[1]).data for op in graph.operators if op.opcode in KERNEL_OPS]


def keras_kernels(model) -> dict[str, np.ndarray]:
    """Kernels by layer name, looking through QAT wrappers (whose variables they own)."""
    kernels = {}
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        if type(inner).__name__ in ("Conv2D", "Dense"):
            kernel = next(w for w in layer.weights if w.name.split("/")[-1].startswith("kernel:"))
            kernels[inner.name] = kernel.numpy()
    return kernels


def zero_fraction(arrays) -> float:
    arrays = list(arrays)
    return sum(int((a == 0).sum()) for a in arrays) / sum(a.size for a in arrays)


METHODS = options("compression")


@pytest.mark.slow
@pytest.mark.parametrize("name", METHODS)
def test_method_keeps_its_promises_and_accuracy(compress, base, name: str) -> None:
    outcome = compress(name)
    graph = outcome.graph
    (x,), (y,) = graph.input_tensors, graph.output_tensors
    kernel_types = {graph.tensor(op.inputs[1]).type_name for op in graph.operators if op.opcode in KERNEL_OPS}
    if name in INT8_METHODS:
        assert (x.type_name, y.type_name) == ("INT8", "INT8")
        assert kernel_types == {"INT8"}
        assert not [t.name for t in graph.tensors if t.type_name == "FLOAT32"], (
            "full-integer model with float tensors"
        )
    elif name == "ptq_float16":
        assert (x.type_name, y.type_name) == ("FLOAT32", "FLOAT32")
        assert {
            graph.tensor(op.inputs[0]).type_name for op in graph.operators if op.opcode == "DEQUANTIZE"
        } == {"FLOAT16"}
    elif name == "ptq_dynamic":
        assert (x.type_name, y.type_name) == ("FLOAT32", "FLOAT32")
        # The converter quantizes only kernels of ≥ 1024 weights: here the dense one, not the conv.
        big = [t for t in tflite_kernels(graph) if t.size >= 1024]
        assert big and all(t.dtype == np.int8 for t in big)
    else:
        assert (x.type_name, y.type_name) == ("FLOAT32", "FLOAT32") and kernel_types == {"FLOAT32"}

    _, _, base_accuracy, _ = base
    assert base_accuracy > 0.9
    # Fine-tuning may gain a little; compression must not lose more than 3 points.
    assert base_accuracy - 0.03 <= outcome.accuracy_keras <= 1.0
    assert outcome.accuracy_tflite == pytest.approx(outcome.accuracy_keras, abs=0.02)
    checks = outcome.result.checks + outcome.verification.checks
    assert checks and all(c.held for c in checks), [c for c in checks if not c.held]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "target"), [("prune_constant", 0.5), ("pqat", 0.5), ("pcqat", 0.5)])
def test_sparsity_reaches_its_target_and_survives_conversion(compress, name: str, target: float) -> None:
    outcome = compress(name)
    assert zero_fraction(keras_kernels(outcome.result.model).values()) == pytest.approx(target, abs=0.002)
    assert zero_fraction(tflite_kernels(outcome.graph)) >= target - 0.002
    assert outcome.result.metrics["sparsity/weights"] == pytest.approx(target, abs=0.002)


@pytest.mark.slow
@pytest.mark.parametrize("final", [0.8, 0.6])
def test_polynomial_schedule_reaches_the_final_sparsity(compress, final: float) -> None:
    outcome = compress("prune_polynomial", f"final_sparsity={final}")
    reached = zero_fraction(keras_kernels(outcome.result.model).values())
    assert reached == pytest.approx(final, abs=0.005)
    metrics = outcome.result.metrics
    assert metrics["sparsity/weights"] == pytest.approx(reached) and metrics["sparsity/target"] == final
    assert metrics["prune/end_step"] <= metrics["prune/total_steps"]


def test_polynomial_schedule_on_a_handful_of_steps(base) -> None:
    """3 fine-tuning steps (TFMOT's default frequency of 100 would never prune)."""
    model, data, _, _ = base
    cfg = compose_config([*DATA, "compression=prune_polynomial", "compression.epochs=1"])
    method = to_object(cfg.compression)
    result = method.apply(model, data, FineTuneSettings("adam", 400, from_logits=True, verbose=0))
    assert result.metrics["prune/total_steps"] == 3
    assert zero_fraction(keras_kernels(result.model).values()) == pytest.approx(0.8, abs=0.005)


@pytest.mark.slow
@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_structured_pattern_on_every_prunable_kernel(compress, quantize: str) -> None:
    outcome = compress("prune_structured", f"quantize={quantize}")
    kernels = keras_kernels(outcome.result.model)
    # seed CNN: the conv sees 1 input channel (no block of 4 to prune), the dense 2,028 inputs.
    assert zero_fraction([kernels["conv"]]) == 0.0
    assert "conv" in outcome.result.tags["prune.dense_layers"]
    dense_blocks = kernels["dense"].T.reshape(10, -1, 4)  # [out, in] -> blocks along the input axis
    assert (np.count_nonzero(dense_blocks, axis=-1) <= 2).all()
    assert zero_fraction([kernels["dense"]]) == 0.5
    fc = next(graph_kernel for graph_kernel in tflite_kernels(outcome.graph) if graph_kernel.ndim == 2)
    assert (np.count_nonzero(fc.reshape(10, -1, 4), axis=-1) <= 2).all()
    assert {c.key for c in outcome.verification.checks} >= {"m_by_n/tflite", "sparsity/tflite"}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cluster", "cqat", "pcqat"])
def test_clustered_kernels_hold_at_most_n_values(compress, name: str) -> None:
    outcome = compress(name)
    for layer, kernel in keras_kernels(outcome.result.model).items():
        per_channel = max(len(np.unique(kernel[..., c])) for c in range(kernel.shape[-1]))
        assert per_channel <= 16, layer
        if name == "cluster":  # TFMOT clusters a whole kernel with one set of centroids
            assert len(np.unique(kernel)) <= 16, layer
    for kernel in tflite_kernels(outcome.graph):  # per output channel: each has its own scale
        assert max(len(np.unique(channel)) for channel in kernel) <= 16
    assert outcome.result.metrics["clusters/max_unique_per_channel"] <= 16


@pytest.mark.slow
def test_pruning_then_int8_keeps_the_zeros(compress) -> None:
    outcome = compress("prune_constant", "quantize=int8")
    assert outcome.graph.input_tensors[0].type_name == "INT8"
    assert zero_fraction(tflite_kernels(outcome.graph)) >= 0.5


@pytest.mark.slow
def test_the_base_model_is_never_modified(compress, base) -> None:
    for name in ("prune_constant", "cluster", "qat"):
        compress(name)
    model, _, _, weights = base
    for before, after in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
