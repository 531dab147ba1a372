"""Weight encodings of the generated C (`export.weights`): which one a layer may use, decided from
its weight array, and the packed arrays of each.

- `clustered`: <= 16 distinct values per tensor (one codebook) or per output row (one codebook per
  channel, as per-channel quantization of a clustered model leaves them): 4-bit indices, two per
  byte, plus codebooks (int8 or float32: 4-bit indices instead of 32-bit floats);
- `sparse`: 2:4, at most 2 non-zero weights in every block of 4 consecutive inputs of a row (what
  `prune_structured` makes): 2 values + a 2-bit position each per block (int8: 0.625x dense);
  `bitmask` (also under `sparse`): any zeros (constant / polynomial pruning, PQAT): the non-zero
  values + one bit per weight, used when smaller than dense (int8: below ~87 % non-zero).

- `sparse_clustered` (under `clustered`, PCQAT): the bitmask of `bitmask` plus a 4-bit codebook index
  per non-zero weight (two per byte, every row starting on a byte), int8: ~0.37x dense at 50 % zeros.

A layer without the pattern stays dense with the reason (`CGenResult.encodings`). `smallest` takes
the smallest legal encoding; `auto` the smallest that is also no slower than dense by the cost model
(`fc_instructions` for FULLY_CONNECTED, `ops_conv_enc` for CONV_2D): on a Cortex-M4 an int8 dense
FULLY_CONNECTED runs ~1.3 instructions per MAC on the dual-MAC path, which no encoding here beats
below ~88 % zeros, so `auto` keeps int8 layers dense where `smallest` saves flash.
Kernels: kernels/fc_enc_s8.c, kernels/fc_enc_f32.c; CONV_2D (bitmask and
clustered, taps in OHWI order per output channel): kernels/conv_enc_s8.c, kernels/conv_enc_f32.c.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

WEIGHT_ENCODINGS = ("dense", "sparse", "clustered", "smallest", "auto")
CODEBOOK = 16  # entries: 4-bit indices


@dataclass(frozen=True)
class Choice:
    encoding: str  # dense | sparse | clustered
    reason: str


def check_mode(weights: str) -> None:
    if weights not in WEIGHT_ENCODINGS:
        raise ValueError(f"weights={weights!r}; expected one of {', '.join(WEIGHT_ENCODINGS)}")


def clustered_layout(w: np.ndarray) -> tuple[int | None, str]:
    """(codebook stride: 0 per tensor, 16 per channel; None when illegal, with the reason)."""
    if np.unique(w).size <= CODEBOOK:
        return 0, f"{np.unique(w).size} values in the tensor"
    worst = max(np.unique(row).size for row in w)
    if worst <= CODEBOOK:
        return CODEBOOK, f"<= {worst} values per channel"
    return None, f"a row has {worst} distinct values (> {CODEBOOK})"


def clustered_bytes(w: np.ndarray, stride: int) -> int:
    out_n, in_n = w.shape
    return out_n * ((in_n + 1) // 2) + CODEBOOK * w.itemsize * (out_n if stride else 1)


def sparse_clustered_layout(w: np.ndarray) -> int | None:
    """Codebook stride (0 per tensor, 16 per row) of the non-zero values; None when > 16 per row."""
    nz = w[w != 0]
    if np.unique(nz).size <= CODEBOOK:
        return 0
    if max(np.unique(row[row != 0]).size for row in w) <= CODEBOOK:
        return CODEBOOK
    return None


def sparse_clustered_bytes(w: np.ndarray, stride: int) -> int:
    out_n, in_n = w.shape
    nibbles = int(((np.count_nonzero(w, axis=1) + 1) // 2).sum())
    return nibbles + out_n * 4 * ((in_n + 31) // 32) + CODEBOOK * w.itemsize * (out_n if stride else 1)


def sparse24_violations(w: np.ndarray) -> int:
    """Blocks of 4 consecutive weights of a row with more than 2 non-zero values."""
    blocks = w.reshape(w.shape[0], -1, 4)
    return int((np.count_nonzero(blocks, axis=-1) > 2).sum())


def sparse24_bytes(w: np.ndarray) -> int:
    out_n, in_n = w.shape
    return out_n * (in_n // 2 * w.itemsize + (in_n + 4) // 8)


def bitmask_bytes(w: np.ndarray) -> int:
    out_n, in_n = w.shape
    return np.count_nonzero(w) * w.itemsize + out_n * 4 * ((in_n + 31) // 32)


def choose(w: np.ndarray, mode: str, w_zp: int, m_n: bool = True, dense_bytes: int | None = None,
           cost: Callable[[str], float] | None = None) -> Choice:  # fmt: skip
    """The encoding of one weight array [out_n, in_n] (int8 or float32) under `mode`: a
    FULLY_CONNECTED's, or a CONV_2D's as [out_c, taps] (`m_n=False`: convolutions have no 2:4
    kernel, their bitmask kernel does only the non-zero MACs of a 2:4 layer too). `dense_bytes`:
    the dense form's size when it is not `w.nbytes` (float16 weights kept as halves). `cost`:
    estimated instructions per encoding name ("dense" included); under `auto` an encoding that
    costs more than dense is refused."""
    if mode == "dense":
        return Choice("dense", "export.weights=dense")
    if w_zp != 0:
        return Choice("dense", "asymmetric weights")
    dense = w.nbytes if dense_bytes is None else dense_bytes
    legal: dict[str, tuple[int, str]] = {}
    refused: dict[str, str] = {}
    if mode in ("clustered", "smallest", "auto"):
        stride, why = clustered_layout(w)
        if stride is None:
            refused["clustered"] = why
        else:
            legal["clustered"] = (clustered_bytes(w, stride), why)
        nz_stride = sparse_clustered_layout(w)
        if nz_stride is not None and np.count_nonzero(w) < w.size:
            per = "channel" if nz_stride else "tensor"
            why = f"{np.count_nonzero(w) / w.size:.0%} non-zero, <= 16 non-zero values per {per}"
            legal["sparse_clustered"] = (sparse_clustered_bytes(w, nz_stride), why)
    if mode in ("sparse", "smallest", "auto") and not m_n:
        legal["bitmask"] = (bitmask_bytes(w), f"{np.count_nonzero(w) / w.size:.0%} non-zero")
    elif mode in ("sparse", "smallest", "auto"):
        if w.shape[1] % 4:
            refused["sparse"] = f"in_n={w.shape[1]} is not a multiple of 4"
        elif (bad := sparse24_violations(w)) > 0:
            refused["sparse"] = f"{bad} of {w.size // 4} blocks of 4 have more than 2 non-zero weights"
        else:
            legal["sparse"] = (sparse24_bytes(w), "2:4")
        if "sparse" not in legal:  # 2:4 when the layer has it: its kernel does less per MAC
            legal["bitmask"] = (bitmask_bytes(w), f"{np.count_nonzero(w) / w.size:.0%} non-zero")
    for name, (nbytes, why) in list(legal.items()):
        if nbytes >= dense:
            refused[name] = f"{why}, but {nbytes} B is not smaller than dense {dense} B"
            legal.pop(name)
        elif mode == "auto" and cost is not None and (ratio := cost(name) / cost("dense")) > 1.0:
            refused[name] = f"{why}, {nbytes} B, but {ratio:.2f}x dense instructions (cost model)"
            legal.pop(name)
    if not legal:
        return Choice("dense", "; ".join(f"not {k}: {v}" for k, v in refused.items()))
    best = min(legal, key=lambda k: legal[k][0])
    nbytes, why = legal[best]
    others = "".join(f"; not {k}: {v}" for k, v in refused.items())
    return Choice(best, f"{why}: {nbytes} B vs dense {dense} B{others}")


# FULLY_CONNECTED instructions under QEMU (Cortex-M4, -icount shift=0) per non-zero weight, per
# weight and per output row (a per-channel codebook's pair table), fitted to one-layer models
# 10x2028, 64x512, 128x640 at 50 % / 80 % zeros (2026-12-03, random inputs; within 5 % of each).
# Dense int8 is the faster of the packed (1.47/MAC at 10 outputs) and wide (1.29) kernels: an
# encoding must beat the better dense kernel. float16: dense halves (tme_fc_f16w_f32, 7.0/MAC).
FC_COSTS: dict[tuple[str, str], tuple[float, float, float]] = {
    ("int8", "dense"): (0.0, 1.29, 0.0),
    ("int8", "bitmask"): (9.0, 0.19, 0.0),
    ("int8", "sparse"): (6.1, 0.0, 0.0),
    ("int8", "clustered"): (0.0, 2.4, 0.0),
    ("int8", "clustered_channel"): (0.0, 2.4, 1200.0),
    ("int8", "sparse_clustered"): (17.0, 0.19, 0.0),
    ("float32", "dense"): (0.0, 6.0, 0.0),
    ("float16", "dense"): (0.0, 7.0, 0.0),
    ("float32", "bitmask"): (10.95, 0.18, 0.0),
    ("float32", "sparse"): (11.55, 0.0, 0.0),
    ("float32", "clustered"): (0.0, 8.0, 0.0),
    ("float32", "clustered_channel"): (0.0, 8.5, 0.0),
    ("float32", "sparse_clustered"): (19.5, 0.18, 0.0),
}


def fc_instructions(dtype: str, encoding: str, w: np.ndarray) -> float:
    """Estimated instructions of a FULLY_CONNECTED [out_n, in_n] in `encoding` (`FC_COSTS`);
    dtype int8 | float32 | float16 (float16: dense weights kept as halves; encoded ones are float32)."""
    if encoding == "clustered" and clustered_layout(w)[0]:
        encoding = "clustered_channel"
    key = (dtype if encoding == "dense" or dtype == "int8" else "float32", encoding)
    per_nz, per_weight, per_row = FC_COSTS[key]
    return per_nz * np.count_nonzero(w) + per_weight * w.size + per_row * w.shape[0]


def pack_clustered(w: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices as bytes, two per byte low nibble first, rows padded to a byte; codebooks of w's type)."""
    out_n, in_n = w.shape
    books = [np.unique(w)] if stride == 0 else [np.unique(row) for row in w]
    codebook = np.zeros((len(books), CODEBOOK), dtype=w.dtype)
    idx = np.zeros((out_n, in_n + (in_n & 1)), dtype=np.uint8)
    for r in range(out_n):
        book = books[0 if stride == 0 else r]
        codebook[0 if stride == 0 else r, : book.size] = book
        idx[r, :in_n] = np.searchsorted(book, w[r])
    packed = idx[:, 0::2] | (idx[:, 1::2] << 4)
    return packed.reshape(-1), codebook.reshape(-1)


def pair_order(w: np.ndarray) -> np.ndarray:
    """Columns of every block of 4 as (0, 2, 1, 3): packed two per byte, a block's index bytes are
    then (i0 | i2 << 4, i1 | i3 << 4), the even and odd input bytes SXTB16 pairs up."""
    out_n, in_n = w.shape
    return w.reshape(out_n, in_n // 4, 4)[..., [0, 2, 1, 3]].reshape(out_n, in_n)


def pack_sparse24(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values of w's type, 2 per block of 4 in input order; position bytes, a nibble per block, low first)."""
    out_n, in_n = w.shape
    blocks = w.reshape(out_n, in_n // 4, 4)
    nz = blocks != 0
    # the non-zero positions first (stable), then the zero ones as padding: take the first two
    order = np.argsort(~nz, axis=-1, kind="stable")[..., :2].astype(np.uint8)
    vals = np.take_along_axis(blocks, order.astype(np.int64), axis=-1)
    nibbles = order[..., 0] | (order[..., 1] << 2)
    if nibbles.shape[1] % 2:  # an odd number of blocks: the row's last byte has one nibble
        nibbles = np.concatenate([nibbles, np.zeros((out_n, 1), dtype=np.uint8)], axis=1)
    pos = nibbles[:, 0::2] | (nibbles[:, 1::2] << 4)
    return vals.astype(w.dtype).reshape(-1), pos.astype(np.uint8).reshape(-1)


def pack_bitmask(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the non-zero values row by row in input order; per row ceil(in_n / 32) uint32 masks, bit
    i % 32 of word i // 32 set where input i has a non-zero weight)."""
    out_n, in_n = w.shape
    words = (in_n + 31) // 32
    bits = np.zeros((out_n, words * 32), dtype=np.uint64)
    bits[:, :in_n] = w != 0
    masks = (bits.reshape(out_n, words, 32) << np.arange(32, dtype=np.uint64)).sum(axis=-1)
    return w[w != 0].astype(w.dtype), masks.astype(np.uint32).reshape(-1)


def pack_sparse_clustered(w: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(4-bit indices of the non-zero values in row order, two per byte low first, every row
    starting on a byte; the masks of `pack_bitmask`; codebooks of w's type)."""
    out_n = w.shape[0]
    books = [np.unique(w[w != 0])] if stride == 0 else [np.unique(row[row != 0]) for row in w]
    codebook = np.zeros((len(books), CODEBOOK), dtype=w.dtype)
    rows = []
    for r in range(out_n):
        book = books[0 if stride == 0 else r]
        codebook[0 if stride == 0 else r, : book.size] = book
        idx = np.searchsorted(book, w[r][w[r] != 0]).astype(np.uint8)
        idx = np.concatenate([idx, np.zeros(idx.size & 1, np.uint8)])
        rows.append(idx[0::2] | (idx[1::2] << 4))
    _, masks = pack_bitmask(w)
    packed = np.concatenate(rows) if rows else np.zeros(0, np.uint8)
    return packed.astype(np.uint8), masks, codebook.reshape(-1)
