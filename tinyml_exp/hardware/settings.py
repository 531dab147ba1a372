"""The `firmware:` and `benchmark:` config keys (schemas; their set-up checks are in `tinyml_exp.validate`).

Per-target defaults: `benchmark.port`, `baudrate`, `flash` and `timeout_s` default to the target's
`target.benchmark.*` (see `tinyml_exp.targets.TargetBenchmark` and `conf/target/*.yaml`), so `target=b_l475e_iot01a`
knows its ST-LINK port and flash tool while `benchmark.port=...` still overrides either.

Kept free of heavy imports: `tinyml_exp.config` imports this module to build the schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tinyml_exp.targets import Target

REFERENCES = ("tflite", "tflm")


@dataclass
class FirmwareConfig:
    """`firmware:` — generate the model's C, build the benchmark firmware, log its size."""

    # null: build when the target has a firmware port (target.firmware_board) and the ARM toolchain
    # is installed, else tag the run firmware_skipped=<reason>; true: required (a missing toolchain
    # fails the run); false: never.
    enabled: bool | None = None
    # generate_c(reference=...): "tflite" is bit-exact with the TFLite interpreter's reference
    # kernels (what the benchmark compares against); "tflm" with TFLite Micro's.
    reference: str = "tflite"
    build_dir: str | None = None  # null: <run output dir>/firmware/build
    jobs: int = 2  # parallel make jobs
    # Also build the firmware with no model (firmware/tests/null_model): flash/firmware_app_bytes,
    # and flash/firmware_model_bytes = what the model and its code add (compared with the profile's
    # flash/estimate_bytes as error/flash_estimate_pct).
    measure_app: bool = True


@dataclass
class BenchmarkConfig:
    """`benchmark:` — run the firmware on the target and stream the test set through it."""

    enabled: bool = False
    port: Any = "${target.benchmark.port}"  # str | None; see TargetBenchmark.port
    baudrate: Any = "${target.benchmark.baudrate}"
    flash: Any = "${target.benchmark.flash}"  # str | None; null: do not flash
    timeout_s: Any = "${target.benchmark.timeout_s}"
    samples: int | None = None  # null: the whole test split
    warmup: int = 1  # inferences of the first sample before measuring (caches, branch predictors)
    repeats: int = 1  # inferences per sample; the sample's count is their median
    retries: int = 3  # per sample, after a timeout, a corrupted reply, a device reset or a lost link
    connect_timeout_s: float = 20.0  # first answer after the port opens (or QEMU starts)
    # Clock for latency/ms and throughput/fps from the counts; null: target.clock_hz. On QEMU the
    # count is instructions, so latency is instructions / clock_hz (tag latency.basis says so).
    clock_hz: int | None = None
    progress: bool = True  # progress bar while streaming (only on a terminal)
    # Also time every kernel call: the model's C is built again with -DTME_PROFILE_LAYERS (the
    # counts above stay the default build's) and a few samples report per-layer counts
    # (metrics layer/<index>_<op>/<unit>, a table and a plot; tinyml_exp/hardware/layers.py).
    layers: bool = False
    # Cortex-M4 cycles, not only instructions: the cycle model (export/cgen/cycle_model.py, the
    # `cycles` extra) runs one sample of the same generated C with the target's flash wait states
    # (metrics cycles/modelled*); skipped with a tag where unicorn / capstone are missing.
    cycle_model: bool = True


def firmware_wanted(firmware: Any, target: Target) -> bool:
    """Whether the run tries to build firmware (see FirmwareConfig.enabled)."""
    if firmware.enabled is False:
        return False
    return bool(target.firmware_board) or firmware.enabled is True
