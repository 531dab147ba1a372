"""Per-kernel instruction counts of the generated C under QEMU (Cortex-M4, `-icount shift=0`) for the
course CNN and ResNet-8 (int8 PTQ): instructions per inference and per MAC, and per kernel call.

Per-call figures come from an instrumented copy of model.c that reads TIM2 (an instruction
counter under `-icount shift=0`) between kernel calls and returns the readings as its output (the
kernels are data-independent, so one input suffices). ResNet-8 uses random weights and BatchNorm statistics (instruction counts do not depend
on the values); the course CNN is briefly trained on Fashion-MNIST like benchmarks/c_backend.py.
Usage: python benchmarks/c_backend_kernels.py [--models resnet8,course_cnn] [--cache DIR] [--no-steps]
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def resnet8_int8(seed: int = 7) -> bytes:
    """MLPerf Tiny ResNet-8 (32 x 32 x 3, 16/32/64 filters) with random weights, PTQ int8 I/O."""
    import tensorflow as tf
    import tf_keras as keras

    from tests.helpers import randomize_statistics
    from tinyml_exp.models.resnet8 import ResNet8

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = ResNet8(name="resnet8").build((32, 32, 3), 10)
    randomize_statistics(model, rng, keras, biases=False)
    samples = rng.random((100, 32, 32, 3), dtype=np.float32)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([samples[i : i + 1]] for i in range(len(samples)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        return conv.convert()


def load_model(name: str, cache: Path) -> bytes:
    path = cache / f"{name}.tflite"
    if not path.exists():
        if name == "resnet8":
            data = resnet8_int8()
        else:
            from benchmarks.c_backend import course_cnn_int8

            data = course_cnn_int8(6000)
        cache.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return path.read_bytes()


_MARK = (
    '    __asm__ volatile("" ::: "memory");\n'
    "    tme_bench_steps[{i}] = *(volatile uint32_t *)0x40000024u; /* TIM2 CNT */\n"
    '    __asm__ volatile("" ::: "memory");\n'
)


def _instrumented(model_c: str, model_h: str, n_steps: int) -> tuple[str, str]:
    """model.c / model.h whose output is the TIM2 count before every kernel call and after the last
    one (n_steps + 1 words) instead of the model output."""
    head, body = model_c.split("\nvoid tme_model_invoke(void) {\n")
    calls = [c for c in re.split(r"(?=    /\* op )", body.rstrip().removesuffix("}")) if c.strip()]
    if len(calls) != n_steps:
        raise RuntimeError(f"found {len(calls)} kernel calls in model.c, expected {n_steps}")
    marks = [_MARK.format(i=i) for i in range(n_steps + 1)]
    invoke = "".join(m + c for m, c in zip(marks, calls, strict=False)) + marks[-1]
    head = re.sub(r"const void \*tme_model_output\(void\) \{[^}]*\}", "", head)
    c_text = (
        head + f"static uint32_t tme_bench_steps[{n_steps + 1}];\n"
        "const void *tme_model_output(void) { return tme_bench_steps; }\n"
        "\nvoid tme_model_invoke(void) {\n" + invoke + "}\n"
    )
    h_text = re.sub(r"#define TME_MODEL_OUTPUT_BYTES \d+", f"#define TME_MODEL_OUTPUT_BYTES {4 * (n_steps + 1)}",
                    model_h)  # fmt: skip
    return c_text, h_text


def step_counts(model_dir: Path, n_steps: int, x: np.ndarray, work: Path) -> list[int]:
    """Instructions of each kernel call (the timer reads between calls cost ~3 instructions each)."""
    from tinyml_exp.export.cgen.qemu import measure

    c_text, h_text = _instrumented((model_dir / "model.c").read_text(), (model_dir / "model.h").read_text(),
                                   n_steps)  # fmt: skip
    d = work / "instrumented"
    d.mkdir(parents=True, exist_ok=True)
    (d / "model.c").write_text(c_text)
    (d / "model.h").write_text(h_text)
    marks = measure(d, x[:1], work / "build").outputs[0].view("<u4")
    return [int(b - a) for a, b in itertools.pairwise(marks)]


def report(name: str, tflite: bytes, steps: bool, reference: str) -> None:
    from tinyml_exp.export.cgen import build_program, generate_c
    from tinyml_exp.export.cgen.qemu import measure_model
    from tinyml_exp.tflite_graph import read_graph

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        m = measure_model(tflite, work / "measure", n_inputs=3, reference=reference)
        print(f"{name} (reference={reference}): {m.macs:,} MACs, {m.instructions:,} instructions, "
              f"{m.instructions_per_mac:.3f} / MAC, activations {m.activation_bytes:,} B, "
              f"const {m.weights_bytes:,} B, model.o flash {m.model_flash_bytes:,} B")  # fmt: skip
        if not steps:
            return
        res = generate_c(tflite, work / "model", name, reference=reference)
        program, graph, _ = build_program(tflite, reference)
        t = read_graph(tflite).input_tensors[0]
        x = np.random.default_rng(0).integers(-128, 128, size=(1, *t.shape), dtype=np.int8)
        counts = step_counts(work / "model", len(program.steps), x, work / "steps")
        for step, kernel, n in zip(program.steps, res.kernels, counts, strict=True):
            shape = list(graph.tensor(step.output).shape)
            per_mac = f"{n / step.macs:6.3f}/MAC" if step.macs else " " * 10
            print(f"  {kernel:<52} {shape!s:<16} {n:>11,} {per_mac} {step.macs:>11,} MACs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="course_cnn,resnet8")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "tme_kernel_bench")
    parser.add_argument("--reference", default="tflm", choices=("tflm", "tflite"))
    parser.add_argument("--no-steps", action="store_true")
    args = parser.parse_args()
    for name in args.models.split(","):
        report(name, load_model(name, args.cache), not args.no_steps, args.reference)


if __name__ == "__main__":
    main()
