"""`profile_model`: everything the profiler knows about a `.tflite` on a target, without a board.

Figures and their kind (also logged as the `profile.figure_kinds` tag):
- computed exactly from the graph: `macs/total`, `params/tflite_total`, `ram/formula_bytes`,
  `flash/model_bytes`, the per-layer table;
- measured on this host by the real tflite-micro interpreter: `ram/tflm_arena_bytes`,
  `ram/tflm_arena_min_bytes` (+ head/tail), `latency/host_tflm_measured_ms`;
- planned by the C generator: `ram/cgen_activation_bytes`;
- estimated (the name says so): `flash/estimate*`, `cycles/estimate*` (`cycles/prior_*` before
  calibration), `latency/estimate*`, `throughput/estimate*`, `energy/estimate*`,
  `ram/estimate_bytes` (the chosen backend's RAM need: TFLM arena minimum, or the C buffer).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING

from tinyml_exp.profile import cgen_costs
from tinyml_exp.profile.calibration import BUILTIN_POINTS, CalibrationPoint, Scale, fit_scales
from tinyml_exp.profile.costmodel import CORES, WorkItem, backend_available, cost_dtype, model_cycles
from tinyml_exp.profile.footprint import CGenFootprint, FlashEstimate, estimate_flash
from tinyml_exp.profile.layers import LayerProfile, analyze_layers, formula_peak, model_dtype
from tinyml_exp.profile.memory import ArenaReport, measure_arena
from tinyml_exp.profile.operators import BACKENDS, OperatorCheck, check_operators
from tinyml_exp.profile.result import BackendEstimate, ProfileResult
from tinyml_exp.profile.verdict import Verdict, decide
from tinyml_exp.tflite_graph import read_graph

if TYPE_CHECKING:
    from tinyml_exp.targets import Target

log = logging.getLogger(__name__)


def _double_outputs(layer: LayerProfile, cgen: CGenFootprint | None) -> int:
    """Outputs the generated C requantizes in double precision: TFLite's reference FULLY_CONNECTED
    rounds in double, so the C matching it does too (export/cgen/ops_int8.py, lower_fc)."""
    if cgen is None or cgen.reference != "tflite" or layer.op != "FULLY_CONNECTED" or layer.dtype != "INT8":
        return 0
    return sum(math.prod(shape) for shape in layer.output_shapes)


def _taps(layer: LayerProfile) -> int:
    """Output pixels × filter window of a convolution: MACs ÷ channels (input × output channels
    for CONV_2D, the output channels for DEPTHWISE_CONV_2D)."""
    if layer.op not in ("CONV_2D", "DEPTHWISE_CONV_2D") or not layer.input_shapes or not layer.output_shapes:
        return 0
    channels = layer.output_shapes[0][-1] * (layer.input_shapes[0][-1] if layer.op == "CONV_2D" else 1)
    return layer.macs // channels if channels else 0


def _window(layer: LayerProfile) -> int:
    """k_h·k_w of a convolution: its taps ÷ output pixels."""
    taps = _taps(layer)
    shape = layer.output_shapes[0] if layer.output_shapes else ()
    return taps // (shape[1] * shape[2]) if taps and len(shape) == 4 and shape[1] * shape[2] else 0


def work_items(layers: list[LayerProfile], cgen: CGenFootprint | None = None) -> list[WorkItem]:
    """The cost model's work per layer; with the generator's footprint, each layer also names the
    kernel that runs it ("" for none) and the first layer of each call carries the call."""
    kernel_of: dict[int, tuple[str, int, str]] = {}
    for kernel, label, ops in zip(cgen.kernels, cgen.step_labels, cgen.step_ops, strict=True) if cgen else ():
        kernel_of.update({op: (kernel, int(i == 0), label) for i, op in enumerate(ops)})
    known = cgen is not None and bool(cgen.step_ops)
    none = ("", 0, "")
    return [
        WorkItem(
            op=layer.op,
            dtype=cost_dtype(layer.dtype),
            mac_class=layer.mac_class,
            macs=layer.macs,
            window_ops=layer.window_ops,
            elements=layer.elements,
            copy_bytes=layer.copy_bytes,
            outputs=sum(math.prod(shape) for shape in layer.output_shapes),
            kernel=kernel_of.get(layer.index, none)[0] if known else None,
            calls=kernel_of.get(layer.index, none)[1],
            step_label=kernel_of.get(layer.index, none)[2],
            double_outputs=_double_outputs(layer, cgen),
            taps=_taps(layer),
            window=_window(layer),
        )
        for layer in layers
    ]


def calibration_point(
    result: ProfileResult, measured: float, source: str, backend: str | None = None
) -> CalibrationPoint:
    """A calibration point from a profile and the count measured for it on `result.target`
    (cycles, or instructions on a QEMU target), for `backend` (default `result.backend`)."""
    work = work_items(result.layers, result.flash.cgen)
    return CalibrationPoint(
        target=result.target.name,
        backend=backend or result.backend,
        dtype=cost_dtype(result.dtype),
        work=tuple(work),
        measured=float(measured),
        source=source,
    )


def _estimates(
    layers: list[LayerProfile],
    target: Target,
    scales: dict[tuple[str, str], Scale],
    cgen: CGenFootprint | None,
) -> dict[str, BackendEstimate]:
    core = CORES[target.core]
    # QEMU counts instructions: divide cycles by the core's CPI so estimate and count compare.
    per_count = core.cpi if target.count_unit == "instructions" else 1.0
    work, dtype = work_items(layers, cgen), cost_dtype(model_dtype(layers))
    estimates = {}
    for backend in BACKENDS:
        if not backend_available(backend, target.core):
            estimates[backend] = BackendEstimate(None, None)
            continue
        cycles = [c / per_count for c in model_cycles(work, backend, target.core, target.fpu, target.dsp)]
        scale = scales.get((backend, dtype))
        prior = sum(cycles)
        if scale is not None:
            cycles = [c * scale.factor for c in cycles]
        basis = cgen_costs.basis(work, cgen_costs.active_costs()) if backend == "cgen" else None
        estimates[backend] = BackendEstimate(cycles, prior, scale, basis)
    return estimates


def _ram_need(backend: str, arena: ArenaReport | None, flash: FlashEstimate) -> int | None:
    if backend == "cgen":
        return flash.cgen.activation_bytes if flash.cgen is not None else None
    if arena is None or not arena.ok:
        return None
    return arena.min_bytes or arena.total_bytes


def _runtime_error(
    backend: str, unsupported: tuple[str, ...], arena: ArenaReport | None, flash: FlashEstimate
) -> str:
    """Why the backend cannot run a model whose operators it does list (types, options, ...)."""
    if unsupported:
        return ""  # the verdict names the operators
    if backend == "cgen":
        return flash.cgen_error if flash.cgen is None else ""
    return arena.error if arena is not None and not arena.ok else ""


def _scales(
    target: Target, calibration: list[CalibrationPoint] | None, calibrate: bool
) -> dict[tuple[str, str], Scale]:
    cpi = CORES[target.core].cpi if target.count_unit == "instructions" else 1.0
    points = [*BUILTIN_POINTS, *(calibration or [])] if calibrate else []
    return fit_scales(points, target.name, target.core, target.fpu, target.dsp, cpi)


def _verdict(
    target: Target, backend: str, operators: OperatorCheck, arena: ArenaReport | None, flash: FlashEstimate
) -> Verdict:
    unsupported = operators.unsupported.get(backend, ())
    ram_need = _ram_need(backend, arena, flash)
    error = _runtime_error(backend, unsupported, arena, flash)
    return decide(target, backend, ram_need, flash.per_backend.get(backend), unsupported, error)


def _check_arguments(backend: str, target: Target) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"profile.backend={backend!r}; expected one of {', '.join(BACKENDS)}")
    if target.core not in CORES:
        raise ValueError(f"target.core={target.core!r} has no cost model; expected one of {', '.join(CORES)}")


def profile_model(
    tflite: bytes | str | Path,
    target: Target,
    *,
    backend: str = "cgen",
    name: str | None = None,
    arena: bool = True,
    arena_probe: bool = True,
    probe_timeout_s: float = 60.0,
    calibration: list[CalibrationPoint] | None = None,
    calibrate: bool = True,
    cache_dir: Path | None = None,
    reference: str = "tflm",
) -> ProfileResult:
    """Profile `tflite` (bytes or a path) for `target`.

    `backend` picks the figures behind `cycles/estimate`, `flash/estimate_bytes`,
    `ram/estimate_bytes` and the verdict. `arena` runs the TFLM interpreter (child process);
    `arena_probe` also bisects the smallest arena. `calibration` adds measured points to the
    built-in ones (`calibrate=False` ignores all). `reference` is the interpreter the generated C is
    to match (`generate_c`; the firmware's `firmware.reference`): its kernels differ. Never raises because a model does not fit or a
    backend cannot run it; raises `ValueError` for an unknown backend / core and
    `TFLiteGraphError` for a file that is not a model.
    """
    _check_arguments(backend, target)
    if isinstance(tflite, (str, Path)):
        name, tflite = name or Path(tflite).name, Path(tflite).read_bytes()
    graph = read_graph(tflite)
    layers = analyze_layers(graph)
    operators = check_operators(graph)
    report = None
    if arena:
        report = measure_arena(tflite, probe=arena_probe, timeout_s=probe_timeout_s, cache_dir=cache_dir)
    flash = estimate_flash(tflite, [n for n, _ in graph.opcodes], reference=reference)
    profile = ProfileResult(
        name=name or "model.tflite",
        target=target,
        backend=backend,
        dtype=model_dtype(layers),
        model_bytes=len(tflite),
        layers=layers,
        estimates=_estimates(layers, target, _scales(target, calibration, calibrate), flash.cgen),
        arena=report,
        flash=flash,
        operators=operators,
        verdict=_verdict(target, backend, operators, report, flash),
    )
    return _with_figures(profile)


def _with_figures(result: ProfileResult) -> ProfileResult:
    """Fill the metrics and tags MLflow gets (profile/report.py) and log the headline."""
    from tinyml_exp.profile.report import result_metrics, result_tags

    result.metrics = result_metrics(result)
    result.tags = result_tags(result)
    log.info(
        "profile %s on %s: %d MACs, formula %d B, fits=%s (%s)",
        result.name,
        result.target.name,
        result.metrics["macs/total"],
        formula_peak(result.layers)[0],
        result.verdict.fits,
        result.verdict.reason,
    )
    return result
