"""One run, end to end: data → base model (trained or cached) → compress → export → preflight →
evaluate → profile → firmware → benchmark.

Each stage is a small function over the run's shared state; `STAGES` is the recipe, read top to
bottom, and `run_experiment` runs it inside one MLflow run, timing each stage and tagging the one
that fails.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from tinyml_exp import interrupt
from tinyml_exp.compress import CompressionMethod, FineTuneSettings, enforce_invariants, parameter_counts
from tinyml_exp.config import to_object
from tinyml_exp.data import Dataset, DatasetSplits
from tinyml_exp.models import Architecture
from tinyml_exp.tracking import Tracker, config_fingerprint, flatten
from tinyml_exp.tracking.provenance import provenance_tags
from tinyml_exp.validate import validate

if TYPE_CHECKING:
    from tinyml_exp.targets import Target

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    run_id: str
    out_dir: Path
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)
    skipped: bool = False  # sweep.resume found the same config already FINISHED


@dataclass
class Options:
    """The group options of a run, as their classes."""

    dataset: Dataset
    architecture: Architecture
    compression: CompressionMethod
    target: Target

    @classmethod
    def from_config(cls, cfg: DictConfig) -> Options:
        return cls(*(to_object(cfg[group]) for group in ("dataset", "architecture", "compression", "target")))


@contextmanager
def stage(name: str, tracker: Tracker, summary: RunSummary) -> Iterator[None]:
    """Time a stage; when it raises, tag the run with the stage's name before the error goes on."""
    start = time.perf_counter()
    log.info("stage %s", name)
    try:
        interrupt.check()
        yield
        interrupt.check()
    except BaseException:
        tracker.set_tags({"stage_failed": name})
        raise
    seconds = time.perf_counter() - start
    summary.metrics[f"time/{name}_s"] = seconds
    tracker.log_metrics({f"time/{name}_s": seconds})


@dataclass
class RunState:
    """What one run's stages share: the config, the group options, the tracker, and each stage's
    result once it has run (None before)."""

    cfg: DictConfig
    options: Options
    tracker: Tracker
    summary: RunSummary
    out_dir: Path
    data: DatasetSplits | None = None
    base: Any = None
    reference: dict[str, float] = field(default_factory=dict)
    compressed: Any = None
    exported: Any = None
    firmware: Any = None

    @property
    def stem(self) -> str:
        """File-name stem of the run's artifacts, e.g. `seed_cnn_ptq_int8`."""
        return f"{self.options.architecture.name}_{self.options.compression.name}"

    @property
    def from_logits(self) -> bool:
        return not self.options.architecture.softmax_output

    def log_metrics(self, metrics: dict[str, float]) -> None:
        self.tracker.log_metrics(metrics)
        self.summary.metrics.update(metrics)

    def set_tags(self, tags: dict[str, str]) -> None:
        self.tracker.set_tags(tags)
        self.summary.tags.update({k: str(v) for k, v in tags.items()})


def _load_data(run: RunState) -> None:
    run.data = run.options.dataset.load(run.cfg.seed)
    run.log_metrics({f"data/{k}_samples": v for k, v in run.data.sizes().items()})


def _train(run: RunState) -> None:
    from tinyml_exp.models.base_model import base_reference, obtain_base_model

    run.base = obtain_base_model(
        run.cfg, run.data, run.options.architecture, [run.tracker.keras_callback("train")]
    )
    run.set_tags({"base_model.cache_key": run.base.cache_key, "base_model.from_cache": run.base.from_cache})
    if run.base.from_cache:  # a fresh training logged its curves epoch by epoch
        run.tracker.log_history(run.base.history, "train")
    run.reference = base_reference(run.base, run.data, run.cfg, run.from_logits)
    run.tracker.log_metrics({f"base/{k}": v for k, v in run.reference.items()})


def _compress(run: RunState) -> None:
    train = run.cfg.train
    settings = FineTuneSettings(
        train.optimizer, train.batch_size, run.from_logits, train.verbose, run.cfg.seed
    )
    run.compressed = run.options.compression.apply(run.base.model, run.data, settings)
    run.log_metrics(run.compressed.metrics)
    run.set_tags(run.compressed.tags)
    enforce_invariants(run.tracker, run.compressed.checks)  # a lost invariant fails the run here


def _export(run: RunState) -> None:
    from tinyml_exp.export import export_artifacts

    compressed = run.compressed
    run.exported = export_artifacts(
        compressed.model, compressed.recipe, run.data, run.out_dir, run.stem, run.cfg.export
    )
    for path in run.exported.paths.values():
        run.tracker.log_artifact(path, "model")
    run.summary.artifacts.update(run.exported.paths)
    verification = compressed.verify_tflite(run.exported.tflite)  # sparsity, clusters, tensor types
    run.log_metrics({**run.exported.size_metrics(run.reference), **verification.metrics})
    enforce_invariants(run.tracker, verification.checks)
    if run.cfg.evaluate.tflm and not compressed.recipe.runs_on_tflm:
        run.set_tags(
            {"evaluate.tflm_skipped": f"TFLM has no kernels for quantize={compressed.recipe.quantize} models"}
        )


def _preflight(run: RunState) -> None:
    """Operator support per backend, before anything runs the model."""
    from tinyml_exp.profile.stage import preflight

    preflight(run.exported.tflite, run.tracker, run.out_dir, run.stem)


def _evaluate(run: RunState) -> None:
    from tinyml_exp.evaluate import evaluate

    recipe = run.compressed.recipe
    # Dynamic-range and float16 models have no TFLM kernels (tag evaluate.tflm_skipped says so).
    backends = tuple(
        b for b in ("tflite", "tflm") if run.cfg.evaluate[b] and (b != "tflm" or recipe.runs_on_tflm)
    )
    metrics = dict(
        evaluate(run.compressed.model, run.exported.tflite, run.data, run.from_logits, backends).metrics
    )
    if "accuracy/keras" in metrics:
        metrics["accuracy/delta_vs_base"] = metrics["accuracy/keras"] - run.reference["accuracy_keras"]
    metrics.update(parameter_counts(run.compressed.model))
    run.log_metrics(metrics)


def _absorb(run: RunState, result: Any) -> Any:
    """Stages that log for themselves return their metrics and tags for the run summary."""
    run.summary.metrics.update(result.metrics)
    run.summary.tags.update(result.tags)
    return result


def _profile(run: RunState) -> None:
    from tinyml_exp.profile.stage import profile_stage

    _absorb(
        run,
        profile_stage(
            run.cfg,
            run.options.target,
            run.exported.tflite,
            run.out_dir,
            run.stem,
            run.tracker,
            run.summary.metrics,
        ),
    )


def _build_firmware(run: RunState) -> None:
    """Generated C → ELF → arm-none-eabi-size."""
    from tinyml_exp.hardware.firmware_stage import firmware_stage

    run.firmware = _absorb(
        run,
        firmware_stage(
            run.cfg,
            run.options.target,
            run.exported.tflite,
            run.out_dir,
            run.stem,
            run.tracker,
            run.summary.metrics,
        ),
    )


def _benchmark(run: RunState) -> None:
    """QEMU or a real board: the test set over the serial link."""
    from tinyml_exp.hardware.bench_stage import benchmark_stage

    _absorb(
        run,
        benchmark_stage(
            run.cfg,
            run.options.target,
            run.exported.tflite,
            run.firmware,
            run.data,
            run.out_dir,
            run.tracker,
            run.summary.metrics,
        ),
    )


def _firmware_wanted(run: RunState) -> bool:
    from tinyml_exp.hardware.settings import firmware_wanted

    return firmware_wanted(run.cfg.firmware, run.options.target)


def _always(run: RunState) -> bool:
    return True


# The recipe: (stage name, what it does, whether this run wants it). A new stage is one function
# and one line here.
STAGES: tuple[tuple[str, Callable[[RunState], None], Callable[[RunState], bool]], ...] = (
    ("data", _load_data, _always),
    ("train", _train, _always),
    ("compress", _compress, _always),
    ("export", _export, _always),
    ("preflight", _preflight, _always),
    ("evaluate", _evaluate, _always),
    ("profile", _profile, lambda run: run.cfg.profile.enabled),
    ("firmware", _build_firmware, _firmware_wanted),
    # validate() makes the firmware required when the benchmark is enabled
    ("benchmark", _benchmark, lambda run: run.cfg.benchmark.enabled and run.firmware is not None),
)


def run_experiment(cfg: DictConfig, out_dir: Path, overrides: list[str] | None = None) -> RunSummary:
    options = Options.from_config(cfg)
    validate(cfg, options)
    out_dir.mkdir(parents=True, exist_ok=True)
    run_name = cfg.tracking.run_name or "-".join(
        [options.architecture.name, options.compression.name, options.dataset.name, options.target.name]
    )
    tracker = Tracker(cfg.tracking.uri, cfg.tracking.experiment, run_name)
    fingerprint = config_fingerprint(cfg)
    if cfg.sweep.resume and (finished := tracker.find_finished({"config_hash": fingerprint})):
        run_id = finished.info.run_id
        log.info("sweep.resume: skipping, this config already FINISHED as run %s", run_id)
        tracker.mark_reused(run_id)
        return RunSummary(
            run_id, out_dir, dict(finished.data.metrics), dict(finished.data.tags), skipped=True
        )
    with tracker:
        run = RunState(cfg, options, tracker, RunSummary(run_id=tracker.run_id, out_dir=out_dir), out_dir)
        tracker.set_tags(
            {
                "config_hash": fingerprint,
                "dataset": options.dataset.name,
                "architecture": options.architecture.name,
                "compression": options.compression.name,
                "target": options.target.name,
                **provenance_tags(overrides),
            }
        )
        tracker.log_params(flatten(cfg))
        tracker.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
        for name, step, wanted in STAGES:
            if wanted(run):
                with stage(name, tracker, run.summary):
                    step(run)
        headline = sorted(
            (k, v) for k, v in run.summary.metrics.items() if k.startswith(("accuracy/", "size/"))
        )
        log.info("run %s: %s", tracker.run_id, ", ".join(f"{k}={v:.4g}" for k, v in headline))
        return run.summary
