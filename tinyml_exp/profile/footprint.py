"""Flash (and the generated C's RAM) per backend: model data + inference code.

The estimate covers what inference brings into the image: the model (the `.tflite` flatbuffer
for TFLM, const weight arrays for the generated C) and the inference code (TFLM framework and the
kernels of the model's operators, or the generated kernels). It leaves out the application
(startup, drivers, serial protocol, libc), which `Target.reserved_flash_bytes` budgets for.

Code-size figures are for Cortex-M4 Thumb-2 at -Os/-O2:
- TFLM framework: 9,732 B — tflite-micro "TFLM Code Size FAQ" (interpreter_memory_footprint −
  baseline_memory_footprint on a bluepill Cortex-M3 board).
- TFLM kernels, per operator: `TFLM_KERNEL_CODE_BYTES` — assumption (order of magnitude of the
  kernels' .text), to be replaced by the firmware build's `arm-none-eabi-size` once a TFLM
  firmware exists; `error/flash_estimate_pct` tracks it.
- Generated C: exact const data from the generator (`generate_c`), kernel code per kernel
  function `CGEN_KERNEL_CODE_BYTES` (assumption until the firmware build measures it).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

TFLM_FRAMEWORK_CODE_BYTES = 9_732
# Shared kernel helpers (kernel_util, quantization_util; CMSIS-NN support functions): assumption.
TFLM_KERNEL_COMMON_BYTES = {"tflm_reference": 4_000, "tflm_cmsis_nn": 7_000}
# operator -> (reference kernel, CMSIS-NN kernel) .text bytes: assumption (see module docstring).
TFLM_KERNEL_CODE_BYTES: dict[str, tuple[int, int]] = {
    "CONV_2D": (3_500, 7_000),
    "DEPTHWISE_CONV_2D": (3_500, 8_000),
    "FULLY_CONNECTED": (2_500, 3_500),
    "MAX_POOL_2D": (1_500, 2_000),
    "AVERAGE_POOL_2D": (1_500, 2_000),
    "ADD": (3_000, 3_000),
    "MUL": (2_500, 2_500),
    "SOFTMAX": (2_500, 2_000),
    "RESHAPE": (600, 600),
    "QUANTIZE": (2_000, 2_000),
    "DEQUANTIZE": (1_500, 1_500),
    "MEAN": (3_000, 3_000),
}
TFLM_KERNEL_DEFAULT_BYTES = 2_500
# Generated C: bytes per distinct kernel function, and per kernel call in the invoke function.
CGEN_KERNEL_CODE_BYTES = 900
CGEN_CALL_BYTES = 24
# .tflite arrays are 16-byte aligned (TFLM requires it for in-place tensor data).
_ALIGNMENT_SLACK = 16


@dataclass(frozen=True)
class CGenFootprint:
    """What the generator reports for a model (bytes)."""

    activation_bytes: int  # static activation buffer, inputs and outputs included
    weights_bytes: int  # const weights, biases, requantization tables, parameter records
    kernels: tuple[str, ...]  # kernel function per call
    step_ops: tuple[tuple[int, ...], ...] = ()  # the TFLite operators each call runs
    step_labels: tuple[str, ...] = ()  # and their names, "CONV_2D+MAX_POOL_2D"
    reference: str = "tflm"  # the interpreter the C is bit-exact with (generate_c's reference)


@dataclass
class FlashEstimate:
    """Flash per backend (bytes); None where the backend cannot run the model."""

    per_backend: dict[str, int | None] = field(default_factory=dict)
    parts: dict[str, dict[str, int]] = field(default_factory=dict)  # backend -> {"model": .., "code": ..}
    cgen: CGenFootprint | None = None
    cgen_error: str = ""


def cgen_footprint(tflite: bytes, reference: str = "tflm") -> tuple[CGenFootprint | None, str]:
    """Run the C generator in a temporary directory; (None, reason) when it cannot."""
    try:
        from tinyml_exp.export.cgen import CGenError, generate_c
    except ImportError as e:
        return None, f"C generator not available: {e}"
    with tempfile.TemporaryDirectory(prefix="tinyml-cgen-") as tmp:
        try:
            result = generate_c(tflite, Path(tmp), "profile", reference=reference)
        except (CGenError, ValueError) as e:
            return None, str(e)
    kernels = tuple(k.split(" <- ")[0] for k in result.kernels)
    return CGenFootprint(
        result.activation_bytes, result.weights_bytes, kernels, result.step_ops, result.step_labels, reference
    ), ""


def estimate_flash(
    tflite: bytes, operators: list[str], cgen: bool = True, reference: str = "tflm"
) -> FlashEstimate:
    """Flash estimates for every backend (`operators`: the model's distinct operator names;
    `reference`: the interpreter the generated C is to match, see `generate_c`)."""
    estimate = FlashEstimate()
    model = len(tflite) + _ALIGNMENT_SLACK
    for column, backend in enumerate(("tflm_reference", "tflm_cmsis_nn")):
        kernels = sum(
            TFLM_KERNEL_CODE_BYTES.get(op, (TFLM_KERNEL_DEFAULT_BYTES,) * 2)[column] for op in operators
        )
        code = TFLM_FRAMEWORK_CODE_BYTES + TFLM_KERNEL_COMMON_BYTES[backend] + kernels
        estimate.parts[backend] = {"model": model, "code": code}
        estimate.per_backend[backend] = model + code
    footprint, error = cgen_footprint(tflite, reference) if cgen else (None, "not requested")
    estimate.cgen, estimate.cgen_error = footprint, error
    if footprint is None:
        estimate.per_backend["cgen"] = None
    else:
        code = CGEN_KERNEL_CODE_BYTES * len(set(footprint.kernels)) + CGEN_CALL_BYTES * len(footprint.kernels)
        estimate.parts["cgen"] = {"model": footprint.weights_bytes, "code": code}
        estimate.per_backend["cgen"] = footprint.weights_bytes + code
    return estimate
