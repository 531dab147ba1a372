"""Weight encodings of the generated C (export.weights): clustered and 2:4 sparse FULLY_CONNECTED layers
built for the host are bit-exact with TFLite's reference kernels and TFLite Micro on 1,000 random
inputs, take strictly fewer const bytes than dense, and a layer that lost its pattern stays dense
with the reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.cgen_layers import RELU, Int8Builder
from tests.helpers import require_commands
from tests.test_cgen import compile_host, random_inputs, run_host, run_tflite_ref, run_tflm
from tinyml_exp.export.cgen import generate_c
from tinyml_exp.export.cgen.encodings import choose

N_INPUTS = 1000

pytestmark = require_commands("gcc")


def clustered_weights(rng: np.random.Generator, out_n: int, in_n: int, per_channel: bool) -> np.ndarray:
    books = rng.integers(-127, 128, (out_n if per_channel else 1, 16))
    books = np.broadcast_to(books, (out_n, 16))
    return np.take_along_axis(books, rng.integers(0, 16, (out_n, in_n)), axis=1)


def sparse24_weights(rng: np.random.Generator, out_n: int, in_n: int) -> np.ndarray:
    w = rng.integers(-127, 128, (out_n, in_n // 4, 4))
    w[w == 0] = 1  # zeros only where the pruner put them
    keep = rng.permuted(np.tile([1, 1, 0, 0], (out_n, in_n // 4, 1)), axis=-1)
    keep[0, 0] = (0, 0, 0, 0)  # a block of 4 zeros and one with a single value: padding
    keep[0, 1] = (0, 0, 1, 0)
    return (w * keep).reshape(out_n, in_n)


def unstructured_weights(rng: np.random.Generator, out_n: int, in_n: int, zeros: float) -> np.ndarray:
    """Magnitude-free unstructured pruning: `zeros` of the weights zero at random places."""
    w = rng.integers(-127, 128, (out_n, in_n))
    w[rng.random((out_n, in_n)) < zeros] = 0
    w[0, :32] = 0  # an all-zero mask word
    return w


def _fc(w: np.ndarray, seed: int = 0) -> bytes:
    b = Int8Builder(np.random.default_rng(seed))
    x = b.activation((1, w.shape[1]))
    return b.finish([x], [b.fully_connected(x, w.shape[0], RELU, weights=w)])


def _check_exact(model: bytes, tmp_path: Path, weights: str, kernel: str) -> None:
    x = random_inputs(model, N_INPUTS, seed=1)
    for reference, want in (("tflm", run_tflm(model, x)), ("tflite", run_tflite_ref(model, x))):
        res = generate_c(model, tmp_path / reference, "layer", reference=reference, weights=weights)
        dense = generate_c(model, tmp_path / f"{reference}_dense", "layer", reference=reference)
        assert res.kernels == [f"{kernel} <- FULLY_CONNECTED"], (res.kernels, res.encodings)
        assert res.weights_bytes < dense.weights_bytes, (res.weights_bytes, dense.weights_bytes)
        got = run_host(compile_host(tmp_path / reference), x, want.shape[1:], want.dtype)
        bad = int((got != want).sum())
        assert bad == 0, f"{kernel} ({reference}): {bad} of {want.size} values differ"


CASES = {
    # weights, export.weights, kernel
    "clustered_per_channel": (
        lambda r: clustered_weights(r, 10, 64, True),
        "clustered",
        "tme_fc_clustered_s8",
    ),
    "clustered_tensor_odd_in": (lambda r: clustered_weights(r, 7, 33, False), "auto", "tme_fc_clustered_s8"),
    "pairs_tensor": (lambda r: clustered_weights(r, 9, 40, False), "clustered", "tme_fc_clustered_pairs_s8"),
    "pairs_channel": (lambda r: clustered_weights(r, 3, 256, True), "auto", "tme_fc_clustered_pairs_s8"),
    "sparse24": (lambda r: sparse24_weights(r, 9, 48), "sparse", "tme_fc_sparse24_s8"),
    "sparse24_odd_blocks": (lambda r: sparse24_weights(r, 5, 44), "auto", "tme_fc_sparse24_s8"),
    "bitmask": (lambda r: unstructured_weights(r, 6, 70, 0.55), "sparse", "tme_fc_bitmask_s8"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_encoded_fully_connected_is_bit_exact_and_smaller(case: str, tmp_path: Path) -> None:
    make, weights, kernel = CASES[case]
    _check_exact(_fc(make(np.random.default_rng(len(case))), seed=len(case)), tmp_path, weights, kernel)


def test_a_layer_without_the_pattern_stays_dense_with_the_reason(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    w = sparse24_weights(rng, 4, 32)
    w[2, 4:8] = (3, -5, 7, 0)  # one block with 3 non-zero weights
    res = generate_c(_fc(w), tmp_path / "s", "layer", weights="sparse")
    assert res.kernels == ["tme_fc_bitmask_s8 <- FULLY_CONNECTED"]  # still half zeros: the bitmask
    encoding, reason = res.encodings["op0_FULLY_CONNECTED"]
    assert encoding == "bitmask" and "not sparse: 1 of 32 blocks of 4 have more than 2 non-zero" in reason
    w = clustered_weights(rng, 4, 32, True)
    w[w == 0] = 1  # no zeros at all
    res = generate_c(_fc(w), tmp_path / "d", "layer", weights="sparse")
    assert res.kernels == ["tme_fc_packed_s8 <- FULLY_CONNECTED"]
    encoding, reason = res.encodings["op0_FULLY_CONNECTED"]
    assert encoding == "dense" and "100% non-zero" in reason and "not smaller than dense" in reason, reason
    w = clustered_weights(rng, 4, 64, True)
    w[1, 0] = 127 if 127 not in w[1] else -127  # a 17th value in row 1
    w[1, 1] = 126 if 126 not in w[1] else -126
    res = generate_c(_fc(w), tmp_path / "c", "layer", weights="clustered")
    encoding, reason = res.encodings["op0_FULLY_CONNECTED"]
    assert encoding == "dense" and "distinct values (> 16)" in reason, reason


def test_auto_takes_the_smallest_legal_encoding_and_refuses_larger_ones() -> None:
    rng = np.random.default_rng(2)
    both = sparse24_weights(rng, 6, 64)
    both = np.where(both > 0, 50, np.where(both < 0, -50, 0))  # 3 values and 2:4
    assert choose(both.astype(np.int8), "auto", 0).encoding == "clustered"  # 0.5x + 16 B < 0.625x
    assert choose(both.astype(np.int8), "sparse", 0).encoding == "sparse"
    tiny = clustered_weights(rng, 8, 16, True).astype(np.int8)  # 8 B of indices + 16 B per row
    choice = choose(tiny, "clustered", 0)
    assert choice.encoding == "dense" and "not smaller than dense" in choice.reason
    assert choose(tiny, "auto", 3).reason == "asymmetric weights"


def test_unknown_weights_mode_is_refused(tmp_path: Path) -> None:
    from tinyml_exp.config import WEIGHT_ENCODINGS as CONFIG_CHOICES
    from tinyml_exp.export.cgen import WEIGHT_ENCODINGS

    assert CONFIG_CHOICES == WEIGHT_ENCODINGS  # the config check stays light (no NumPy)
    with pytest.raises(ValueError, match="expected one of dense, sparse, clustered, auto"):
        generate_c(_fc(clustered_weights(np.random.default_rng(0), 2, 8, True)), tmp_path, "l", weights="lut")


def _fc_f32(w: np.ndarray) -> bytes:
    from tests.profile_models import _Builder

    b = _Builder()
    x = b.tensor((1, w.shape[1]))
    wt = b.tensor(w.shape, w.astype(np.float32))
    bias = b.tensor((w.shape[0],), np.random.default_rng(1).normal(0, 0.1, w.shape[0]).astype(np.float32))
    y = b.tensor((1, w.shape[0]))
    options = b.s.FullyConnectedOptionsT()
    b.op("FULLY_CONNECTED", [x, wt, bias], [y], options, b.s.BuiltinOptions.FullyConnectedOptions)
    return b.finish([x], [y])


F32_CASES = {
    "clustered": (lambda r: clustered_weights(r, 6, 45, True) / 300.0, "tme_fc_clustered_f32"),
    "sparse24": (lambda r: sparse24_weights(r, 5, 36) / 300.0, "tme_fc_sparse24_f32"),
    "bitmask": (lambda r: unstructured_weights(r, 4, 50, 0.6) / 300.0, "tme_fc_bitmask_f32"),
}


@pytest.mark.parametrize("case", sorted(F32_CASES))
def test_encoded_float_fully_connected_equals_dense(case: str, tmp_path: Path) -> None:
    """float32: the same sums in the same order as the dense kernel, so the same floats; TFLite to 1e-5."""
    make, kernel = F32_CASES[case]
    model = _fc_f32(make(np.random.default_rng(len(case))))
    x = random_inputs(model, N_INPUTS, seed=2) * 2 - 1
    enc = generate_c(
        model, tmp_path / "enc", "layer", weights="clustered" if case == "clustered" else "sparse"
    )
    dense = generate_c(model, tmp_path / "dense", "layer")
    assert enc.kernels == [f"{kernel} <- FULLY_CONNECTED"], enc.encodings
    assert enc.weights_bytes < 0.6 * dense.weights_bytes, (enc.weights_bytes, dense.weights_bytes)
    got = run_host(compile_host(tmp_path / "enc"), x, (enc.output_bytes // 4,), np.float32)
    want = run_host(compile_host(tmp_path / "dense"), x, (dense.output_bytes // 4,), np.float32)
    assert np.array_equal(got, want)
    ref = run_tflite_ref(model, x).reshape(got.shape)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.firmware
@require_commands("arm-none-eabi-gcc", "qemu-system-arm")
def test_encoded_kernels_are_bit_exact_on_the_cortex_m4(tmp_path: Path) -> None:
    """The int8 encoded layers built for Cortex-M4 (SMLAD on the pair table) under QEMU, against TFLM."""
    from tinyml_exp.export.cgen import qemu

    for case, (make, weights, kernel) in CASES.items():
        model = _fc(make(np.random.default_rng(len(case))), seed=len(case))
        x = random_inputs(model, 20, seed=5)
        res = generate_c(model, tmp_path / case, case, weights=weights)
        assert res.kernels == [f"{kernel} <- FULLY_CONNECTED"]
        run = qemu.measure(tmp_path / case, x, tmp_path / f"{case}_elf")
        want = run_tflm(model, x).reshape(len(x), -1)
        bad = int((run.outputs.view(np.int8).reshape(len(x), -1) != want).sum())
        assert bad == 0, f"{case}: the Cortex-M4 build differs from TFLM in {bad} values"
