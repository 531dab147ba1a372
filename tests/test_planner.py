"""The activation planner's in-place overlaps (tinyml_exp/export/cgen/planner.py): no two live
buffers share a byte unless an overlap allows it, the raster rule is what a blocked raster-order
conv kernel needs (simulated byte by byte), and a plan never grows over the lifetimes-only one."""

from __future__ import annotations

import numpy as np
import pytest

from tinyml_exp.export.cgen.planner import (
    BufferRequest,
    Overlap,
    find_conflicts,
    free_offset,
    plan_memory,
    raster_gap,
)


def _conv_in_place(x: np.ndarray, out_hwc, k: int, stride: int, pad: int, gap: int, block: int) -> np.ndarray:
    """A conv-like kernel (sum over the window and all input channels, times the output channel
    index + 1) run on one shared byte array with the output `gap` bytes below the input: output
    pixels in raster order, `block` pixels at a time (all their reads, then their writes)."""
    in_h, in_w, in_c = x.shape
    out_h, out_w, out_c = out_hwc
    memory = np.zeros(gap + x.size + out_h * out_w * out_c, dtype=np.int64)
    memory[gap : gap + x.size] = x.reshape(-1)
    pixels = [(oy, ox) for oy in range(out_h) for ox in range(out_w)]
    for start in range(0, len(pixels), block):
        results = []
        for oy, ox in pixels[start : start + block]:
            acc = 0
            for ky in range(k):
                for kx in range(k):
                    iy, ix = oy * stride - pad + ky, ox * stride - pad + kx
                    if 0 <= iy < in_h and 0 <= ix < in_w:
                        at = gap + (iy * in_w + ix) * in_c
                        acc += int(memory[at : at + in_c].sum())
            results.append(((oy * out_w + ox) * out_c, [acc * (c + 1) % 97 for c in range(out_c)]))
        for at, values in results:
            memory[at : at + out_c] = values
    return memory[: out_h * out_w * out_c].reshape(out_hwc)


@pytest.mark.parametrize(
    ("in_hwc", "out_c", "k", "stride", "pad", "zero_breaks"),
    [
        ((6, 5, 4), 4, 3, 1, 1, True),  # depthwise-like 3 × 3 'same'
        ((6, 5, 4), 8, 1, 1, 0, True),  # 1 × 1 expanding
        ((6, 6, 8), 4, 1, 2, 0, False),  # 1 × 1 strided shortcut: shrinks faster than it is read
        ((7, 6, 3), 6, 3, 2, 1, True),  # strided 3 × 3
    ],
)
def test_raster_gap_is_enough_for_a_blocked_raster_kernel(in_hwc, out_c, k, stride, pad, zero_breaks) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(1, 50, size=in_hwc)
    out_hw = ((in_hwc[0] + 2 * pad - k) // stride + 1, (in_hwc[1] + 2 * pad - k) // stride + 1)
    out_hwc = (*out_hw, out_c)
    block = 4
    gap = raster_gap(in_hwc, out_hwc, (stride, stride), (pad, pad), block=block)
    separate = _conv_in_place(x, out_hwc, k, stride, pad, gap=int(np.prod(out_hwc)), block=block)
    assert np.array_equal(_conv_in_place(x, out_hwc, k, stride, pad, gap, block), separate)
    assert gap < np.prod(out_hwc)  # the buffers do share bytes
    if zero_breaks:  # writing over the input at the same offset corrupts it: the gap is needed
        assert not np.array_equal(_conv_in_place(x, out_hwc, k, stride, pad, 0, block), separate)


def test_overlaps_are_used_only_at_their_gap_and_plans_never_grow() -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(2, 14))
        reqs = [BufferRequest(0, int(rng.integers(1, 4000)), -1, 0)]
        reqs += [BufferRequest(k, int(rng.integers(0, 4000)), k - 1, k) for k in range(1, n)]
        reqs += [BufferRequest(("skip", k), int(rng.integers(0, 3000)), k, k + 2) for k in range(0, n, 3)]
        overlaps = [Overlap(k, k - 1, int(rng.integers(0, 2000))) for k in range(1, n) if rng.random() < 0.7]
        plan = plan_memory(reqs, overlaps=overlaps)
        assert find_conflicts(reqs, plan) == []
        assert set(plan.overlaps) <= set(overlaps)
        assert all(off % 4 == 0 for off in plan.offsets.values())
        assert plan.total_bytes <= plan_memory(reqs).total_bytes


def test_a_chain_of_overlaps_shrinks_a_chain_of_equal_buffers() -> None:
    """DS-CNN's shape: one peak shared by every step falls only when all steps overlap."""
    reqs = [BufferRequest(k, 8000, k - 1, k) for k in range(9)]
    overlaps = [Overlap(k, k - 1, 640 if k % 2 else 256) for k in range(1, 9)]
    assert plan_memory(reqs).total_bytes == 16_000
    plan = plan_memory(reqs, overlaps=overlaps)
    assert plan.total_bytes == 8000 + 4 * 640 + 4 * 256
    assert find_conflicts(reqs, plan) == [] and len(plan.overlaps) == 8


def test_an_overlap_below_its_gap_is_a_conflict() -> None:
    reqs = [BufferRequest("in", 100, -1, 0), BufferRequest("out", 100, 0, 1)]
    plan = plan_memory(reqs, overlaps=[Overlap("out", "in", 12)])
    assert plan.offsets["in"] - plan.offsets["out"] == 12 and plan.total_bytes == 112
    plan.offsets["in"] = 8
    assert find_conflicts(reqs, plan) == [("in", "out")]
    with pytest.raises(ValueError, match="must be written where the input dies"):
        plan_memory(
            [BufferRequest("a", 8, 0, 2), BufferRequest("b", 8, 1, 3)], overlaps=[Overlap("b", "a", 0)]
        )


def test_a_grown_scratch_takes_an_idle_gap_or_nothing() -> None:
    """Step 1 uses 1,000 of the 3,000 planned bytes; its scratch may grow into the idle 2,000 but not
    past the plan's total, and never over a buffer live at step 1."""
    rng = np.random.default_rng(2)
    for _ in range(100):
        big, small = int(rng.integers(1000, 4000)), int(rng.integers(4, 1000))
        reqs = [
            BufferRequest("a", big, -1, 0),
            BufferRequest("b", small, 0, 1),
            BufferRequest(("scratch", 1), 8, 1, 1),
        ]
        plan = plan_memory(reqs)
        room = plan.total_bytes - small
        size = int(rng.integers(8, room + 200)) // 4 * 4
        at = free_offset(reqs, plan, ("scratch", 1), size)
        assert (at is not None) == (size <= room), (big, small, size, at)
        if at is not None:
            grown = [r if r.key != ("scratch", 1) else BufferRequest(r.key, size, 1, 1) for r in reqs]
            assert (
                find_conflicts(grown, type(plan)({**plan.offsets, ("scratch", 1): at}, plan.total_bytes))
                == []
            )
