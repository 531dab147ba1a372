"""Per-operator cycle estimates for a target's core, the artifact's dtype and an inference backend.

cycles(layer) = core_scale(core) × [ MACs × cycles_per_mac(class) + window_ops × per_window_op
                + elements × per_element (softmax: per_softmax_element) + copy_bytes × per_byte
                + per_operator overhead ]  (+ soft-float cost where the core has no FPU)
cycles(model) = Σ layers + per-inference overhead, then × calibration scale when measured points
exist for (target, backend, dtype) — see `calibration.py`.

Constants are cycles on the reference core (Cortex-M4 with the DSP extension and an FPU, code in
flash behind ST's ART accelerator). Each constant names its source; "derived" means reasoned
from a kernel's inner loop and an instruction-timing table, not measured; "assumption" means a
placeholder to be replaced by calibration. Published end-to-end figures include everything a
layer does per MAC (index arithmetic, requantization), so MAC layers carry no per-element term.

Backends:
- tflm_reference: TFLM with its portable reference kernels (what the course board ran).
- tflm_cmsis_nn: TFLM with CMSIS-NN kernels where TFLM has one (int8; `CMSIS_NN_OPTIMIZED`);
  float and the other operators run the reference kernels. Arm cores only.
- cgen: the C this project generates (`tinyml_exp.export.cgen`): one call per operator, no
  interpreter. Its layers are priced by `cgen_costs.py`: coefficients per kernel fitted to
  per-layer QEMU instruction counts (benchmarks/cost_calibration.py) and turned into cycles with
  the core's CPI; the constants below price what the fit does not cover (float32, no generated C).
"""

from __future__ import annotations

from dataclasses import dataclass

from tinyml_exp.profile.operators import BACKENDS, CMSIS_NN_OPTIMIZED


@dataclass(frozen=True)
class KernelCosts:
    """Cycles per unit of work on a Cortex-M4F (DSP + FPU) for one backend and dtype."""

    conv_mac: float
    depthwise_mac: float
    fc_mac: float
    window_op: float  # per pooling-window element (comparison or add)
    element: float  # per output element of element-wise operators and reductions
    softmax_element: float
    copy_byte: float  # reshape-like operators
    op_overhead: float  # per operator: dispatch, parameter set-up
    invoke_overhead: float  # per inference
    source: str


_REF_MAC = (
    "TFLM reference kernels, person_detection (MobileNet v1 0.25, 96×96×1, 7.16 M MACs by this "
    "profiler's rules) 13.005 s/inference on NUCLEO-F413ZH (Cortex-M4F, 100 MHz): 182 cycles/MAC "
    "(Samsung/ONE issue #7598, 2021)"
)
_REF_FC = (
    "derived: conv ÷ 4 — reference FullyConnected does 2 loads, 2 offset adds and 1 MLA per MAC, "
    "ConvPerChannel adds two 4-D Offset() computations and padding tests per MAC (≈ 4× the instructions)"
)
_CMSIS_MAC = (
    "TFLM + CMSIS-NN, same person_detection model: 386.6 ms on NUCLEO-F413ZH at 100 MHz → 5.4 "
    "cycles/MAC (ONE #7598); MLPerf Tiny v0.5 reference (NUCLEO-L4R5ZI 120 MHz, TFLM 2.3.1 + "
    "CMSIS-NN): ResNet-8 1.420 inf/s → 84.5 M cycles ≈ 6.8 cycles/MAC incl. residual ADDs"
)
_CMSIS_FC = "derived: arm_fully_connected_s8 does 2 MACs per SMLAD after SXTB16 expansion (≈ 2.5 cycles/MAC)"
_CGEN = "design target of the generated C (≈ 2 instructions/MAC) × CPI ≈ 1.3 on Cortex-M4 (LDR 2 cycles, SMLAD/MLA 1)"
_TFLM_OVERHEAD = "assumption: MicroInterpreter node loop + kernel Eval entry, ≈ 1.5 k cycles/op"

# What every kernel of one runtime pays alike: byte copies (reshape-like operators), per operator
# and per inference.
_TFLM_RUNTIME = {
    "copy_byte": 0.5,  # memcpy, word copies ≈ 2 cycles / 4 bytes
    "op_overhead": 1500.0,  # _TFLM_OVERHEAD
    "invoke_overhead": 2000.0,
}
_CGEN_RUNTIME = {
    "copy_byte": 0.0,  # RESHAPE is an alias in the generated C
    "op_overhead": 100.0,  # a direct call with a const parameter record
    "invoke_overhead": 200.0,
}

COSTS: dict[tuple[str, str], KernelCosts] = {
    ("tflm_reference", "int8"): KernelCosts(
        conv_mac=180.0,
        depthwise_mac=180.0,
        fc_mac=45.0,
        window_op=30.0,  # derived: one 4-D Offset() + compare per window element (≈ 1/6 of a conv MAC)
        element=30.0,  # derived: broadcast index + two requantizations (MultiplyByQuantizedMultiplier)
        softmax_element=150.0,  # derived: gemmlowp fixed-point exp + reciprocal per element
        **_TFLM_RUNTIME,
        source=f"MACs: {_REF_MAC}; FC: {_REF_FC}; overhead: {_TFLM_OVERHEAD}",
    ),
    ("tflm_reference", "float32"): KernelCosts(
        conv_mac=180.0,
        depthwise_mac=180.0,
        fc_mac=45.0,
        window_op=30.0,
        element=20.0,
        softmax_element=120.0,  # expf
        **_TFLM_RUNTIME,
        source="assumption: same loop and indexing structure as the int8 reference kernels (VMLA.F32 "
        "3 cycles vs MLA 1 is small beside the index arithmetic); " + _REF_MAC,
    ),
    ("tflm_cmsis_nn", "int8"): KernelCosts(
        conv_mac=5.5,
        depthwise_mac=5.5,
        fc_mac=2.5,
        window_op=3.0,  # derived: arm_max_pool_s8 compares 4 int8 lanes per instruction pair
        element=8.0,  # derived: arm_elementwise_add_s8, two requantizations per element
        softmax_element=60.0,  # derived: arm_softmax_s8 fixed-point exp
        **_TFLM_RUNTIME,
        source=f"MACs: {_CMSIS_MAC}; FC: {_CMSIS_FC}; overhead: {_TFLM_OVERHEAD}",
    ),
    ("cgen", "int8"): KernelCosts(
        conv_mac=2.6,
        depthwise_mac=3.0,
        fc_mac=2.6,
        window_op=1.5,
        element=5.0,
        softmax_element=60.0,
        **_CGEN_RUNTIME,
        source=f"{_CGEN}; per-op: direct call (assumption). Calibrate with QEMU instruction counts",
    ),
    ("cgen", "float32"): KernelCosts(
        conv_mac=4.0,  # derived: 2 VLDR + VFMA.F32 per MAC, scalar loop
        depthwise_mac=4.5,
        fc_mac=3.5,
        window_op=2.0,
        element=5.0,
        softmax_element=80.0,
        **_CGEN_RUNTIME,
        source="derived: scalar VLDR/VFMA loops of the generated f32 kernels (Cortex-M4 FPU timings)",
    ),
}
# Float on TFLM + CMSIS-NN runs the reference kernels (CMSIS-NN has no float kernels).
COSTS[("tflm_cmsis_nn", "float32")] = COSTS[("tflm_reference", "float32")]


@dataclass(frozen=True)
class CoreSpec:
    """How a core's cycle counts relate to the Cortex-M4 reference."""

    scale: float  # × cycles of scalar code, from CoreMark/MHz (M4: 3.42)
    arm: bool  # CMSIS-NN exists for it
    cpi: float  # cycles per instruction, to turn cycles into instruction counts (QEMU icount)
    source: str


CORES: dict[str, CoreSpec] = {
    "cortex-m4": CoreSpec(1.0, True, 1.25, "3.42 CoreMark/MHz (ST STM32L4 datasheets); CPI: assumption"),
    "cortex-m7": CoreSpec(
        3.42 / 5.01, True, 0.8, "5.01 CoreMark/MHz (STM32F7: 1082 CoreMark at 216 MHz), dual issue"
    ),
    "cortex-m33": CoreSpec(3.42 / 4.02, True, 1.1, "4.02 CoreMark/MHz (Arm Cortex-M33 product page)"),
    "cortex-m0plus": CoreSpec(
        3.42 / 2.46, True, 1.3, "2.46 CoreMark/MHz (Arm Cortex-M0+); XIP flash cache misses not modelled"
    ),
    "xtensa-lx7": CoreSpec(3.42 / 2.56, False, 1.1, "≈ 2.56 CoreMark/MHz per core (Espressif ESP32-S3)"),
    "host": CoreSpec(
        0.06,
        False,
        0.5,
        "measured once: the PyPI tflite-micro build (reference kernels, x86-64) runs the course CNN in "
        "≈ 0.3 ms ≈ 10 cycles/MAC at 3 GHz, i.e. 0.06 × a Cortex-M4; see latency/host_tflm_measured_ms",
    ),
}

# Extra cycles per floating-point MAC / element on a core without FPU (library soft-float
# __aeabi_fmul + __aeabi_fadd on Cortex-M0+; the RP2040 boot-ROM routines are faster): assumption.
SOFT_FLOAT_MAC = 60.0
SOFT_FLOAT_ELEMENT = 30.0
# CMSIS-NN's pure-C path (no SMLAD) and the generated C without DSP: assumptions.
NO_DSP_FACTOR = {"tflm_cmsis_nn": 3.0, "cgen": 1.5, "tflm_reference": 1.0}


@dataclass(frozen=True)
class WorkItem:
    """The work of one layer as the cost model prices it."""

    op: str
    dtype: str  # "int8" or "float32" (cost class of the layer's activations)
    mac_class: str | None
    macs: int
    window_ops: int = 0
    elements: int = 0
    copy_bytes: int = 0
    outputs: int = 0  # output elements (every operator): the fitted cgen costs' per-output term
    # The generated C's kernel function that runs this operator: "" when it runs no code for it
    # (RESHAPE aliases), None when unknown (no generated C: priced by the prior constants).
    kernel: str | None = None
    calls: int = 0  # 1 on the first operator of each kernel call (a fused call runs several)
    step_label: str = ""  # the call's operators, "CONV_2D+MAX_POOL_2D" (its first: the fallback key)
    # Output elements requantized in double precision (emulated in integers by the generated C):
    # FULLY_CONNECTED when the generated C matches the TFLite interpreter (firmware.reference=tflite).
    double_outputs: int = 0
    # Output pixels × filter window (k_h·k_w) of a convolution: per-tap work (tap pointer tables,
    # im2col copies, padding tests) that a small channel count leaves uncovered by the MACs.
    taps: int = 0
    window: int = 0  # the convolution's filter window k_h·k_w (a kernel's fit is kept per window)


def cost_dtype(type_name: str) -> str:
    """TFLite tensor type -> cost table dtype (integer activations price as int8)."""
    return "float32" if type_name.startswith("FLOAT") else "int8"


def backend_available(backend: str, core: str) -> bool:
    spec = CORES.get(core)
    return spec is not None and (backend != "tflm_cmsis_nn" or spec.arm)


def _fitted_cycles(item: WorkItem, spec: CoreSpec, dsp: bool) -> float | None:
    """The generated C's fitted QEMU instructions (`cgen_costs`) as cycles of `spec`'s core:
    × the Cortex-M4 CPI (the counts are Cortex-M4 instructions) × the core's scale."""
    from tinyml_exp.profile.cgen_costs import active_costs, instructions

    count = instructions(item, active_costs())
    if count is None:
        return None
    factor = 1.0 if dsp or item.dtype != "int8" else NO_DSP_FACTOR["cgen"]
    return count * CORES["cortex-m4"].cpi * spec.scale * factor


def layer_cycles(item: WorkItem, backend: str, core: str, fpu: bool, dsp: bool) -> float:
    """Estimated cycles of one layer; raises KeyError for an unknown backend or core. The
    generated C's layers are priced by the fitted costs (`cgen_costs`) where they apply."""
    spec = CORES[core]
    if backend == "cgen" and (item.dtype != "float32" or fpu):
        fitted = _fitted_cycles(item, spec, dsp)
        if fitted is not None:
            return fitted
    table_backend = backend
    if backend == "tflm_cmsis_nn" and (item.dtype != "int8" or item.op not in CMSIS_NN_OPTIMIZED):
        table_backend = "tflm_reference"  # TFLM falls back to the reference kernel
    costs = COSTS[(table_backend, item.dtype)]
    per_mac = {"conv": costs.conv_mac, "depthwise": costs.depthwise_mac, "fc": costs.fc_mac}.get(
        item.mac_class or "", 0.0
    )
    if item.dtype == "int8" and not dsp:
        per_mac *= NO_DSP_FACTOR[table_backend]
    softmax = item.op in ("SOFTMAX", "LOG_SOFTMAX")
    per_element = costs.softmax_element if softmax else costs.element
    cycles = (
        item.macs * per_mac
        + item.window_ops * costs.window_op
        + item.elements * per_element
        + item.copy_bytes * costs.copy_byte
        + costs.op_overhead
    ) * spec.scale
    if item.dtype == "float32" and not fpu:
        cycles += item.macs * SOFT_FLOAT_MAC + (item.window_ops + item.elements) * SOFT_FLOAT_ELEMENT
    return cycles


def invoke_overhead(backend: str, dtype: str, core: str, fitted: bool = False) -> float:
    """Per-inference cycles; `fitted`: the generated C's fitted term (`cgen_costs`) where it has one."""
    if backend == "cgen" and fitted:
        from tinyml_exp.profile.cgen_costs import active_costs

        costs = active_costs()
        if costs is not None and dtype in costs.invoke:
            return costs.invoke[dtype] * CORES["cortex-m4"].cpi * CORES[core].scale
    return COSTS[(backend, dtype)].invoke_overhead * CORES[core].scale


def model_cycles(items: list[WorkItem], backend: str, core: str, fpu: bool, dsp: bool) -> list[float]:
    """Per-layer cycles; the per-inference overhead is added to the first layer."""
    if backend not in BACKENDS:
        raise KeyError(backend)
    cycles = [layer_cycles(item, backend, core, fpu, dsp) for item in items]
    if cycles:
        dtype = max((i.dtype for i in items), key=lambda d: sum(i.macs + 1 for i in items if i.dtype == d))
        fitted = any(i.kernel is not None for i in items)
        cycles[0] += invoke_overhead(backend, dtype, core, fitted)
    return cycles
