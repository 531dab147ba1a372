"""Static activation-buffer planning from tensor lifetimes.

Every buffer is live from the step that writes it (`first`, -1 for graph inputs) to the last step
that reads it (`last`; graph outputs stay live past the final step). Two buffers may share bytes
only if their lifetimes are disjoint. Buffers are placed greedily, largest first, each at the
lowest aligned offset that does not collide with an already placed, time-overlapping buffer —
the strategy of TFLite Micro's GreedyMemoryPlanner, which is close to optimal for chains.

Aliases (RESHAPE) and in-place outputs are resolved before planning: they are one buffer.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass


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
class MemoryPlan:
    offsets: dict[Hashable, int]
    total_bytes: int  # size of the activation buffer: max over buffers of offset + size


def _align(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


def plan_memory(requests: Sequence[BufferRequest], alignment: int = 4) -> MemoryPlan:
    """Place the buffers; offsets are multiples of `alignment` (word loads, float tensors)."""
    keys = [r.key for r in requests]
    if len(set(keys)) != len(keys):
        raise ValueError("buffer keys must be unique")
    for r in requests:
        if r.size < 0 or r.first > r.last:
            raise ValueError(f"invalid buffer request {r}")
    order = sorted(requests, key=lambda r: (-r.size, r.first, str(r.key)))
    placed: list[tuple[BufferRequest, int]] = []
    offsets: dict[Hashable, int] = {}
    for req in order:
        busy = sorted(
            (off, off + other.size) for other, off in placed if other.overlaps_in_time(req) and other.size
        )
        offset = 0
        for start, end in busy:
            if offset + req.size <= start:
                break
            offset = max(offset, _align(end, alignment))
        placed.append((req, offset))
        offsets[req.key] = offset
    total = max((offsets[r.key] + r.size for r in requests), default=0)
    return MemoryPlan(offsets=offsets, total_bytes=total)


def find_conflicts(requests: Sequence[BufferRequest], plan: MemoryPlan) -> list[tuple[Hashable, Hashable]]:
    """Pairs of buffers that are live at the same time and share bytes (empty for a valid plan)."""
    conflicts = []
    for i, a in enumerate(requests):
        for b in requests[i + 1 :]:
            if not a.overlaps_in_time(b) or a.size == 0 or b.size == 0:
                continue
            a0, b0 = plan.offsets[a.key], plan.offsets[b.key]
            if a0 < b0 + b.size and b0 < a0 + a.size:
                conflicts.append((a.key, b.key))
    return conflicts
