"""The C code generator (tinyml_exp.export.cgen): bit-exactness, memory plan, API and footprint.

Fast tests use tiny models written directly with the TFLite flatbuffer schema (no TensorFlow).
The `slow` tests build four architectures once per session with tf_keras (random weights, random
BatchNorm statistics and biases so every requantization path sees non-trivial values), convert
them to float32 and int8 PTQ, and compare the generated C, compiled for the host, with the TFLite
interpreter's reference kernels and with TFLite Micro on 1,000 random inputs each. The
`firmware` test runs the Cortex-M4 build (DSP instructions) under QEMU and checks it value for
value too, and measures instructions per inference.
"""

from __future__ import annotations

import ctypes
import logging
import subprocess
import warnings
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests.helpers import randomize_statistics, require_commands
from tinyml_exp.export.cgen import (
    CGenError,
    UnsupportedOperatorError,
    build_program,
    generate_c,
    qmath,
)
from tinyml_exp.export.cgen.emitter import emit_header
from tinyml_exp.export.cgen.planner import BufferRequest, find_conflicts, plan_memory
from tinyml_exp.export.cgen.program import RASTER_KERNELS

log = logging.getLogger(__name__)

N_INPUTS = 1000
HOST_CFLAGS = ("-std=c99", "-O3", "-Wall", "-Wextra", "-Werror", "-pedantic")
# Course CNN int8 on Cortex-M4 (arm-none-eabi-gcc 12, -O3 -mcpu=cortex-m4 -mthumb
# -mfloat-abi=hard -mfpu=fpv4-sp-d16, QEMU 7.2 netduinoplus2 -icount shift=0): issue 7 targets.
COURSE_MACS = 93_288
COURSE_MAX_INSTRUCTIONS = 2 * COURSE_MACS  # <= 2.0 instructions per MAC
COURSE_MAX_ACTIVATION_BYTES = 3_120

_DRIVER = r"""
#include <string.h>
#include "model.h"
void tme_test_run(const unsigned char *in, unsigned char *out, int n) {
    for (int i = 0; i < n; ++i) {
        memcpy(tme_model_input(), in + (size_t)i * TME_MODEL_INPUT_BYTES, TME_MODEL_INPUT_BYTES);
        tme_model_invoke();
        memcpy(out + (size_t)i * TME_MODEL_OUTPUT_BYTES, tme_model_output(), TME_MODEL_OUTPUT_BYTES);
    }
}
"""


# ---------------------------------------------------------------------------------------------
# helpers


def compile_host(model_dir: Path) -> ctypes.CDLL:
    """model.c + a batch driver as a shared library (portable C paths: no DSP extension)."""
    (model_dir / "driver.c").write_text(_DRIVER)
    lib = model_dir / "libmodel.so"
    cmd = ["gcc", *HOST_CFLAGS, "-shared", "-fPIC", "-o", str(lib), str(model_dir / "model.c"),
           str(model_dir / "driver.c")]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(lib))


def run_host(lib: ctypes.CDLL, x: np.ndarray, out_shape: tuple[int, ...], out_dtype) -> np.ndarray:
    x = np.ascontiguousarray(x)
    out = np.zeros((len(x), *out_shape), dtype=out_dtype)
    lib.tme_test_run(x.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p), len(x))
    return out


def run_tflite_ref(model: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_content=model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    out = []
    for xi in x:
        it.set_tensor(i, xi[None])
        it.invoke()
        out.append(it.get_tensor(o)[0].copy())
    return np.array(out)


def run_tflm(model: bytes, x: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    tm = runtime.Interpreter.from_bytes(model)
    out = []
    for xi in x:
        tm.set_input(xi[None], 0)
        tm.invoke()
        out.append(tm.get_output(0)[0].copy())
    return np.array(out)


def random_inputs(model: bytes, n: int, seed: int) -> np.ndarray:
    from tinyml_exp.tflite_graph import read_graph

    t = read_graph(model).input_tensors[0]
    rng = np.random.default_rng(seed)
    if t.type_name == "INT8":
        return rng.integers(-128, 128, size=(n, *t.shape[1:]), dtype=np.int8)
    return rng.random((n, *t.shape[1:]), dtype=np.float32)


def tiny_model(opcode: str = "FULLY_CONNECTED", tensor_type: str = "FLOAT32") -> bytes:
    """x[1,4] -> FULLY_CONNECTED(w[3,4], b[3]) -> y[1,3], written with the schema's object API;
    `opcode` / `tensor_type` replace the operator / the activation type to provoke errors."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    ttype = getattr(s.TensorType, tensor_type)
    model = s.ModelT()
    model.version = 3
    w = (np.arange(12, dtype=np.float32).reshape(3, 4) - 6) / 10
    b = np.array([0.1, -0.2, 0.3], dtype=np.float32)
    model.buffers = [s.BufferT() for _ in range(5)]
    model.buffers[1].data = np.frombuffer(w.tobytes(), dtype=np.uint8)
    model.buffers[2].data = np.frombuffer(b.tobytes(), dtype=np.uint8)

    def tensor(name: str, shape: list[int], buffer: int, t: int) -> object:
        tt = s.TensorT()
        tt.name, tt.shape, tt.buffer, tt.type = name, shape, buffer, t
        return tt

    sub = s.SubGraphT()
    sub.tensors = [
        tensor("x", [1, 4], 3, ttype),
        tensor("w", [3, 4], 1, s.TensorType.FLOAT32),
        tensor("b", [3], 2, s.TensorType.FLOAT32),
        tensor("y", [1, 3], 4, ttype),
    ]
    sub.inputs, sub.outputs = [0], [3]
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1, 2], [3]
    op.builtinOptionsType = s.BuiltinOptions.FullyConnectedOptions
    op.builtinOptions = s.FullyConnectedOptionsT()
    sub.operators = [op]
    code = s.OperatorCodeT()
    code.builtinCode = getattr(s.BuiltinOperator, opcode)
    code.deprecatedBuiltinCode = min(code.builtinCode, 127)
    code.version = 1
    model.operatorCodes, model.subgraphs = [code], [sub]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


# ---------------------------------------------------------------------------------------------
# fast: arithmetic helpers, planner, API, error messages


def test_quantize_multiplier_follows_frexp_and_round_half_away() -> None:
    assert qmath.quantize_multiplier(0.5) == (1 << 30, 0)
    assert qmath.quantize_multiplier(1.0) == (1 << 30, 1)
    assert qmath.quantize_multiplier(0.0) == (0, 0)
    assert qmath.quantize_multiplier(2.0**-40) == (0, 0)  # shift < -31 flushes to zero
    # q * 2^31 rounds up to 2^31 -> halved, exponent + 1
    assert qmath.quantize_multiplier(1.0 - 2.0**-33) == (1 << 30, 1)
    m, s = qmath.quantize_multiplier(0.1)
    assert s == -3 and abs(m * 2.0 ** (s - 31) - 0.1) < 2.0**-33
    assert qmath.round_half_away(2.5) == 3 and qmath.round_half_away(-2.5) == -3


def test_requantization_forms_equal_the_reference_in_c(tmp_path: Path) -> None:
    """`requant_table` + `tme_requant` (the one-SMLAL forms and the literal one) against
    MultiplyByQuantizedMultiplier + zero point + clamp, for 3,000 random channels x 400 random
    accumulators, ReLU-clamped and unclamped, with the bias folded into the constant or not."""
    from tinyml_exp.export.cgen.emitter import kernel_source
    from tinyml_exp.export.cgen.ops_int8 import RQ_REFERENCE, RQ_RELU, RQ_SIGNED, requant_table

    rng = np.random.default_rng(3)
    rows, seen = [], set()
    for k in range(3000):
        real = float(rng.uniform(0.5, 1.0)) * 2.0 ** -int(rng.integers(0, 25))
        m, s = qmath.quantize_multiplier(real if k % 50 else 2.0 ** -int(rng.integers(1, 20)))
        zp, bias = int(rng.integers(-128, 128)), int(rng.integers(-20000, 20000))
        relu = k % 2 == 0
        act_min = max(-128, zp) if relu else -128
        folded = k % 3 == 0
        mode, ((c, mm, sh),) = requant_table([m], [s], zp, act_min, np.array([bias]) if folded else None)
        seen.add(mode)
        rows.append(f"{{{mode}, INT64_C({c}), {mm}, {sh}, {m}, {s}, {zp}, {bias}, {act_min}, {int(folded)}}}")
    assert seen == {RQ_REFERENCE, RQ_RELU, RQ_SIGNED}
    src = tmp_path / "rq.c"
    src.write_text(
        "#include <stdint.h>\n#include <stdio.h>\n"
        + kernel_source("common.h")
        + "typedef struct { int32_t mode; int64_t c; int32_t m, sh, mult, shift, zp, bias, act_min, folded; } row_t;\n"
        + f"static const row_t rows[] = {{{', '.join(rows)}}};\n"
        + r"""
static uint32_t s = 2463534242u;
static uint32_t rnd(void) { s ^= s << 13; s ^= s >> 17; s ^= s << 5; return s; }
int main(void) {
    long bad = 0;
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; ++k) {
        const row_t *r = &rows[k];
        const tme_rq_t q = {r->c, r->m, r->sh};
        for (int i = 0; i < 400; ++i) {
            const int32_t acc = (i & 1) ? (int32_t)(rnd() % 8000001) - 4000000 : (int32_t)(rnd() % 4001) - 2000;
            const int32_t want = tme_clamp(tme_mbqm(acc + r->bias, r->mult, r->shift) + r->zp, r->act_min, 127);
            const int32_t in = r->folded ? acc : acc + r->bias;
            bad += tme_clamp(tme_requant(in, &q, r->mode, r->zp), r->act_min, 127) != want;
        }
    }
    printf("%ld\n", bad);
    return 0;
}
"""
    )
    subprocess.run(["gcc", *HOST_CFLAGS, "-Wno-overlength-strings", "-o", str(tmp_path / "rq"), str(src)],
                   check=True)  # fmt: skip
    assert subprocess.run([str(tmp_path / "rq")], capture_output=True, text=True, check=True).stdout == "0\n"


# fc_s8.c's tme_round_mul_double against round((double)acc * scale) cast to int32, as the
# reference computes it: rqd_run(n) checks 8 n (acc, scale) pairs: random over 2^-60..2^30 and
# the whole int32 range, products within an ulp of a half-integer (where rounding the product to
# double first decides), exact ties, and 2^50..2^58 (ulps of 1/4..4: a tie in the dropped bits,
# to even, decides; past 2^31 the int32 wrap), and the fast path's scales next to half-integers.
_RQD_HARNESS = r"""
#include <math.h>
static uint64_t rqd_s = 88172645463325252ull;
static uint64_t rnd(void) { rqd_s ^= rqd_s << 13; rqd_s ^= rqd_s >> 7; rqd_s ^= rqd_s << 17; return rqd_s; }
static int32_t rnd_acc(void) {
    const uint64_t r = rnd();
    switch (r % 4) {
    case 0: return (int32_t)(uint32_t)(r >> 32);                                /* any int32 */
    case 1: return (int32_t)((r >> 32) % 2000001) - 1000000;
    case 2: return (int32_t)((r >> 32) % 201) - 100;
    default: return (r >> 40) % 2 ? INT32_MIN : INT32_MAX;
    }
}
static int32_t rqd_bad, rqd_tested;
static void check(int32_t acc, double scale) {
    const double x = (double)acc * scale;
    if (!(fabs(x) < 9.2e18)) return;  /* the double form's int64 conversion is undefined past 2^63 */
    ++rqd_tested;
    rqd_bad += tme_round_mul_double(acc, &scale) != (int32_t)(int64_t)round(x);
}
static void rqd_run(int32_t n) {
    for (int32_t i = 0; i < n; ++i) {
        const int32_t acc = rnd_acc();
        check(acc, ldexp(1.0 + (double)(rnd() >> 11) / 9007199254740992.0, (int)(rnd() % 91) - 60));
        /* near a half-integer: n + 1/2 = acc * scale up to the rounding of scale, +-1 ulp */
        const int32_t a = acc == 0 ? 7 : acc;
        const double h = (double)((int64_t)(rnd() % 4000) - 2000) + 0.5;
        const double sc = fabs(h / (double)a);
        check(a, sc);
        check(a, nextafter(sc, 0.0));
        check(a, nextafter(sc, 1.0));
        /* exact ties: odd * 2^t times odd * 2^-(t+1) */
        const int t = (int)(rnd() % 20);
        const int32_t odd = (int32_t)(rnd() % 2001) * 2 - 2001;
        check(odd * (1 << t), ldexp((double)(2 * (rnd() % 50) + 1), -(t + 1)));
        check((int32_t)(rnd() % 31) - 15, ldexp((double)((rnd() >> 11) | (1ull << 52)), -(int)(rnd() % 8) - 1));
        /* the fast path's scales, 2^-32..2^-2, with products within a few scales of n + 1/2:
         * either side of the band it leaves to the exact form */
        const double fs = ldexp(1.0 + (double)(rnd() >> 11) / 9007199254740992.0, -(int)(rnd() % 31) - 3);
        const double fn = floor((double)(rnd() % 1000000) / 1e6 * fmin(2.1e9 * fs, 1e6));
        const int32_t fa = (int32_t)llround((fn + 0.5) / fs) + (int32_t)(rnd() % 7) - 3;
        check(fa, fs);
        check(-fa, fs);
    }
    check(12345, 0.0);
    check(-7, ldexp(1.0, -1074));
    check(INT32_MIN, ldexp(3.0, -1070));
    check(INT32_MAX, 1.0);
    check(INT32_MIN, 1.0);
}
"""


def _rqd_source() -> str:
    from tinyml_exp.export.cgen.emitter import kernel_source

    return "#include <stdint.h>\n" + kernel_source("common.h") + kernel_source("fc_s8.c") + _RQD_HARNESS


def test_double_requantization_in_integers_equals_double_arithmetic(tmp_path: Path) -> None:
    """The reference="tflite" FC requantization in integers (_RQD_HARNESS) on 8 M pairs, host."""
    src = tmp_path / "rqd.c"
    main = 'int main(void) { rqd_run(1000000); printf("%ld %ld\\n", (long)rqd_bad, (long)rqd_tested); return 0; }\n'
    src.write_text("#include <stdio.h>\n" + _rqd_source() + main)
    exe = tmp_path / "rqd"
    subprocess.run(["gcc", *HOST_CFLAGS, "-Wno-overlength-strings", "-Wno-unused-function", "-o", str(exe),
                    str(src), "-lm"], check=True)  # fmt: skip
    bad, tested = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    assert bad == "0" and int(tested) > 7_500_000, (bad, tested)


_RQD_MODEL_C = """#include "model.h"
static uint32_t rqd_words[3];
const tme_tensor_info_t tme_model_input_info = {9U, 1U, {4U, 0U, 0U, 0U}, 1.0f, 0, 4U};
const tme_tensor_info_t tme_model_output_info = {9U, 1U, {8U, 0U, 0U, 0U}, 1.0f, 0, 8U};
void *tme_model_input(void) { return &rqd_words[0]; }
const void *tme_model_output(void) { return &rqd_words[1]; }
void tme_model_invoke(void) {
    rqd_bad = rqd_tested = 0;
    rqd_run(60000);
    rqd_words[1] = (uint32_t)rqd_bad;
    rqd_words[2] = (uint32_t)rqd_tested;
}
"""


@pytest.mark.firmware
@require_commands("arm-none-eabi-gcc", "make", "qemu-system-arm")
def test_double_requantization_in_integers_equals_soft_float_on_the_cortex_m4(tmp_path: Path) -> None:
    """The same on the emulated Cortex-M4 (Thumb-2 code, against libgcc's soft-float double), 360 k pairs."""
    from tinyml_exp.export.cgen import qemu

    model = tmp_path / "model"
    model.mkdir()
    # the generator's own header (the model API contract) for a 4-byte input and an 8-byte output
    io = SimpleNamespace(
        input_tensors=[SimpleNamespace(nbytes=4)], output_tensors=[SimpleNamespace(nbytes=8)]
    )
    (model / "model.h").write_text(emit_header("rqd", 0, 12, io))
    (model / "model.c").write_text(_rqd_source().replace("#include <stdint.h>\n", '#include "model.h"\n', 1)
                                   + _RQD_MODEL_C.replace('#include "model.h"\n', ""))  # fmt: skip
    run = qemu.measure(model, np.zeros((1, 4), dtype=np.int8), tmp_path / "build")
    bad, tested = run.outputs.reshape(-1).view(np.int32)[:2]
    assert bad == 0 and tested > 350_000, (bad, tested)


def test_planner_reuses_dead_buffers_and_never_overlaps_live_ones() -> None:
    # the course CNN after fusion: input (784 B, until the conv), pooled (2028 B), logits (10 B)
    chain = [
        BufferRequest("input", 784, -1, 0),
        BufferRequest("pooled", 2028, 0, 1),
        BufferRequest("logits", 10, 1, 2),
    ]
    plan = plan_memory(chain)
    assert plan.total_bytes == 784 + 2028
    assert plan.offsets["logits"] == plan.offsets["input"]  # the input is dead by then
    assert find_conflicts(chain, plan) == []
    rng = np.random.default_rng(0)
    for _ in range(300):
        reqs = []
        for k in range(int(rng.integers(1, 25))):
            first = int(rng.integers(-1, 20))
            reqs.append(BufferRequest(k, int(rng.integers(0, 5000)), first, first + int(rng.integers(0, 8))))
        plan = plan_memory(reqs)
        assert find_conflicts(reqs, plan) == []
        assert all(off % 4 == 0 for off in plan.offsets.values())
        peak = max(sum(r.size for r in reqs if r.first <= t <= r.last) for t in range(-1, 30))
        assert peak <= plan.total_bytes <= sum(r.size + 3 for r in reqs)


def test_planner_detects_a_bad_plan() -> None:
    reqs = [BufferRequest("a", 8, 0, 2), BufferRequest("b", 8, 1, 3)]
    bad = plan_memory(reqs)
    bad.offsets["b"] = 4
    assert find_conflicts(reqs, bad) == [("a", "b")]


def test_generated_api_matches_the_frozen_header_contract(tmp_path: Path) -> None:
    model = tiny_model()
    res = generate_c(model, tmp_path / "m", "tiny fc")
    header = res.model_h.read_text()
    assert '#define TME_MODEL_NAME "tiny fc"' in header
    assert f"#define TME_MODEL_BUILD_ID 0x{zlib.crc32(model):08X}u" in header
    assert res.build_id == zlib.crc32(model)
    assert f"#define TME_MODEL_ACTIVATION_BYTES {res.activation_bytes}" in header
    assert "#define TME_MODEL_INPUT_BYTES 16" in header and "#define TME_MODEL_OUTPUT_BYTES 12" in header
    for decl in (
        "extern const tme_tensor_info_t tme_model_input_info;",
        "extern const tme_tensor_info_t tme_model_output_info;",
        "void *tme_model_input(void);",
        "const void *tme_model_output(void);",
        "void tme_model_invoke(void);",
    ):
        assert decl in header
    # model.c + model.h alone compile as strict C99
    subprocess.run(["gcc", *HOST_CFLAGS, "-c", "-o", str(tmp_path / "m.o"), str(res.model_c)], check=True)

    class Info(ctypes.Structure):
        _fields_ = [("dtype", ctypes.c_uint8), ("rank", ctypes.c_uint8), ("dims", ctypes.c_uint16 * 4),
                    ("scale", ctypes.c_float), ("zero_point", ctypes.c_int32), ("bytes", ctypes.c_uint32)]  # fmt: skip

    lib = compile_host(res.model_c.parent)
    info = Info.in_dll(lib, "tme_model_output_info")
    assert (info.dtype, info.rank, list(info.dims), info.scale, info.bytes) == (0, 2, [1, 3, 0, 0], 0.0, 12)
    x = np.random.default_rng(1).random((50, 4), dtype=np.float32)
    np.testing.assert_allclose(run_host(lib, x, (3,), np.float32), run_tflite_ref(model, x), rtol=1e-6)
    assert res.operators == ["FULLY_CONNECTED"] and res.macs == 12


def test_unsupported_operator_stops_with_one_line_naming_it(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedOperatorError) as e:
        generate_c(tiny_model("CONV_3D"), tmp_path, "bad")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("CONV_3D (op 0) is not supported by the C generator; supported: CONV_2D,")
    assert not (tmp_path / "model.c").exists()


def test_unsupported_tensor_type_is_named(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedOperatorError, match=r"INT16") as e:
        generate_c(tiny_model(tensor_type="INT16"), tmp_path, "bad")
    assert "\n" not in str(e.value)


def test_bad_arguments_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="model_name"):
        generate_c(tiny_model(), tmp_path, 'quote"d')
    with pytest.raises(ValueError, match="reference"):
        generate_c(tiny_model(), tmp_path, "ok", reference="xnnpack")
    assert issubclass(UnsupportedOperatorError, CGenError)


# ---------------------------------------------------------------------------------------------
# slow: real architectures built with tf_keras


def _course_cnn(keras):
    layers = keras.layers
    return keras.Sequential(
        [
            layers.InputLayer((28, 28), batch_size=1),
            layers.Reshape((28, 28, 1)),
            layers.Conv2D(12, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(10),
        ]
    )


def _mlp(keras):
    layers = keras.layers
    return keras.Sequential(
        [
            layers.InputLayer((28, 28), batch_size=1),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dense(10),
        ]
    )


def _resnet8(keras):
    """MLPerf Tiny image-classification ResNet-8 (BN folded at conversion, GAP -> MEAN)."""
    layers = keras.layers

    def conv_bn(x, filters, strides, relu=True):
        x = layers.Conv2D(filters, 3, strides=strides, padding="same")(x)
        x = layers.BatchNormalization()(x)
        return layers.Activation("relu")(x) if relu else x

    inputs = layers.Input((32, 32, 3), batch_size=1)
    x = conv_bn(inputs, 16, 1)
    y = conv_bn(conv_bn(x, 16, 1), 16, 1, relu=False)
    x = layers.Activation("relu")(layers.Add()([x, y]))
    for filters in (32, 64):
        y = conv_bn(conv_bn(x, filters, 2), filters, 1, relu=False)
        shortcut = layers.Conv2D(filters, 1, strides=2, padding="same")(x)
        x = layers.Activation("relu")(layers.Add()([shortcut, y]))
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(x))


def _mixed(keras):
    """The remaining kernels: strided SAME conv + ReLU6, depthwise (multiplier 2), a fused max-pool
    after a multi-channel conv, SAME average pool, an overlapping (unfused) max-pool, ADD,
    keep-dims MEAN, a dense layer with 7 outputs."""
    layers = keras.layers
    inputs = layers.Input((15, 15, 3), batch_size=1)
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu6")(inputs)
    x = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="relu")(x)
    y = layers.MaxPooling2D(2)(layers.Conv2D(16, 3, padding="same")(x))
    z = layers.AveragePooling2D(3, strides=2, padding="same")(x)
    z = layers.MaxPooling2D(3, strides=1, padding="same")(z)
    x = layers.Conv2D(12, 1)(layers.Add()([y, z]))
    x = layers.GlobalAveragePooling2D(keepdims=True)(x)
    return keras.Model(inputs, layers.Dense(7)(layers.Flatten()(x)))


ARCHITECTURES = {"course_cnn": _course_cnn, "mlp": _mlp, "resnet8": _resnet8, "mixed": _mixed}


def build_models() -> dict[str, dict[str, bytes | int]]:
    """The `models` session fixture (tests/conftest.py, shared with test_cycle_model):
    {architecture: {"float": .tflite, "int8": .tflite}} plus "mixed_float_io" (int8 inside,
    float32 interface: QUANTIZE / DEQUANTIZE). Random weights, biases and BatchNorm statistics."""
    import tensorflow as tf
    import tf_keras as keras

    rng = np.random.default_rng(7)
    out: dict[str, dict[str, bytes | int]] = {}
    for name, build in ARCHITECTURES.items():
        keras.utils.set_random_seed(7)
        model = build(keras)
        randomize_statistics(model, rng, keras, biases=True)
        shape = model.input_shape[1:]
        samples = rng.random((100, *shape), dtype=np.float32)

        def convert(int8: bool, int8_io: bool = True, model=model, samples=samples) -> bytes:
            conv = tf.lite.TFLiteConverter.from_keras_model(model)
            if int8:
                conv.optimizations = [tf.lite.Optimize.DEFAULT]
                conv.representative_dataset = lambda: ([samples[i : i + 1]] for i in range(len(samples)))
                conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                if int8_io:
                    conv.inference_input_type = conv.inference_output_type = tf.int8
            with warnings.catch_warnings():  # PTQ with a float interface warns about input statistics
                warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
                return conv.convert()

        out[name] = {"float": convert(False), "int8": convert(True), "params": model.count_params()}
        if name == "mixed":
            out["mixed_float_io"] = {"int8": convert(True, int8_io=False)}
    return out


def _check_program(model: bytes) -> None:
    """The plan of a real model: live buffers never share bytes; a step's output shares its
    input's buffer only for element-wise kernels (or the one input a kernel declares, such as the
    skip input of a conv with the residual ADD fused in) and only when that input dies there, and
    overlaps its input only for a raster-order conv kernel, below it by at least the gap."""
    program, _, _ = build_program(model)
    assert find_conflicts(program.requests, program.plan) == []
    for i, step in enumerate(program.steps):
        out = program.buffer_of[program.root(step.output)]
        for t in step.inputs:
            buf = program.buffer_of[program.root(t)]
            if buf == out:
                assert step.in_place or program.root(t) == program.root(step.in_place_input)
                assert next(r for r in program.requests if r.key == buf).first < i
                continue
            overlap = [o for o in program.plan.overlaps if (o.output, o.input) == (out, buf)]
            if overlap:
                assert step.kernel in RASTER_KERNELS and step.label in ("CONV_2D", "DEPTHWISE_CONV_2D")
                assert program.offset(step.output) + overlap[0].gap <= program.offset(t)
                continue
            a0, b0 = program.offset(t), program.offset(step.output)
            a1, b1 = (
                a0 + program.tensor_bytes[program.root(t)],
                b0 + program.tensor_bytes[program.root(step.output)],
            )
            assert a1 <= b0 or b1 <= a0, f"step {i} {step.label}: input and output overlap"


@pytest.mark.slow
@require_commands("gcc")
@pytest.mark.parametrize("arch", ["course_cnn", "mlp", "resnet8", "mixed", "mixed_float_io"])
def test_int8_is_bit_exact_with_tflite_and_tflm(models, arch: str, tmp_path: Path) -> None:
    model = models[arch]["int8"]
    _check_program(model)
    x = random_inputs(model, N_INPUTS, seed=11)
    expected = {"tflite": run_tflite_ref(model, x), "tflm": run_tflm(model, x)}
    disagree = int((expected["tflite"] != expected["tflm"]).sum())
    log.info(
        "%s: TFLite reference and TFLM disagree on %d of %d values", arch, disagree, expected["tflm"].size
    )
    for reference, want in expected.items():
        res = generate_c(model, tmp_path / reference, arch, reference=reference)
        got = run_host(compile_host(tmp_path / reference), x, want.shape[1:], want.dtype)
        mismatches = int((got != want).sum())
        assert mismatches == 0, f"{arch} ({reference}): {mismatches} of {want.size} values differ"
        assert res.reference == reference


@pytest.mark.slow
@require_commands("gcc")
@pytest.mark.parametrize("arch", ["course_cnn", "mlp", "resnet8", "mixed"])
def test_float32_matches_tflite_to_1e5(models, arch: str, tmp_path: Path) -> None:
    model = models[arch]["float"]
    _check_program(model)
    x = random_inputs(model, 300, seed=12)
    want = run_tflite_ref(model, x)
    generate_c(model, tmp_path, arch)
    got = run_host(compile_host(tmp_path), x, want.shape[1:], np.float32)
    # relative to the output range: elements near zero carry the absolute rounding of large sums
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))


@pytest.mark.slow
def test_course_cnn_footprint(models, tmp_path: Path) -> None:
    assert models["course_cnn"]["params"] == 20_410
    res = generate_c(models["course_cnn"]["int8"], tmp_path, "course_cnn")
    assert res.macs == COURSE_MACS
    assert res.kernels == ["tme_conv_c1k3p2_s8 <- CONV_2D+MAX_POOL_2D", "tme_fc_packed_s8 <- FULLY_CONNECTED"]
    # input (784 B) + pooled conv output (2028 B); the logits reuse the dead input
    assert res.activation_bytes == 2_812 <= COURSE_MAX_ACTIVATION_BYTES
    assert 20_300 <= res.weights_bytes <= 21_500, res.weights_bytes  # 20,410 parameters + tables
    assert res.operators == ["RESHAPE", "CONV_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED"]


@pytest.mark.slow
@pytest.mark.firmware
@require_commands("arm-none-eabi-gcc", "make", "qemu-system-arm")
def test_cortex_m4_build_is_bit_exact_and_within_budget(models, tmp_path: Path) -> None:
    """The DSP paths (SMLAD, SXTB16, SSAT, SMLAL requantization) on an emulated Cortex-M4."""
    from tinyml_exp.export.cgen import qemu

    counts = {}
    for arch, n in (("course_cnn", 300), ("mlp", 300), ("mixed", 300), ("resnet8", 20)):
        model = models[arch]["int8"]
        x = random_inputs(model, n, seed=13)
        res = generate_c(model, tmp_path / arch, arch)
        run = qemu.measure(tmp_path / arch, x, tmp_path / f"{arch}_elf")
        mismatches = int(
            (run.outputs.view(np.int8).reshape(n, -1) != run_tflm(model, x).reshape(n, -1)).sum()
        )
        assert mismatches == 0, f"{arch}: Cortex-M4 output differs from TFLM in {mismatches} values"
        counts[arch] = (int(np.median(run.instructions)), res.macs)
        log.info("%s: %d instructions per inference, %.3f per MAC, module flash %d B, RAM %d B", arch,
                 counts[arch][0], counts[arch][0] / res.macs, run.model_flash_bytes, run.model_ram_bytes)  # fmt: skip
    # the TFLite-reference variant (FULLY_CONNECTED requantization rounded as in double precision)
    model = models["course_cnn"]["int8"]
    x = random_inputs(model, 300, seed=14)
    generate_c(model, tmp_path / "tflite_ref", "course_cnn", reference="tflite")
    run = qemu.measure(tmp_path / "tflite_ref", x, tmp_path / "tflite_ref_elf")
    assert np.array_equal(
        run.outputs.view(np.int8).reshape(300, -1), run_tflite_ref(model, x).reshape(300, -1)
    )

    instructions, macs = counts["course_cnn"]
    assert instructions <= COURSE_MAX_INSTRUCTIONS, (
        f"{instructions} instructions ({instructions / macs:.2f}/MAC)"
    )
