"""Promises a compression method makes about what it produces, checked on every artifact.

A method adds an `Invariant` when a phase establishes a property (pruning: the sparsity reached;
m:n pruning: the block pattern; clustering: at most n values per kernel), and every later
artifact is checked against it: the Keras model after each later phase (does QAT keep the
sparsity?) and the converted `.tflite` (does conversion keep it?). The `.tflite` is also checked
for the tensor types its recipe promises (int8 in, out and weights for full-integer models).

A lost invariant is a failure of the run: `enforce_invariants` records every check in the
stage's result as an `invariant/<name>/<where>` metric (1 held, 0 lost) and raises
`InvariantError` carrying that result, tagged `invariant_failed=<name>/<where>`; the pipeline logs
it and marks the run FAILED, so no figure of a silently broken model reaches the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from tinyml_exp.compress.measure import (
    Kernel,
    keras_kernels,
    m_by_n_eligible,
    m_by_n_violations,
    max_unique,
    sparsity,
    tflite_kernels,
    weight_metrics,
)
from tinyml_exp.errors import StageError

if TYPE_CHECKING:
    import tf_keras

    from tinyml_exp.export.tflite import TFLiteRecipe
    from tinyml_exp.results import StageResult
    from tinyml_exp.tflite_graph import Graph

# The converter leaves weights with fewer elements than this in float32 under dynamic-range
# quantization (TFLite's `min_elements_for_weights` default); only larger ones are promised int8.
DYNAMIC_RANGE_MIN_ELEMENTS = 1024


class InvariantError(StageError):
    """A property the compression method promised does not hold on one of its artifacts."""


@dataclass(frozen=True)
class Check:
    name: str  # the invariant: sparsity | m_by_n | clusters | tensor_types
    where: str  # what was checked: a phase's Keras model ("prune", "qat", ...) or "tflite"
    held: bool
    detail: str  # the measured figure next to the promised one

    @property
    def key(self) -> str:
        return f"{self.name}/{self.where}"


@dataclass(frozen=True)
class Invariant:
    """Base class. `check` returns None where the invariant says nothing about the artifact."""

    name: ClassVar[str] = ""

    def check(self, where: str, kernels: list[Kernel], graph: Graph | None) -> Check | None:
        held, detail = self.evaluate(kernels, graph)
        return Check(self.name, where, held, detail)

    def evaluate(self, kernels: list[Kernel], graph: Graph | None) -> tuple[bool, str]:
        raise NotImplementedError


@dataclass(frozen=True)
class SparsityKept(Invariant):
    """Kernel sparsity never falls below what pruning reached (quantization may only add zeros)."""

    minimum: float
    reached_after: str
    name: ClassVar[str] = "sparsity"

    def evaluate(self, kernels: list[Kernel], graph: Graph | None) -> tuple[bool, str]:
        measured = sparsity(kernels)
        # A float sum of per-kernel counts: allow rounding in the last bits, not one lost zero.
        held = measured >= self.minimum - 1e-9
        return held, f"kernel sparsity {measured:.4f}, {self.minimum:.4f} reached after {self.reached_after}"


@dataclass(frozen=True)
class MByNPattern(Invariant):
    """At least m zeros in every block of n weights along the input axis, on every kernel whose
    input axis is a multiple of n (the only kernels m:n pruning was applied to)."""

    m: int
    n: int
    name: ClassVar[str] = "m_by_n"

    def evaluate(self, kernels: list[Kernel], graph: Graph | None) -> tuple[bool, str]:
        eligible = [k for k in kernels if m_by_n_eligible(k, self.n)]
        bad = {k.name: v for k in eligible if (v := m_by_n_violations(k, self.m, self.n))}
        if not eligible:
            return False, f"no kernel with an input axis that is a multiple of {self.n}"
        if bad:
            listing = ", ".join(f"{name}: {count}" for name, count in bad.items())
            return False, f"blocks of {self.n} with fewer than {self.m} zeros: {listing}"
        return True, f"{self.m}:{self.n} pattern on {len(eligible)} of {len(kernels)} kernels"


@dataclass(frozen=True)
class ClustersKept(Invariant):
    """At most `clusters` distinct values per kernel — or per output channel where that is all
    that can hold: in a `.tflite` (the converter folds BatchNormalization into kernels and
    quantizes convolutions per channel, so one centroid becomes a different stored value in each
    channel) and, with `per_channel`, in Keras after cluster-preserving QAT (TFMOT trains one set
    of centroids per output channel for a Conv2D kernel whose channels each use all but at most
    one of the centroids)."""

    clusters: int
    per_channel: bool = False
    name: ClassVar[str] = "clusters"

    def evaluate(self, kernels: list[Kernel], graph: Graph | None) -> tuple[bool, str]:
        per_channel = self.per_channel or graph is not None
        measured = max_unique(kernels, per_channel)
        unit = "output channel" if per_channel else "kernel"
        return (
            measured <= self.clusters,
            f"at most {measured} distinct values per {unit}, {self.clusters} promised",
        )


@dataclass(frozen=True)
class TensorTypes(Invariant):
    """The `.tflite` tensor types the recipe promises (nothing to check on a Keras model)."""

    quantize: str
    name: ClassVar[str] = "tensor_types"

    def check(self, where: str, kernels: list[Kernel], graph: Graph | None) -> Check | None:
        return None if graph is None else super().check(where, kernels, graph)

    def evaluate(self, kernels: list[Kernel], graph: Graph | None) -> tuple[bool, str]:
        assert graph is not None
        io_type = "INT8" if self.quantize == "int8" else "FLOAT32"
        weight_type = {"none": "FLOAT32", "float16": "FLOAT16", "dynamic": "INT8", "int8": "INT8"}[
            self.quantize
        ]
        problems = [
            f"{role} {t.name!r} is {t.type_name}, not {io_type}"
            for role, tensors in (("input", graph.input_tensors), ("output", graph.output_tensors))
            for t in tensors
            if t.type_name != io_type
        ]
        for kernel in kernels:
            promised = self.quantize != "dynamic" or kernel.size >= DYNAMIC_RANGE_MIN_ELEMENTS
            if promised and kernel.type_name != weight_type:
                problems.append(f"kernel {kernel.name!r} is {kernel.type_name}, not {weight_type}")
        if self.quantize == "int8":
            problems += [f"tensor {t.name!r} is FLOAT32" for t in graph.tensors if t.type_name == "FLOAT32"]
        if problems:
            return False, f"quantize={self.quantize}: " + "; ".join(problems[:5])
        return True, f"quantize={self.quantize}: inputs/outputs {io_type}, kernels {weight_type}"


@dataclass
class Verification:
    checks: list[Check] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)


def check_keras(invariants: list[Invariant], model: tf_keras.Model, where: str) -> list[Check]:
    kernels = keras_kernels(model)
    return [c for inv in invariants if (c := inv.check(where, kernels, None)) is not None]


def verify_tflite(invariants: list[Invariant], recipe: TFLiteRecipe, tflite: bytes) -> Verification:
    """Measure the converted model's kernels and check every promise on it, the recipe's tensor
    types included."""
    from tinyml_exp.tflite_graph import read_graph

    graph = read_graph(tflite)
    kernels = tflite_kernels(graph)
    clustered = any(isinstance(inv, ClustersKept) for inv in invariants)
    promises = [*invariants, TensorTypes(recipe.quantize)]
    checks = [c for inv in promises if (c := inv.check("tflite", kernels, graph)) is not None]
    return Verification(checks, weight_metrics(kernels, "tflite", clustered))


def enforce_invariants(result: StageResult, checks: list[Check]) -> None:
    """Record every check in `result` (metric 1/0 and a tag with the figures); on a lost
    invariant, tag it `invariant_failed` and raise `InvariantError` carrying `result`."""
    if not checks:
        return
    result.metrics.update({f"invariant/{c.key}": float(c.held) for c in checks})
    result.tags.update({f"invariant/{c.key}": c.detail[:5000] for c in checks})
    lost = [c for c in checks if not c.held]
    if lost:
        result.tags["invariant_failed"] = ",".join(c.key for c in lost)
        message = "; ".join(f"invariant {c.key} lost: {c.detail}" for c in lost)
        raise InvariantError(message, partial=result)
