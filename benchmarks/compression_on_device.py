"""Weights in flash and instructions of the generated C per weight encoding (export.weights) vs dense.

Models: the course CNN (Conv2D 12@3x3 -> MaxPool -> Dense 10; float32 and int8 full-integer PTQ)
and ResNet-8 (the MLPerf Tiny architecture from architecture=resnet8, 32 x 32 x 3; int8 only, its
float activations do not fit the board's RAM), with
the weight patterns compression leaves: `cluster16` (16 shared values per kernel, as cluster /
CQAT leave them), `2:4` (2 of every 4 consecutive inputs of a row zero, as prune_structured
leaves them: the Dense layers, and the convolutions whose taps per filter divide by 4), `prune50`
(the smaller half of every kernel zero, as prune_constant 50 % leaves them) and `pcqat` (prune50,
then 16 shared values among the non-zero weights). The patterns are written into the Keras
weights, then the model is converted by the real TFLite converter: the figures other than
accuracy do not depend on training.

Per model and pattern, two encoded builds: the pattern's own mode (cluster16, pcqat: clustered;
2:4, prune50: sparse) and `auto` (the smallest encoding the cost model finds no slower than dense);
`--weights MODE` builds that mode only. Printed: const bytes
(weights, biases, requantization tables, parameters) dense and encoded and their ratio, the
encodings chosen (layers per encoding), and
- host: the encoded C against the dense C on `--inputs` random inputs (int8 byte-identical, float
  within 1e-5 relative) and against TFLM (int8; the dense C is bit-exact with it, see the suite) or
  TFLite's reference kernels (float, 1e-5 relative) on the first 100;
- with `--qemu`: instructions of one inference on the emulated Cortex-M4 (netduinoplus2, median of
  2 inputs) dense and encoded, their ratio, model.o flash (code + const) dense and encoded, and
  whether the device outputs of both builds agree (int8 equal, float 1e-5).

Usage: python benchmarks/compression_on_device.py [--qemu] [--weights auto] [--models course_cnn,resnet8]
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PATTERNS = {"cluster16": "clustered", "2:4": "sparse", "prune50": "sparse", "pcqat": "clustered"}


def cluster16(w: np.ndarray) -> np.ndarray:
    """Each weight replaced by the nearest of 16 centroids (a few Lloyd steps from a linear start)."""
    centroids = np.linspace(w.min(), w.max(), 16)
    for _ in range(10):
        nearest = np.abs(w.reshape(-1, 1) - centroids).argmin(axis=1)
        for k in range(16):
            if np.any(nearest == k):
                centroids[k] = w.reshape(-1)[nearest == k].mean()
    return centroids[np.abs(w.reshape(-1, 1) - centroids).argmin(axis=1)].reshape(w.shape).astype(w.dtype)


def prune50(w: np.ndarray) -> np.ndarray:
    return np.where(np.abs(w) >= np.median(np.abs(w)), w, 0.0).astype(w.dtype)


def pcqat(w: np.ndarray) -> np.ndarray:
    """prune50, then the non-zero weights clustered to 16 values (zeros stay zero)."""
    w = prune50(w)
    out = w.copy()
    out[w != 0] = cluster16(w[w != 0])
    return out


def prune_2_4(kernel: np.ndarray) -> np.ndarray:
    """Kernel (..., out): in every block of 4 consecutive inputs of an output (TFLite's OHWI order
    for a Conv2D, (in, out) for a Dense), the 2 smallest zeroed."""
    rows = np.moveaxis(kernel, -1, 0).reshape(kernel.shape[-1], -1, 4).copy()
    smallest = np.argsort(np.abs(rows), axis=-1)[..., :2]
    np.put_along_axis(rows, smallest, 0.0, axis=-1)
    return np.moveaxis(rows.reshape(kernel.shape[-1], *kernel.shape[:-1]), 0, -1).copy()


def pattern_fn(pattern: str):
    def apply(layer: object, kernel: np.ndarray) -> np.ndarray:
        if pattern == "cluster16":
            return cluster16(kernel)
        if pattern == "2:4":
            return prune_2_4(kernel) if kernel[..., 0].size % 4 == 0 else kernel
        return prune50(kernel) if pattern == "prune50" else pcqat(kernel)

    return apply


def course_cnn(pattern: str) -> dict[str, bytes]:
    """{"float32": ..., "int8": ...} `.tflite` of the course CNN with the weight pattern."""
    from tests.profile_models import course_cnn_tflite

    apply = pattern_fn(pattern)
    # the 2:4 conv of the course CNN has 9 taps per filter: only its Dense layer is 2:4
    return course_cnn_tflite(
        kernel_pattern=lambda layer, k: k if pattern == "2:4" and k.ndim == 4 else apply(layer, k)
    )


def resnet8(pattern: str) -> dict[str, bytes]:
    """{"int8": ...} ResNet-8 (architecture=resnet8, 32 x 32 x 3, 10 classes), random weights with the pattern."""
    import tensorflow as tf
    import tf_keras as keras

    from tests.helpers import compose_config
    from tinyml_exp.models import build_model

    keras.utils.set_random_seed(0)
    cfg = compose_config(["architecture=resnet8"])
    base = build_model(cfg.architecture, (32, 32, 3), 10)
    model = keras.Sequential([keras.layers.InputLayer((32, 32, 3), batch_size=1), base])
    apply = pattern_fn(pattern)
    for layer in base.layers:
        if isinstance(layer, keras.layers.Conv2D | keras.layers.Dense):
            weights = layer.get_weights()
            layer.set_weights([apply(layer, weights[0]), *weights[1:]])
    samples = np.random.default_rng(0).random((50, 1, 32, 32, 3), dtype=np.float32)
    out = {}  # int8 only: the float model's activations (~200 kB) do not fit the board's 128 kB RAM
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([s] for s in samples)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    out["int8"] = conv.convert()
    return out


def inputs(tflite: bytes, n: int, seed: int) -> np.ndarray:
    from tests.test_cgen import random_inputs

    x = random_inputs(tflite, n, seed)
    return x if x.dtype == np.int8 else x * 2 - 1


def host_check(tflite: bytes, dense_dir: Path, enc_dir: Path, res, n: int) -> str:
    """'ok' when the encoded C equals the dense C on n inputs and TFLM / TFLite on 100, else what differs."""
    from tests.test_cgen import compile_host, run_host, run_tflite_ref, run_tflm

    x = inputs(tflite, n, seed=1)
    shape = (res.output_bytes // (1 if x.dtype == np.int8 else 4),)
    dtype = np.int8 if x.dtype == np.int8 else np.float32
    enc = run_host(compile_host(enc_dir), x, shape, dtype)
    dense = run_host(compile_host(dense_dir), x, shape, dtype)
    ref = (run_tflm if dtype == np.int8 else run_tflite_ref)(tflite, x[:100]).reshape(100, -1)
    if dtype == np.int8:
        bad = int((enc != dense).sum()) + int((enc[:100] != ref).sum())
        return "ok" if bad == 0 else f"{bad} differ"
    ok = np.allclose(enc, dense, rtol=1e-5, atol=1e-6) and np.allclose(enc[:100], ref, rtol=1e-5, atol=1e-6)
    err = max(float(np.max(np.abs(enc - dense) / (np.abs(dense) + 1e-6))),
              float(np.max(np.abs(enc[:100] - ref) / (np.abs(ref) + 1e-6))))  # fmt: skip
    return "ok" if ok else f"rel {err:.1e}"


def measure(tflite: bytes, weights: str, work: Path, use_qemu: bool):
    """(CGenResult, QemuRun or None)."""
    from tinyml_exp.export.cgen import generate_c, qemu

    res = generate_c(tflite, work / "model", "bench", weights=weights)
    if not use_qemu:
        return res, None
    return res, qemu.measure(work / "model", inputs(tflite, 2, seed=0), work / "build")


def run_modes(label: str, tflite: bytes, modes: tuple[str, ...], work: Path, args) -> list[tuple]:
    """The dense build once, then one row per encoded build."""
    dense, dense_run = measure(tflite, "dense", work / "dense", args.qemu)
    rows = []
    for weights in modes:
        enc, enc_run = measure(tflite, weights, work / weights, args.qemu)
        host = host_check(tflite, work / "dense" / "model", work / weights / "model", enc, args.inputs)
        rows.append((label, weights, dense, enc, dense_run, enc_run, host))
        print(label, weights, "done", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qemu", action="store_true", help="also count instructions on the emulated board")
    parser.add_argument(
        "--weights", default="pattern", help="export.weights of the encoded build (pattern: its own)"
    )
    parser.add_argument("--models", default="course_cnn,resnet8")
    parser.add_argument("--inputs", type=int, default=1000, help="host inputs per model and pattern")
    args = parser.parse_args()
    builders = {"course_cnn": course_cnn, "resnet8": resnet8}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            for pattern, own in PATTERNS.items():
                modes = (own, "auto") if args.weights == "pattern" else (args.weights,)
                for kind, tflite in builders[name](pattern).items():
                    work = Path(tmp) / f"{name}_{pattern.replace(':', '_')}_{kind}"
                    rows += run_modes(f"{name} {pattern} {kind}", tflite, modes, work, args)
    print(f"\nexport.weights per pattern vs dense; host: encoded C == dense C on {args.inputs} inputs and "
          "TFLM / TFLite ref on 100; dev: device outputs agree")  # fmt: skip
    print(f"{'model':28} {'mode':9} {'dense B':>8} {'enc B':>8} {'ratio':>6} {'instr dense':>11} "
          f"{'instr enc':>10} {'ratio':>6} {'flash dense':>11} {'flash enc':>9} {'host':>5} {'dev':>4}")  # fmt: skip
    for label, weights, dense, enc, dense_run, enc_run, host in rows:
        dev, same = ["-"] * 5, "-"
        if dense_run is not None:
            d, e = int(np.median(dense_run.instructions)), int(np.median(enc_run.instructions))
            dev = [d, e, f"{e / d:.2f}", dense_run.model_flash_bytes, enc_run.model_flash_bytes]
            a, b = dense_run.outputs, enc_run.outputs
            if "int8" in label:
                same = "yes" if np.array_equal(a, b) else "NO"
            else:
                close = np.allclose(a.view(np.float32), b.view(np.float32), rtol=1e-5, atol=1e-6)
                same = "yes" if close else "NO"
        ratio = enc.weights_bytes / dense.weights_bytes
        print(f"{label:28} {weights:9} {dense.weights_bytes:>8} {enc.weights_bytes:>8} {ratio:>6.3f} "
              f"{dev[0]:>11} {dev[1]:>10} {dev[2]:>6} {dev[3]:>11} {dev[4]:>9} {host:>5} {same:>4}")  # fmt: skip
    print("\nencodings chosen (layers per encoding):")
    for label, weights, _, enc, *_ in rows:
        counts = collections.Counter(e for e, _ in enc.encodings.values())
        print(f"  {label} {weights}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        for layer, (encoding, reason) in enc.encodings.items():
            if "course_cnn" in label:
                print(f"      {layer}: {encoding} ({reason})")


if __name__ == "__main__":
    main()
