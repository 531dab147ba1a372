"""C code generator: a `.tflite` model -> a self-contained C99 inference module (model.c / model.h).

int8 outputs are bit-exact with TFLite Micro's reference kernels (`reference="tflm"`, the default)
or with the TFLite interpreter's reference kernels (`reference="tflite"`). The two interpreters
differ only in FULLY_CONNECTED requantization: TFLite's reference kernel (TF >= 2.16) rounds
`acc * scale` in double precision, TFLM uses the integer multiplier; they disagree by one step on
roughly 1 value in 1,000. float32 models agree with TFLite to rounding.

Weights and quantization constants are `const` arrays; every operator is one kernel call (a
CONV_2D followed by a MAX_POOL_2D that tiles its output, or by the residual ADD that alone consumes
it, is one fused call; RESHAPE is free); activations live in one static buffer planned from tensor
lifetimes. The int8 kernels use the Cortex-M4 DSP instructions (SXTB16, SMLAD) when compiled for
it and portable C giving the same integers elsewhere (benchmarks/c_backend_notes.md).
"""

from __future__ import annotations

import logging
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from tinyml_exp.export.cgen import qmath
from tinyml_exp.export.cgen.emitter import emit_header, emit_source
from tinyml_exp.export.cgen.encodings import WEIGHT_ENCODINGS, check_mode
from tinyml_exp.export.cgen.lowering import SUPPORTED_OPERATORS, lower_graph
from tinyml_exp.export.cgen.program import CGenError, Program, UnsupportedOperatorError
from tinyml_exp.tflite_graph import Graph, read_graph

__all__ = [
    "SUPPORTED_OPERATORS",
    "WEIGHT_ENCODINGS",
    "CGenError",
    "CGenResult",
    "UnsupportedOperatorError",
    "build_program",
    "const_bytes",
    "generate_c",
    "qmath",
]

log = logging.getLogger(__name__)

_REFERENCES = ("tflm", "tflite")


@dataclass(frozen=True)
class CGenResult:
    """What `generate_c` wrote and what the module costs.

    `activation_bytes` is the static activation buffer (input and output tensors and kernel
    scratch included); it leaves out the stack (a few hundred bytes: kernel frames are at most
    ~150 B at -O3 on Cortex-M4). `weights_bytes` is all `const` data: weights, biases,
    requantization tables and kernel parameter records, not the code.
    """

    model_c: Path
    model_h: Path
    model_name: str
    build_id: int  # zlib.crc32 of the .tflite bytes
    activation_bytes: int
    weights_bytes: int
    input_bytes: int
    output_bytes: int
    operators: list[str]  # TFLite operators in graph order
    kernels: list[str]  # one C kernel call per step, in order ("tme_conv_s8 <- CONV_2D+MAX_POOL_2D")
    macs: int  # multiply-accumulates per inference (conv, depthwise, fully connected)
    reference: str
    # per kernel call (as TME_PROFILE_LAYERS times them): its label and the TFLite operators it runs
    step_labels: tuple[str, ...] = ()
    step_ops: tuple[tuple[int, ...], ...] = ()
    weights: str = "dense"  # export.weights asked for
    # layer ("op<index>_<OPCODE>") -> (encoding used, why): dense when the pattern is missing
    encodings: dict[str, tuple[str, str]] = field(default_factory=dict)
    dense_weights_bytes: int = 0  # `weights_bytes` of the same model with weights="dense"


def _check_name(model_name: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_.\-+ ]{1,64}", model_name):
        raise ValueError(
            f"model_name {model_name!r} must be 1-64 characters of letters, digits, '_', '.', '-', '+' "
            "or space (it becomes a C string literal)"
        )


def build_program(
    tflite: str | Path | bytes, reference: str = "tflm", weights: str = "dense"
) -> tuple[Program, Graph, int]:
    """Parse, lower and plan a model; returns the program, the graph and the build id."""
    if reference not in _REFERENCES:
        raise ValueError(f"reference={reference!r}; expected one of {', '.join(_REFERENCES)}")
    check_mode(weights)
    buf = Path(tflite).read_bytes() if isinstance(tflite, (str, Path)) else bytes(tflite)
    graph = read_graph(buf)
    program = lower_graph(graph, reference=reference, weights=weights)
    program.plan_buffers(graph=graph)
    return program, graph, zlib.crc32(buf) & 0xFFFFFFFF


def const_bytes(program: Program) -> int:
    """All `const` data of a program: weights, biases, requantization tables, parameter records."""
    return sum(a.nbytes for a in program.const_arrays()) + sum(p.nbytes for p in program.params())


def generate_c(
    tflite: str | Path | bytes,
    out_dir: Path,
    model_name: str,
    *,
    reference: str = "tflm",
    weights: str = "dense",
) -> CGenResult:
    """Write `model.c` and `model.h` for `tflite` into `out_dir` (created if missing).

    `weights` (dense | sparse | clustered | smallest | auto) picks the weight encoding of each layer whose
    weights have the pattern (encodings.py); `CGenResult.encodings` says what each layer got.

    Raises `UnsupportedOperatorError` (one line naming the operator / type) or `CGenError`.
    """
    _check_name(model_name)
    buf = Path(tflite).read_bytes() if isinstance(tflite, (str, Path)) else bytes(tflite)
    program, graph, build_id = build_program(buf, reference, weights)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_h, model_c = out_dir / "model.h", out_dir / "model.c"
    activation_bytes = program.plan.total_bytes
    model_h.write_text(emit_header(model_name, build_id, activation_bytes, graph, len(program.steps)))
    model_c.write_text(emit_source(program, graph, model_name))
    weights_bytes = const_bytes(program)
    dense_bytes = weights_bytes if weights == "dense" else const_bytes(build_program(buf, reference)[0])
    result = CGenResult(
        model_c=model_c,
        model_h=model_h,
        model_name=model_name,
        build_id=build_id,
        activation_bytes=activation_bytes,
        weights_bytes=weights_bytes,
        input_bytes=graph.input_tensors[0].nbytes,
        output_bytes=graph.output_tensors[0].nbytes,
        operators=[op.opcode for op in graph.operators],
        kernels=[f"{s.kernel} <- {s.label}" for s in program.steps],
        macs=sum(s.macs for s in program.steps),
        reference=reference,
        step_labels=tuple(s.label for s in program.steps),
        step_ops=tuple(tuple(s.ops) for s in program.steps),
        weights=weights,
        encodings=dict(program.encodings),
        dense_weights_bytes=dense_bytes,
    )
    log.info(
        "generated %s: %d kernel calls, activations %d B, const data %d B, %d MACs",
        model_c, len(program.steps), activation_bytes, weights_bytes, result.macs,
    )  # fmt: skip
    return result
