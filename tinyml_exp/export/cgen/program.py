"""The generator's intermediate form: a list of kernel calls over arena tensors and const data.

Lowering (`lowering.py`) turns TFLite operators into `Step`s; this module resolves which tensors
share a buffer (RESHAPE aliases, in-place outputs), derives buffer lifetimes and hands them to
the planner. The emitter only prints what is here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from tinyml_exp.export.cgen.errors import CGenError, UnsupportedOperatorError
from tinyml_exp.export.cgen.planner import (
    BufferRequest,
    MemoryPlan,
    Overlap,
    free_offset,
    plan_memory,
    raster_gap,
)

if TYPE_CHECKING:
    from tinyml_exp.tflite_graph import Graph

__all__ = ["CGenError", "UnsupportedOperatorError"]  # re-exported: raised by every lowering

_CTYPE_BYTES = {
    "int8_t": 1,
    "uint8_t": 1,
    "uint16_t": 2,
    "int32_t": 4,
    "uint32_t": 4,
    "float": 4,
    "double": 8,
    "tme_rq_t": 16,
}


# Kernels with the access order `planner.raster_gap` relies on (read in kernels/conv_s8.c and conv_im2col_s8.c: one
# output pixel at a time in raster order, its channels in turn). A kernel not listed never writes
# over its input; a kernel changing its loop order must leave this set (or prove the rule again).
# tme_dwconv_s8 (kernels/dwconv_s8.c) walks output pixels in raster order too, channels in groups
# of 4 within a pixel, each reading only its own receptive field.
RASTER_KERNELS = frozenset({"tme_conv_s8", "tme_conv_im2col_s8", "tme_conv_im2col_wide_s8", "tme_dwconv_s8"})
_RASTER_LABELS = ("CONV_2D", "DEPTHWISE_CONV_2D")  # a fused pool changes what a pixel reads


@dataclass(frozen=True)
class ConstArray:
    """A `static const` array in flash. `values` is a flat sequence (tuples for `tme_rq_t`)."""

    name: str
    ctype: str
    values: tuple

    @property
    def nbytes(self) -> int:
        return _CTYPE_BYTES[self.ctype] * len(self.values)


@dataclass(frozen=True)
class Params:
    """A `static const` kernel parameter record; `fields` in declaration order of the C struct."""

    name: str
    ctype: str
    fields: tuple[tuple[str, int | float], ...]
    double_fields: frozenset[str] = frozenset()  # fields declared `double` (8 bytes) in C

    @property
    def nbytes(self) -> int:
        size = 0
        for fname, _ in self.fields:
            width = 8 if fname in self.double_fields else 4
            size = (size + width - 1) // width * width + width
        align = 8 if self.double_fields else 4
        return (size + align - 1) // align * align


@dataclass(frozen=True)
class TensorArg:
    """A pointer into the activation buffer: the arena offset of `tensor`, cast to `ctype *`."""

    tensor: int
    ctype: str
    writable: bool = False


@dataclass(frozen=True)
class ScratchArg:
    """The step's scratch buffer (`Step.scratch_bytes`, planned in the arena) as `uint32_t *`."""


Arg = TensorArg | ConstArray | Params | ScratchArg | str  # str: a C literal such as "NULL"


@dataclass(frozen=True)
class Step:
    """One kernel call in `tme_model_invoke`."""

    kernel: str  # C function name
    source: str  # kernel file under kernels/ that defines it
    ops: tuple[int, ...]  # TFLite operator indices this call implements
    label: str  # e.g. "CONV_2D+MAX_POOL_2D"
    args: tuple[Arg, ...]
    inputs: tuple[int, ...]  # arena tensors read
    output: int  # arena tensor written
    in_place: bool = False  # element i of the output depends only on element i of the inputs
    in_place_input: int | None = None  # or: only this input's element i (read before it is written)
    macs: int = 0
    scratch_bytes: int = 0  # working memory live during this step only
    roomier: Roomier | None = None


@dataclass(frozen=True)
class Roomier:
    """A variant of a step's kernel that runs faster the more scratch it gets, with the same
    arguments and access order: `units` (the largest count the plan leaves idle during the step,
    `min_units` to `max_units`) of `unit_bytes` each beyond the step's own scratch, the count passed
    in its parameter record's field `field`."""

    kernel: str
    unit_bytes: int
    max_units: int
    min_units: int
    field: str


@dataclass
class Program:
    steps: list[Step]
    tensor_bytes: dict[int, int]  # arena tensors (and aliases) -> size in bytes
    aliases: dict[int, int]  # RESHAPE output -> tensor it reinterprets
    input_tensor: int
    output_tensor: int
    buffer_of: dict[int, int] = field(default_factory=dict)  # root tensor -> buffer key
    requests: list[BufferRequest] = field(default_factory=list)
    plan: MemoryPlan | None = None
    encodings: dict[str, tuple[str, str]] = field(default_factory=dict)  # layer -> (weight encoding, why)
    lowered: list[Step] | None = None  # the steps as lowered, before plan_buffers chose variants

    def root(self, tensor: int) -> int:
        while tensor in self.aliases:
            tensor = self.aliases[tensor]
        return tensor

    def offset(self, tensor: int) -> int:
        if self.plan is None:
            raise RuntimeError("plan() must run before offsets are known")
        return self.plan.offsets[self.buffer_of[self.root(tensor)]]

    def scratch_offset(self, step_index: int) -> int:
        if self.plan is None:
            raise RuntimeError("plan() must run before offsets are known")
        return self.plan.offsets[("scratch", step_index)]

    def const_arrays(self) -> list[ConstArray]:
        seen: dict[str, ConstArray] = {}
        for step in self.steps:
            for arg in step.args:
                if isinstance(arg, ConstArray):
                    seen.setdefault(arg.name, arg)
        return list(seen.values())

    def params(self) -> list[Params]:
        return [a for step in self.steps for a in step.args if isinstance(a, Params)]

    def plan_buffers(
        self, alignment: int = 4, graph: Graph | None = None, overlap: bool = True
    ) -> MemoryPlan:
        """Merge aliases and in-place outputs into buffers, derive lifetimes, place them.

        With the `graph` (conv geometry) and `overlap`, a raster-order conv may write its output
        over its dying input (`planner.raster_gap`); without them the plan is lifetimes only. Then
        each step with a roomier variant takes it when its scratch fits in the bytes the plan
        leaves idle during the step (`_use_idle_bytes`): the total never grows. Every call plans
        the steps as lowered."""
        if self.lowered is None:
            self.lowered = list(self.steps)
        self.steps = list(self.lowered)
        span, size = self._buffers()
        self.requests = [BufferRequest(key=b, size=size[b], first=s[0], last=s[1]) for b, s in span.items()]
        self.requests += [
            BufferRequest(key=("scratch", i), size=step.scratch_bytes, first=i, last=i)
            for i, step in enumerate(self.steps)
            if step.scratch_bytes
        ]
        offered = self._conv_overlaps(graph, span) if graph is not None and overlap else []
        self.plan = plan_memory(self.requests, alignment=alignment, overlaps=offered)
        self._use_idle_bytes(alignment)
        return self.plan

    def _buffers(self) -> tuple[dict[int, list[int]], dict[int, int]]:
        """Lifetimes [first, last] and sizes of the buffers, tensors merged into the buffer of an
        in-place input that dies at their step (sets `buffer_of`)."""
        end = len(self.steps)
        first: dict[int, int] = {self.root(self.input_tensor): -1}
        last: dict[int, int] = {self.root(self.input_tensor): -1}
        for i, step in enumerate(self.steps):
            for t in step.inputs:
                last[self.root(t)] = i
            out = self.root(step.output)
            first.setdefault(out, i)
            last.setdefault(out, i)
        last[self.root(self.output_tensor)] = end

        self.buffer_of = {t: t for t in first}
        span = {t: [first[t], last[t]] for t in first}
        size = {t: self.tensor_bytes[t] for t in first}
        for i, step in enumerate(self.steps):
            out = self.root(step.output)
            shareable = step.inputs if step.in_place else (step.in_place_input,)
            others = [self.root(t) for t in step.inputs if t != step.in_place_input]
            if shareable == (None,) or (not step.in_place and self.root(step.in_place_input) in others):
                continue
            for t in shareable:
                buf = self.buffer_of[self.root(t)]
                # reuse an input that dies at this step (never the graph output, which lives on)
                dies_here = span[buf][1] == i and buf != self.buffer_of[self.root(self.output_tensor)]
                if dies_here and size[buf] >= size[out]:
                    self.buffer_of[out] = buf
                    span[buf][1] = span.pop(out)[1]
                    size.pop(out)
                    break
        return span, size

    def _use_idle_bytes(self, alignment: int) -> None:
        """Switch steps to their roomier variant with as many units as fit beside the buffers live
        during that step (a step's scratch lives in that step only, so the choices are independent)."""
        offsets = dict(self.plan.offsets)
        for i, step in enumerate(self.steps):
            room = step.roomier
            if room is None or not step.scratch_bytes:
                continue
            key = ("scratch", i)

            def fits(units: int, room: Roomier = room, base: int = step.scratch_bytes, key=key) -> int | None:
                return free_offset(self.requests, self.plan, key, base + units * room.unit_bytes, alignment)

            lo, hi = room.min_units - 1, room.max_units  # fits(lo) holds (or lo is below the range)
            while lo < hi:  # the largest count that fits: a smaller buffer fits where a larger one does
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if fits(mid) is not None else (lo, mid - 1)
            if lo < room.min_units:
                continue
            at, size = fits(lo), step.scratch_bytes + lo * room.unit_bytes
            args = tuple(_with_field(a, room.field, lo) if isinstance(a, Params) else a for a in step.args)
            self.steps[i] = replace(step, kernel=room.kernel, args=args, scratch_bytes=size, roomier=None)
            self.requests = [
                BufferRequest(r.key, size, r.first, r.last) if r.key == ("scratch", i) else r
                for r in self.requests
            ]
            offsets[("scratch", i)] = at
            self.plan = replace(self.plan, offsets=offsets)

    def _conv_overlaps(self, graph: Graph, span: dict[int, list[int]]) -> list[Overlap]:
        """An overlap for every raster-order conv step whose input buffer dies at that step."""
        from tinyml_exp.export.cgen.geometry import conv_geometry

        offered = []
        for i, step in enumerate(self.steps):
            if step.kernel not in RASTER_KERNELS or step.label not in _RASTER_LABELS or len(step.ops) != 1:
                continue
            out, inp = self.buffer_of[self.root(step.output)], self.buffer_of[self.root(step.inputs[0])]
            if out == inp or span[inp][1] != i or span[out][0] != i:
                continue
            op = graph.operators[step.ops[0]]
            x, w, y = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
            in_hwc, out_hwc = tuple(x.shape[1:]), tuple(y.shape[1:])
            stride, _, pad = conv_geometry(op, in_hwc[:2], tuple(w.shape[1:3]), out_hwc[:2])
            elem = (x.nbytes // int(np.prod(in_hwc)), y.nbytes // int(np.prod(out_hwc)))
            offered.append(Overlap(output=out, input=inp, gap=raster_gap(in_hwc, out_hwc, stride, pad, elem)))
        return offered

    def naive_bytes(self) -> int:
        """Max over steps of (its input buffers + its output): what any plan without in-place
        outputs needs at the busiest step."""
        busiest = 0
        for step in self.steps:
            buffers = {self.root(t): self.tensor_bytes[self.root(t)] for t in (*step.inputs, step.output)}
            busiest = max(busiest, sum(buffers.values()))
        return busiest


def _with_field(params: Params, name: str, value: int) -> Params:
    if name not in dict(params.fields):
        raise ValueError(f"{params.ctype} has no field {name!r}")
    return replace(params, fields=tuple((n, value if n == name else v) for n, v in params.fields))


def pack_int16_pairs(lo: np.ndarray, hi: np.ndarray) -> tuple[int, ...]:
    """Words holding two int16 values (low half first), as SMLAD expects them."""
    lo = np.asarray(lo, dtype=np.int64) & 0xFFFF
    hi = np.asarray(hi, dtype=np.int64) & 0xFFFF
    return tuple(int(v) for v in (lo | (hi << 16)).reshape(-1))
