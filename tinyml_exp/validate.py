"""Every rule that spans config groups, checked once by `validate` before any work.

The option classes check their own values (`options.compression.validate()`); the keys that have
no option class (`train`, `export`, `profile`, `firmware`, `benchmark`) are checked here too. The
cross-group rules, each naming the keys it compares:

- compression × export: full-integer PTQ needs `export.representative_samples` > 0;
- compression × train × dataset: a method that lays a schedule over its fine-tuning steps
  (`min_fine_tune_steps`, e.g. prune_polynomial) gets enough of them (`fine_tune_steps_problem`,
  also called by the method itself once the data is loaded, for datasets of unknown size);
- profile × target: the profiled backend exists for `target.core`, which has a cost model;
- firmware × target, benchmark × firmware × target: a firmware port, a firmware, a serial port;
- evaluate × compression: TFLM runs none/int8 models only — a decision, not an error
  (`evaluation_backends`), made before any work so the run says so from the start.

Light on purpose: imported on the run path before any stage; heavy modules never.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from tinyml_exp.errors import ConfigError

if TYPE_CHECKING:
    from tinyml_exp.compress.base import CompressionMethod
    from tinyml_exp.export.tflite import TFLiteRecipe
    from tinyml_exp.options import Options
    from tinyml_exp.targets import Target

log = logging.getLogger(__name__)

EVALUATE_BACKENDS = ("tflite", "tflm")


def validate(cfg: DictConfig, options: Options) -> None:
    """Raise `ConfigError` (one line naming the keys and the fix) for a config that cannot work."""
    source = getattr(options, "model", None)
    trains = getattr(source, "trains", True)
    pretrained = getattr(options.architecture, "pretrained", False) or not trains
    _check_run_values(cfg, pretrained=pretrained)
    if not trains:
        _check_model_file(source, options.compression)
    options.compression.validate()
    _check_representative_samples(cfg, options.compression)
    _check_fine_tune_steps(cfg, options.compression)
    _check_task(options.architecture, options.compression)
    if cfg.profile.enabled:
        _check_profile(cfg.profile, options.target)
    _check_firmware(cfg.firmware, options.target)
    if cfg.benchmark.enabled:
        _check_benchmark(cfg, options.target)
    tflm_skipped = evaluation_backends(cfg.evaluate, options.compression.recipe()).tflm_skipped
    if tflm_skipped:
        log.info("evaluate.tflm=true, but %s: the TFLM evaluation is skipped", tflm_skipped)


def _positive(value: float | int | None, key: str, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if value is None or value <= 0:
        raise ConfigError(f"{key}={value!r} must be > 0")


def _check_run_values(cfg: DictConfig, pretrained: bool = False) -> None:
    if not (pretrained and cfg.train.epochs == 0):  # a model from a file may go untrained
        _positive(cfg.train.epochs, "train.epochs")
    _positive(cfg.train.batch_size, "train.batch_size")
    _positive(cfg.train.learning_rate, "train.learning_rate")
    _positive(cfg.dataset.train_limit, "dataset.train_limit", allow_none=True)
    _positive(cfg.dataset.test_limit, "dataset.test_limit", allow_none=True)
    _positive(cfg.evaluate.tflm_samples, "evaluate.tflm_samples", allow_none=True)
    _positive(cfg.runtime.threads, "runtime.threads", allow_none=True)
    if not 0.0 <= cfg.dataset.val_fraction < 1.0:
        raise ConfigError(f"dataset.val_fraction={cfg.dataset.val_fraction!r} must be in [0, 1)")
    if cfg.export.representative_samples < 0:
        raise ConfigError(f"export.representative_samples={cfg.export.representative_samples!r} must be ≥ 0")
    from tinyml_exp.config import WEIGHT_ENCODINGS

    if cfg.export.weights not in WEIGHT_ENCODINGS:
        raise ConfigError(
            f"export.weights={cfg.export.weights!r} is not one of {', '.join(WEIGHT_ENCODINGS)}"
        )


def _check_representative_samples(cfg: DictConfig, compression: CompressionMethod) -> None:
    if compression.quantize != "int8" or cfg.export.representative_samples > 0:
        return
    if not getattr(compression, "quantization_aware", False):
        raise ConfigError(
            "compression.quantize=int8 calibrates on representative samples; "
            "set export.representative_samples > 0 (100 is typical)"
        )


def _check_model_file(source: Any, compression: CompressionMethod) -> None:
    """model=tflite_file: the file reads as a `.tflite`, and no compression is asked of it."""
    if compression.name != "none":
        raise ConfigError(
            f"model={source.name} runs the .tflite as it is: compression={compression.name} cannot apply "
            "(drop the compression override, or start from model=keras)"
        )
    source.read()


# --- compression × train × dataset -----------------------------------------------------------


def known_train_samples(dataset: Any) -> int | None:
    """Training samples after `train_limit` and the validation split, when the config alone says
    how many (a limit, or a generated dataset's `num_train`); None when only the files know."""
    sizes = [n for n in (dataset.get("train_limit"), dataset.get("num_train")) if n is not None]
    if not sizes:
        return None
    total = min(sizes)
    return total - round(total * dataset.val_fraction)


def fine_tune_steps_problem(compression: Any, train_samples: int, batch_size: int) -> str | None:
    """Why `compression` cannot lay out its schedule over `compression.epochs` × the steps per epoch
    that `train_samples` and `train.batch_size` give, or None when it can."""
    needed = getattr(compression, "min_fine_tune_steps", 0)
    steps_per_epoch = -(-train_samples // batch_size)
    total = getattr(compression, "epochs", 0) * steps_per_epoch
    if not needed or total >= needed:
        return None
    return (
        f"compression={compression.name} needs ≥ {needed} fine-tuning steps for its schedule; "
        f"compression.epochs={compression.epochs} × {steps_per_epoch} step(s) per epoch "
        f"({train_samples} training samples, train.batch_size={batch_size}) gives {total} "
        "(raise compression.epochs or dataset.train_limit, or lower train.batch_size)"
    )


def _check_task(architecture: Any, compression: CompressionMethod) -> None:
    """Fine-tuning methods (QAT, pruning, clustering) train with the classifier's loss: a regression
    or autoencoder network takes post-training quantization only (for now)."""
    task = getattr(architecture, "task", "classification")
    if task != "classification" and callable(getattr(compression, "phases", None)):
        raise ConfigError(
            f"compression={compression.name} fine-tunes with a classification loss, but "
            f"architecture.task={task!r}; use compression=none, ptq_int8, ptq_dynamic or ptq_float16"
        )


def _check_fine_tune_steps(cfg: DictConfig, compression: CompressionMethod) -> None:
    samples = known_train_samples(cfg.dataset)
    if samples is None:
        return
    problem = fine_tune_steps_problem(compression, samples, cfg.train.batch_size)
    if problem:
        raise ConfigError(problem)


# --- profile × target --------------------------------------------------------------------------


def _check_profile(profile: Any, target: Target) -> None:
    from tinyml_exp.profile.costmodel import CORES, backend_available
    from tinyml_exp.profile.operators import BACKENDS

    if profile.backend not in BACKENDS:
        raise ConfigError(f"profile.backend={profile.backend!r} is not one of {', '.join(BACKENDS)}")
    if target.core not in CORES:
        raise ConfigError(
            f"target.core={target.core!r} (target {target.name}) has no cost model; expected one of {', '.join(CORES)}"
        )
    if not backend_available(profile.backend, target.core):
        raise ConfigError(
            f"profile.backend={profile.backend!r} does not exist for target.core={target.core!r}; "
            "use profile.backend=cgen or tflm_reference"
        )
    if target.count_unit not in ("cycles", "instructions"):
        raise ConfigError(f"target.count_unit={target.count_unit!r} must be 'cycles' or 'instructions'")
    if profile.probe_timeout_s <= 0:
        raise ConfigError(f"profile.probe_timeout_s={profile.probe_timeout_s!r} must be > 0")


# --- firmware × target, benchmark × firmware × target -------------------------------------------


def _check_firmware(firmware: Any, target: Target) -> None:
    from tinyml_exp.hardware.settings import REFERENCES

    if firmware.reference not in REFERENCES:
        raise ConfigError(f"firmware.reference={firmware.reference!r} is not one of {', '.join(REFERENCES)}")
    if firmware.jobs < 1:
        raise ConfigError(f"firmware.jobs={firmware.jobs!r} must be >= 1")
    if firmware.enabled is True and not target.firmware_board:
        raise ConfigError(
            f"firmware.enabled=true but target {target.name!r} has no firmware port (target.firmware_board "
            "is null); choose target=qemu_netduinoplus2 or target=b_l475e_iot01a"
        )


def _check_benchmark(cfg: DictConfig, target: Target) -> None:
    bench = cfg.benchmark
    if not target.firmware_board:
        raise ConfigError(
            f"benchmark.enabled=true needs a target with a firmware port; target {target.name!r} has none "
            "(target.firmware_board is null): use target=qemu_netduinoplus2 or target=b_l475e_iot01a"
        )
    if cfg.firmware.enabled is False:
        raise ConfigError(
            "benchmark.enabled=true runs the run's firmware: set firmware.enabled=true (or leave it null)"
        )
    if bench.port is None and not target.emulated:
        raise ConfigError(
            f"benchmark.port is not set for the real board {target.name!r}: give its serial port, "
            "e.g. benchmark.port=/dev/ttyACM0 (or a pyserial URL such as socket://host:port)"
        )
    for key, minimum in (
        ("samples", 1),
        ("warmup", 0),
        ("repeats", 1),
        ("retries", 0),
        ("baudrate", 1),
        ("clock_hz", 1),
    ):
        if bench[key] is not None and bench[key] < minimum:
            raise ConfigError(f"benchmark.{key}={bench[key]!r} must be >= {minimum}")
    for key in ("timeout_s", "connect_timeout_s"):
        if not bench[key] > 0:
            raise ConfigError(f"benchmark.{key}={bench[key]!r} must be > 0")


# --- evaluate × compression --------------------------------------------------------------------


@dataclass(frozen=True)
class EvaluationBackends:
    backends: tuple[str, ...]  # interpreters the evaluate stage runs, in this order
    tflm_skipped: str | None  # why TFLM is left out although evaluate.tflm=true (tag evaluate.tflm_skipped)


def evaluation_backends(evaluate: Any, recipe: TFLiteRecipe) -> EvaluationBackends:
    """Which interpreters evaluate the model: those `evaluate.*` asks for that can run it.
    Dynamic-range and float16 models have no TFLM kernels."""
    wanted = tuple(b for b in EVALUATE_BACKENDS if evaluate[b])
    if "tflm" in wanted and not recipe.runs_on_tflm:
        reason = f"TFLM has no kernels for quantize={recipe.quantize} models"
        return EvaluationBackends(tuple(b for b in wanted if b != "tflm"), reason)
    return EvaluationBackends(wanted, None)
