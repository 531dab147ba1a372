"""Static activation-buffer planning from tensor lifetimes, with in-place overlaps.

Every buffer is live from the step that writes it (`first`, -1 for graph inputs) to the last step
that reads it (`last`; graph outputs stay live past the final step). Two buffers may share bytes
only if their lifetimes are disjoint, or if an `Overlap` allows it: a step's output may start
`gap` bytes (or more) below an input that dies at that step, because the kernel reads that input
in the order it writes the output (see `raster_gap` for the rule and its assumptions).

Placement is greedy, largest first, each at the lowest aligned offset that collides with no
placed, time-overlapping buffer — the strategy of TFLite Micro's GreedyMemoryPlanner, close to
optimal for chains. Buffers joined by overlaps are placed as one unit at fixed relative offsets.
`plan_memory` keeps an offered overlap only if it makes the plan smaller (a chain of overlaps
drifts downwards by the sum of its gaps, which can cost more than it saves).

Aliases (RESHAPE) and element-wise in-place outputs are resolved before planning: they are one buffer.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class BufferRequest:
    """One buffer to place: `size` bytes, live over steps [`first`, `last`] inclusive."""

    key: Hashable
    size: int
    first: int
    last: int

    def overlaps_in_time(self, other: BufferRequest) -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass(frozen=True)
class Overlap:
    """`output` may share bytes with `input` if offset(output) + gap <= offset(input).

    Offered by the program for a step whose kernel writes `output` while reading `input` for the
    last time, in an order that never overwrites an input byte it has yet to read."""

    output: Hashable
    input: Hashable
    gap: int


@dataclass(frozen=True)
class MemoryPlan:
    offsets: dict[Hashable, int]
    total_bytes: int  # size of the activation buffer: max over buffers of offset + size
    overlaps: tuple[Overlap, ...] = field(default=())  # the offered overlaps the plan uses


def _align(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


def _check(requests: Sequence[BufferRequest], overlaps: Sequence[Overlap]) -> dict[Hashable, BufferRequest]:
    by_key = {r.key: r for r in requests}
    if len(by_key) != len(requests):
        raise ValueError("buffer keys must be unique")
    for r in requests:
        if r.size < 0 or r.first > r.last:
            raise ValueError(f"invalid buffer request {r}")
    for o in overlaps:
        out, inp = by_key.get(o.output), by_key.get(o.input)
        if out is None or inp is None or o.gap < 0 or out.first != inp.last:
            raise ValueError(f"invalid overlap {o}: the output must be written where the input dies")
    return by_key


def _units(requests: Sequence[BufferRequest], chosen: Sequence[Overlap], alignment: int) -> list[dict]:
    """Buffers grouped by the chosen overlaps: {key: offset relative to the unit's base}."""
    below = {o.input: o for o in chosen}  # input -> the overlap whose output lies below it
    above = {o.output: o for o in chosen}  # output -> the overlap whose input lies above it
    units = []
    for r in requests:
        if r.key in below:
            continue  # not the lowest buffer of its chain
        rel, key = {r.key: 0}, r.key
        while key in above:
            o = above[key]
            rel[o.input] = rel[key] + _align(o.gap, alignment)
            key = o.input
        units.append(rel)
    return units


def _forbidden(req: BufferRequest, other: BufferRequest, at: int, rules: dict) -> tuple[int, int]:
    """Open interval of offsets `req` must not take, `other` being placed at `at`."""
    gap = rules.get((req.key, other.key))
    if gap is not None:  # req is the output: below other by `gap`, or above its end
        return at - min(gap, req.size), at + other.size
    gap = rules.get((other.key, req.key))
    if gap is not None:  # req is the input: above other's start by `gap`, or below it
        return at - req.size, at + min(gap, other.size)
    return at - req.size, at + other.size


def _lowest(intervals: list[tuple[int, int]], alignment: int) -> int:
    offset, moved = 0, True
    while moved:
        moved = False
        for lo, hi in intervals:
            if lo < offset < hi:
                offset, moved = _align(hi, alignment), True
    return offset


def _place(requests: Sequence[BufferRequest], chosen: Sequence[Overlap], alignment: int) -> MemoryPlan:
    by_key = {r.key: r for r in requests}
    rules = {(o.output, o.input): o.gap for o in chosen}
    units = _units(requests, chosen, alignment)

    def extent(unit: dict) -> int:
        return max(rel + by_key[k].size for k, rel in unit.items())

    def order(unit: dict) -> tuple:
        lowest = by_key[next(iter(unit))]
        return (-extent(unit), lowest.first, str(lowest.key))

    offsets: dict[Hashable, int] = {}
    for unit in sorted(units, key=order):
        intervals = []
        for key, rel in unit.items():
            req = by_key[key]
            if not req.size:
                continue
            for placed, at in offsets.items():
                other = by_key[placed]
                if other.size and other.overlaps_in_time(req):
                    lo, hi = _forbidden(req, other, at, rules)
                    intervals.append((lo - rel, hi - rel))
        base = _lowest(sorted(intervals), alignment)
        offsets.update({key: base + rel for key, rel in unit.items()})
    total = max((offsets[r.key] + r.size for r in requests), default=0)
    return MemoryPlan(offsets=offsets, total_bytes=total, overlaps=tuple(chosen))


def plan_memory(
    requests: Sequence[BufferRequest], alignment: int = 4, overlaps: Sequence[Overlap] = ()
) -> MemoryPlan:
    """Place the buffers; offsets are multiples of `alignment` (word loads, float tensors).

    Which offered overlaps to use is a search: adding them one at a time (largest saving first,
    keeping strict gains; then keeping ties too), and removing them one at a time from the set
    of all (a peak shared by a chain of steps falls only when every step of it overlaps, and a
    partial chain can cost more than none). The smallest plan wins; never more than without."""
    by_key = _check(requests, overlaps)
    plain = _place(requests, (), alignment)
    useful = [o for o in overlaps if o.gap < by_key[o.output].size]  # else no byte can be shared
    useful.sort(key=lambda o: -min(by_key[o.input].size, by_key[o.output].size - o.gap))
    candidates = [plain]
    for keep_ties in (False, True):
        plan, chosen = plain, []
        for o in useful:
            trial = _place(requests, [*chosen, o], alignment)
            if trial.total_bytes < plan.total_bytes or (keep_ties and trial.total_bytes == plan.total_bytes):
                plan, chosen = trial, [*chosen, o]
        candidates.append(plan)
    plan, chosen = _place(requests, useful, alignment), list(useful)
    for o in reversed(useful):
        trial = _place(requests, [c for c in chosen if c != o], alignment)
        if trial.total_bytes <= plan.total_bytes:
            plan, chosen = trial, [c for c in chosen if c != o]
    candidates.append(plan)
    return min(candidates, key=lambda p: (p.total_bytes, len(p.overlaps)))


def free_offset(
    requests: Sequence[BufferRequest], plan: MemoryPlan, key: Hashable, size: int, alignment: int = 4
) -> int | None:
    """The lowest aligned offset where buffer `key` (one of `requests`), grown to `size` bytes, fits
    within the plan's total beside every other buffer live at the same time; None when no gap
    is wide enough. Growing a buffer this way never makes the plan larger."""
    req = next(r for r in requests if r.key == key)
    grown = BufferRequest(key=key, size=size, first=req.first, last=req.last)
    intervals = sorted(
        _forbidden(grown, other, plan.offsets[other.key], {})
        for other in requests
        if other.key != key and other.size and other.overlaps_in_time(grown)
    )
    offset = _lowest(intervals, alignment)
    return offset if offset + size <= plan.total_bytes else None


def find_conflicts(
    requests: Sequence[BufferRequest], plan: MemoryPlan, overlaps: Sequence[Overlap] | None = None
) -> list[tuple[Hashable, Hashable]]:
    """Pairs of buffers that are live at the same time and share bytes without an overlap that
    allows it (the plan's own overlaps unless `overlaps` is given); empty for a valid plan."""
    gaps = {(o.output, o.input): o.gap for o in (plan.overlaps if overlaps is None else overlaps)}
    conflicts = []
    for i, a in enumerate(requests):
        for b in requests[i + 1 :]:
            if not a.overlaps_in_time(b) or a.size == 0 or b.size == 0:
                continue
            a0, b0 = plan.offsets[a.key], plan.offsets[b.key]
            if not (a0 < b0 + b.size and b0 < a0 + a.size):
                continue
            if (a.key, b.key) in gaps and a0 + gaps[(a.key, b.key)] <= b0:
                continue
            if (b.key, a.key) in gaps and b0 + gaps[(b.key, a.key)] <= a0:
                continue
            conflicts.append((a.key, b.key))
    return conflicts


# Output pixels a conv-like kernel may have in flight at once (output blocking over pixels).
RASTER_PIXEL_BLOCK = 4


def raster_gap(
    in_hwc: tuple[int, int, int],
    out_hwc: tuple[int, int, int],
    stride: tuple[int, int],
    pad: tuple[int, int],
    elem_bytes: tuple[int, int] = (1, 1),
    block: int = RASTER_PIXEL_BLOCK,
) -> int:
    """The smallest gap at which a conv-like kernel may write its output below its own input.

    The rule (the kernel's access order it relies on): output pixels are written in raster
    order, all channels of a pixel at once or in turn, at most `block` consecutive pixels in
    flight; output pixel (oy, ox) reads no input pixel before (oy·sh − pad_h, ox·sw − pad_w)
    (clamped at 0), the top-left corner of its receptive field, whatever the kernel size or
    dilation. So while any byte of pixel p is written, every input byte still to be read lies at
    or after the first byte read by pixel p − block + 1 (the reads' first bytes only grow along the
    raster), and the output may start `gap` bytes below the input if, for every p,
    (p + 1) · out_pixel_bytes ≤ gap + first_read(p − block + 1).
    """
    (in_h, in_w, in_c), (out_h, out_w, out_c) = in_hwc, out_hwc
    in_px, out_px = in_c * elem_bytes[0], out_c * elem_bytes[1]
    first_read = [
        (
            min(max(0, oy * stride[0] - pad[0]), in_h - 1) * in_w
            + min(max(0, ox * stride[1] - pad[1]), in_w - 1)
        )
        * in_px
        for oy in range(out_h)
        for ox in range(out_w)
    ]
    for p in range(len(first_read) - 2, -1, -1):  # suffix minimum: the earliest byte still to read
        first_read[p] = min(first_read[p], first_read[p + 1])
    gap = 0
    for p in range(len(first_read)):
        gap = max(gap, (p + 1) * out_px - first_read[max(0, p - block + 1)])
    return gap
