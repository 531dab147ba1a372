"""Weights in flash and instructions of the generated C per weight encoding (export.weights) vs dense.

The course CNN (Conv2D 12@3x3 -> MaxPool -> Dense 10, int8 full-integer PTQ) with the weight
patterns compression leaves: `cluster16` (16 shared values per kernel, as cluster / CQAT leave
them) and `2:4` (2 of every 4 consecutive inputs of a Dense row zero, as prune_structured leaves
them) and `prune50` (the smaller half of every kernel zero, as prune_constant 50 % leaves them).
The patterns are written into the Keras weights (nearest of 16 centroids spread over the kernel's
range; the 2 smallest magnitudes of each block zeroed; magnitudes below the median zeroed), then the model is converted by
the real TFLite converter: the figures other than accuracy do not depend on training.

Prints, per model: const bytes (weights, biases, requantization tables, parameters) dense and
encoded, their ratio, the encoding per layer, and with `--qemu` the instructions of one inference
on the emulated Cortex-M4 (netduinoplus2) dense and encoded, and whether both builds' outputs agree.

Usage: python benchmarks/compression_on_device.py [--qemu] [--weights auto]
(int8 and float32 models; the float ones go through the float kernels, fc_enc_f32.c.)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def cluster16(w: np.ndarray) -> np.ndarray:
    """Each weight replaced by the nearest of 16 centroids (a few Lloyd steps from a linear start)."""
    centroids = np.linspace(w.min(), w.max(), 16)
    for _ in range(10):
        nearest = np.abs(w.reshape(-1, 1) - centroids).argmin(axis=1)
        for k in range(16):
            if np.any(nearest == k):
                centroids[k] = w.reshape(-1)[nearest == k].mean()
    return centroids[np.abs(w.reshape(-1, 1) - centroids).argmin(axis=1)].reshape(w.shape).astype(w.dtype)


def prune_2_4(kernel: np.ndarray) -> np.ndarray:
    """Dense kernel (in, out): in every block of 4 consecutive inputs of an output, the 2 smallest zeroed."""
    rows = kernel.T.reshape(kernel.shape[1], -1, 4).copy()
    smallest = np.argsort(np.abs(rows), axis=-1)[..., :2]
    np.put_along_axis(rows, smallest, 0.0, axis=-1)
    return rows.reshape(kernel.shape[1], -1).T.copy()


def course_cnn(pattern: str) -> dict[str, bytes]:
    """{"float32": ..., "int8": ...} `.tflite` of the course CNN with the weight pattern."""
    import tf_keras as keras

    from tests.profile_models import course_cnn_tflite

    def apply(layer: object, kernel: np.ndarray) -> np.ndarray:
        if pattern == "cluster16":
            return cluster16(kernel)
        if pattern == "2:4" and isinstance(layer, keras.layers.Dense):
            return prune_2_4(kernel)
        if pattern == "prune50":  # prune_constant 50 %: the smaller half of each kernel zeroed
            return np.where(np.abs(kernel) >= np.median(np.abs(kernel)), kernel, 0.0).astype(kernel.dtype)
        return kernel

    return course_cnn_tflite(kernel_pattern=apply)


def measure(
    tflite: bytes, weights: str, work: Path, use_qemu: bool
) -> tuple[object, int | None, np.ndarray | None]:
    """(CGenResult, instructions or None, device outputs or None)."""
    from tinyml_exp.export.cgen import generate_c, qemu

    res = generate_c(tflite, work / "model", "course_cnn", weights=weights)
    if not use_qemu:
        return res, None, None
    rng = np.random.default_rng(0)
    if res.input_bytes == 28 * 28:
        x = rng.integers(-128, 128, size=(8, 1, 28, 28), dtype=np.int8)
    else:
        x = rng.random((8, 1, 28, 28), dtype=np.float32)
    run = qemu.measure(work / "model", x, work / "build")
    return res, int(np.median(run.instructions)), run.outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qemu", action="store_true", help="also count instructions on the emulated board")
    parser.add_argument("--weights", default="auto", help="export.weights for the encoded build")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for pattern in ("cluster16", "2:4", "prune50"):
            for kind, tflite in course_cnn(pattern).items():
                work = Path(tmp) / f"{pattern.replace(':', '_')}_{kind}"
                dense, dense_n, dense_out = measure(tflite, "dense", work / "dense", args.qemu)
                enc, enc_n, enc_out = measure(tflite, args.weights, work / "enc", args.qemu)
                same = "" if dense_out is None else ("yes" if np.array_equal(dense_out, enc_out) else "NO")
                rows.append((f"{pattern} {kind}", dense, enc, dense_n, enc_n, same))
    print(f"course CNN, export.weights={args.weights} vs dense (same out: device outputs bit-equal)")
    print(f"{'model':16} {'dense B':>8} {'encoded B':>9} {'ratio':>6} {'instr dense':>11} {'instr enc':>10} "
          f"{'ratio':>6} {'same out':>8}")  # fmt: skip
    for pattern, dense, enc, dense_n, enc_n, same in rows:
        instr = (
            f"{dense_n:>11} {enc_n:>10} {enc_n / dense_n:>6.2f}"
            if dense_n
            else f"{'-':>11} {'-':>10} {'-':>6}"
        )
        print(f"{pattern:16} {dense.weights_bytes:>8} {enc.weights_bytes:>9} "
              f"{enc.weights_bytes / dense.weights_bytes:>6.3f} {instr} {same:>8}")  # fmt: skip
        for layer, (encoding, reason) in enc.encodings.items():
            print(f"    {layer}: {encoding} ({reason})")


if __name__ == "__main__":
    main()
