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


def pcqat_weights(rng: np.random.Generator, out_n: int, in_n: int, per_channel: bool) -> np.ndarray:
    """Pruned and clustered (PCQAT): about half zeros, <= 16 other values per row or tensor."""
    w = clustered_weights(rng, out_n, in_n, per_channel)
    w[rng.random(w.shape) < 0.5] = 0
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
    "clustered_tensor_odd_in": (
        lambda r: clustered_weights(r, 7, 33, False),
        "smallest",
        "tme_fc_clustered_s8",
    ),
    "pairs_tensor": (lambda r: clustered_weights(r, 9, 40, False), "clustered", "tme_fc_clustered_pairs_s8"),
    "pairs_channel": (lambda r: clustered_weights(r, 3, 256, True), "smallest", "tme_fc_clustered_pairs_s8"),
    "sparse24": (lambda r: sparse24_weights(r, 9, 48), "sparse", "tme_fc_sparse24_s8"),
    "sparse24_odd_blocks": (lambda r: sparse24_weights(r, 5, 44), "smallest", "tme_fc_sparse24_s8"),
    "bitmask": (lambda r: unstructured_weights(r, 6, 70, 0.55), "sparse", "tme_fc_bitmask_s8"),
    "pcqat_channel": (lambda r: pcqat_weights(r, 5, 70, True), "clustered", "tme_fc_sparse_clustered_s8"),
    "pcqat_tensor": (lambda r: pcqat_weights(r, 4, 33, False), "smallest", "tme_fc_sparse_clustered_s8"),
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


def test_smallest_takes_the_smallest_legal_encoding_and_refuses_larger_ones() -> None:
    rng = np.random.default_rng(2)
    both = sparse24_weights(rng, 6, 64)
    both = np.where(both > 0, 50, np.where(both < 0, -50, 0))  # 3 values and 2:4
    # bitmask + 4-bit indices of the non-zero values (0.375x + 16 B) < clustered (0.5x + 16 B) < 2:4 (0.625x)
    assert choose(both.astype(np.int8), "smallest", 0).encoding == "sparse_clustered"
    assert (
        choose(np.where(both == 0, 1, both).astype(np.int8), "smallest", 0).encoding == "clustered"
    )  # no zeros
    assert choose(both.astype(np.int8), "sparse", 0).encoding == "sparse"
    tiny = clustered_weights(rng, 8, 16, True).astype(np.int8)  # 8 B of indices + 16 B per row
    choice = choose(tiny, "clustered", 0)
    assert choice.encoding == "dense" and "not smaller than dense" in choice.reason
    assert choose(tiny, "smallest", 3).reason == "asymmetric weights"


@pytest.mark.parametrize(
    "dtype, make, want",
    [
        # int8: the dense dual-MAC kernel (~1.3 per MAC) beats every encoding at 50 % zeros
        ("int8", lambda r: pcqat_weights(r, 16, 256, False), "dense"),
        ("int8", lambda r: clustered_weights(r, 16, 256, False), "dense"),
        ("int8", lambda r: sparse24_weights(r, 16, 256), "dense"),
        ("int8", lambda r: unstructured_weights(r, 16, 256, 0.95), "bitmask"),  # few MACs left
        # float (6 per MAC dense): the bitmask and 2:4 kernels pay at half zeros, clusters do not
        ("float32", lambda r: unstructured_weights(r, 16, 256, 0.5) / 300.0, "bitmask"),
        ("float32", lambda r: sparse24_weights(r, 16, 256) / 300.0, "sparse"),
        ("float32", lambda r: clustered_weights(r, 16, 256, True) / 300.0, "dense"),
        (
            "float32",
            lambda r: pcqat_weights(r, 16, 256, False) / 300.0,
            "bitmask",
        ),  # smaller than dense, faster
    ],
)
def test_auto_takes_the_smallest_encoding_no_slower_than_dense(
    dtype: str, make, want: str, tmp_path: Path
) -> None:
    """The cost model's choice for a FULLY_CONNECTED, and what `smallest` takes instead."""
    w = make(np.random.default_rng(4))
    model = _fc(w) if dtype == "int8" else _fc_f32(w)
    auto = generate_c(model, tmp_path / "auto", "layer", weights="auto")
    encoding, reason = auto.encodings["op0_FULLY_CONNECTED"]
    assert encoding == want, reason
    smallest = generate_c(model, tmp_path / "smallest", "layer", weights="smallest")
    assert smallest.weights_bytes <= auto.weights_bytes
    if want == "dense":
        assert (
            "x dense instructions (cost model)" in reason and smallest.weights_bytes < auto.weights_bytes
        ), reason


@pytest.mark.firmware
@require_commands("arm-none-eabi-gcc", "qemu-system-arm")
def test_auto_is_no_slower_than_dense_on_the_cortex_m4(tmp_path: Path) -> None:
    """The cost model's verdict checked on the emulated board: auto's count <= dense's, and the
    encoding it refused (int8 PCQAT) really is the slower one."""
    from tinyml_exp.export.cgen import qemu

    rng = np.random.default_rng(6)
    models = {
        "int8_pcqat": _fc(pcqat_weights(rng, 10, 512, False)),
        "float_prune50": _fc_f32(unstructured_weights(rng, 10, 512, 0.5) / 300.0),
    }
    for name, model in models.items():
        x = random_inputs(model, 2, seed=5)
        counts = {}
        for mode in ("dense", "auto", "smallest"):
            generate_c(model, tmp_path / name / mode, "layer", weights=mode)
            run = qemu.measure(tmp_path / name / mode, x, tmp_path / name / f"{mode}_elf")
            counts[mode] = int(np.median(run.instructions))
        assert counts["auto"] <= counts["dense"], (name, counts)
        if name == "int8_pcqat":  # auto kept it dense: the encoded build must be the slower one
            assert counts["smallest"] > counts["dense"], counts


def test_unknown_weights_mode_is_refused(tmp_path: Path) -> None:
    from tinyml_exp.config import WEIGHT_ENCODINGS as CONFIG_CHOICES
    from tinyml_exp.export.cgen import WEIGHT_ENCODINGS

    assert CONFIG_CHOICES == WEIGHT_ENCODINGS  # the config check stays light (no NumPy)
    with pytest.raises(ValueError, match="expected one of dense, sparse, clustered, smallest, auto"):
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
    "pcqat": (lambda r: pcqat_weights(r, 4, 70, False) / 300.0, "tme_fc_sparse_clustered_f32"),
}


@pytest.mark.parametrize("case", sorted(F32_CASES))
def test_encoded_float_fully_connected_equals_dense(case: str, tmp_path: Path) -> None:
    """float32: the same sums in the same order as the dense kernel, so the same floats; TFLite to 1e-5."""
    make, kernel = F32_CASES[case]
    model = _fc_f32(make(np.random.default_rng(len(case))))
    x = random_inputs(model, N_INPUTS, seed=2) * 2 - 1
    enc = generate_c(
        model, tmp_path / "enc", "layer", weights="clustered" if case in ("clustered", "pcqat") else "sparse"
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
    """The int8 encoded layers (FULLY_CONNECTED, CONV_2D) built for Cortex-M4 under QEMU, against TFLM."""
    from tinyml_exp.export.cgen import qemu

    models = {case: (_fc(make(np.random.default_rng(len(case))), seed=len(case)), weights, f"{kernel} <- FULLY_CONNECTED")
              for case, (make, weights, kernel) in CASES.items()}  # fmt: skip
    for case, (kind, out_c, k, in_c, size, same, pool, weights) in CONV_CASES.items():
        w = _conv_filter(np.random.default_rng(len(case)), kind, out_c, k, in_c)
        label = f"tme_conv_{kind.removesuffix('_tensor')}_s8 <- CONV_2D" + ("+MAX_POOL_2D" if pool else "")
        models[f"conv_{case}"] = (_conv(w, size, same, pool, seed=len(case)), weights, label)
    for case, (model, weights, kernel) in models.items():
        x = random_inputs(model, 20, seed=5)
        res = generate_c(model, tmp_path / case, case, weights=weights)
        assert res.kernels == [kernel]
        run = qemu.measure(tmp_path / case, x, tmp_path / f"{case}_elf")
        want = run_tflm(model, x).reshape(len(x), -1)
        bad = int((run.outputs.view(np.int8).reshape(len(x), -1) != want).sum())
        assert bad == 0, f"{case}: the Cortex-M4 build differs from TFLM in {bad} values"


N_CONV_INPUTS = 40  # a conv output has many values per input; the benchmark runs 1,000+ on the board


def _conv(w: np.ndarray, size: tuple[int, int], padding: int, pool: bool, seed: int = 0) -> bytes:
    """int8 CONV_2D (+ MAX_POOL_2D 2 x 2) with the filter `w` [out_c, k_h, k_w, in_c]."""
    from tests.cgen_layers import SAME

    b = Int8Builder(np.random.default_rng(seed))
    x = b.activation((1, *size, w.shape[3]))
    y = b.conv(x, w.shape[0], w.shape[1:3], padding=SAME if padding else 1, act=RELU, weights=w)
    return b.finish([x], [b.max_pool(y, 2, 2) if pool else y])


def _conv_filter(rng: np.random.Generator, kind: str, out_c: int, k: int, in_c: int) -> np.ndarray:
    taps = k * k * in_c
    if kind.startswith("sparse_clustered"):
        return pcqat_weights(rng, out_c, taps, kind == "sparse_clustered").reshape(out_c, k, k, in_c)
    if kind.startswith("clustered"):  # with a zero entry: zero taps are skipped too
        w = clustered_weights(rng, out_c, taps, per_channel=kind == "clustered")
        w[w == w[0, 0]] = 0
    else:
        w = unstructured_weights(rng, out_c, max(taps, 33), 0.55)[:, :taps]
    return w.reshape(out_c, k, k, in_c)


CONV_CASES = {
    # filter kind (clustered: per channel; kernel tme_conv_<kind>_s8), out_c, k, in_c, input size, SAME padding, max-pool, export.weights
    # padded: border pixels check each tap; the dense path is the dual-MAC kernel (explicit mode only)
    "bitmask_same": ("bitmask", 5, 3, 3, (7, 6), True, False, "sparse"),
    # pooled, in_c > 1: the dense path is the reference loop, so auto takes the encoding
    "clustered_pooled": ("clustered", 4, 3, 4, (9, 9), False, True, "auto"),
    "clustered_tensor_same": ("clustered_tensor", 3, 3, 2, (6, 7), True, False, "clustered"),
    "bitmask_c1_pooled": ("bitmask", 6, 3, 1, (8, 10), False, True, "sparse"),
    "pcqat_same": ("sparse_clustered", 4, 3, 8, (5, 6), True, False, "clustered"),
}


@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_encoded_conv_is_bit_exact(case: str, tmp_path: Path) -> None:
    kind, out_c, k, in_c, size, same, pool, weights = CONV_CASES[case]
    kernel, label = (
        f"tme_conv_{kind.removesuffix('_tensor')}_s8",
        "CONV_2D+MAX_POOL_2D" if pool else "CONV_2D",
    )
    rng = np.random.default_rng(len(case))
    model = _conv(_conv_filter(rng, kind, out_c, k, in_c), size, same, pool, seed=len(case))
    x = random_inputs(model, N_CONV_INPUTS, seed=3)
    for reference, want in (("tflm", run_tflm(model, x)), ("tflite", run_tflite_ref(model, x))):
        res = generate_c(model, tmp_path / reference, "layer", reference=reference, weights=weights)
        assert res.kernels == [f"{kernel} <- {label}"], (res.kernels, res.encodings)
        got = run_host(compile_host(tmp_path / reference), x, want.shape[1:], want.dtype)
        bad = int((got != want).sum())
        assert bad == 0, f"{kernel} ({reference}): {bad} of {want.size} values differ"


def test_auto_keeps_a_conv_dense_when_the_dense_kernel_is_faster(tmp_path: Path) -> None:
    w = _conv_filter(np.random.default_rng(0), "bitmask", 4, 3, 4)
    res = generate_c(_conv(w, (6, 6), True, False), tmp_path, "layer", weights="auto")
    assert res.kernels == ["tme_conv_im2col_s8 <- CONV_2D"], res.kernels
    encoding, reason = res.encodings["op0_CONV_2D"]
    assert encoding == "dense" and "bitmask would fit" in reason and "dual-MAC kernel is faster" in reason


def _conv_f32(w: np.ndarray, size: int, padding: int, pool: bool) -> bytes:
    from tests.profile_models import _Builder

    b = _Builder()
    s = b.s
    out_c, k, _, in_c = w.shape
    out = size if padding == 0 else size - k + 1
    x = b.tensor((1, size, size, in_c))
    wt = b.tensor(w.shape, w.astype(np.float32))
    bias = b.tensor((out_c,), np.random.default_rng(1).normal(0, 0.1, out_c).astype(np.float32))
    y = b.tensor((1, out, out, out_c))
    opt = s.Conv2DOptionsT()
    opt.padding, opt.strideW, opt.strideH, opt.fusedActivationFunction = padding, 1, 1, 1
    b.op("CONV_2D", [x, wt, bias], [y], opt, s.BuiltinOptions.Conv2DOptions)
    if pool:
        p = b.tensor((1, out // 2, out // 2, out_c))
        popt = s.Pool2DOptionsT()
        popt.padding, popt.strideW, popt.strideH, popt.filterWidth, popt.filterHeight = 1, 2, 2, 2, 2
        b.op("MAX_POOL_2D", [y], [p], popt, s.BuiltinOptions.Pool2DOptions)
        y = p
    return b.finish([x], [y])


@pytest.mark.parametrize(
    ("kind", "padding", "pool"),
    [("bitmask", 0, False), ("clustered_tensor", 1, True), ("sparse_clustered_tensor", 0, True)],
)
def test_encoded_float_conv_equals_dense(kind: str, padding: int, pool: bool, tmp_path: Path) -> None:
    """float32 CONV_2D: the dense kernel's sums without the x * 0 terms; TFLite to 1e-5."""
    w = _conv_filter(np.random.default_rng(7), kind, 5, 3, 8) / 300.0
    model = _conv_f32(w, 7, padding, pool)
    x = random_inputs(model, N_CONV_INPUTS, seed=2) * 2 - 1
    enc = generate_c(model, tmp_path / "enc", "layer", weights="sparse" if kind == "bitmask" else "clustered")
    kernel = f"tme_conv_{kind.removesuffix('_tensor')}_f32"
    dense = generate_c(model, tmp_path / "dense", "layer")
    assert enc.kernels[0].startswith(f"{kernel} <- CONV_2D"), enc.encodings
    assert enc.weights_bytes < dense.weights_bytes, (enc.weights_bytes, dense.weights_bytes)
    got = run_host(compile_host(tmp_path / "enc"), x, (enc.output_bytes // 4,), np.float32)
    want = run_host(compile_host(tmp_path / "dense"), x, (dense.output_bytes // 4,), np.float32)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    ref = run_tflite_ref(model, x).reshape(got.shape)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_a_conv_with_a_residual_add_is_fused_only_when_it_stays_dense(tmp_path: Path) -> None:
    """The fused conv + ADD kernel is dense: an encoded conv runs alone and the ADD after it; a conv
    that stays dense keeps the fusion and its reason in the encoding table."""
    rng = np.random.default_rng(4)

    def residual(w: np.ndarray | None) -> bytes:
        b = Int8Builder(np.random.default_rng(1))
        x = b.activation((1, 6, 6, 4))
        return b.finish([x], [b.add(b.conv(x, 4, (3, 3), weights=w), x)])

    dense = generate_c(residual(None), tmp_path / "d", "layer", weights="clustered")
    assert dense.kernels[0] == "tme_conv_im2col_add_s8 <- CONV_2D+ADD", dense.kernels
    assert "distinct values (> 16)" in dense.encodings["op0_CONV_2D"][1]
    w = clustered_weights(rng, 4, 36, per_channel=False).reshape(4, 3, 3, 4)
    model = residual(w)
    enc = generate_c(model, tmp_path / "e", "layer", weights="clustered")
    assert enc.kernels[0] == "tme_conv_clustered_s8 <- CONV_2D" and len(enc.kernels) == 2, enc.kernels
    x = random_inputs(model, 20, seed=3)
    want = run_tflm(model, x)
    got = run_host(compile_host(tmp_path / "e"), x, want.shape[1:], want.dtype)
    assert np.array_equal(got, want)
