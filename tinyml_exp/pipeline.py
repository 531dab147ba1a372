"""One run, end to end: data → base model (trained or cached) → compress → export → evaluate.

Each stage is a plain function over the composed config; this module only sequences them and
logs what they return, so the whole recipe reads top to bottom in `run_experiment`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from tinyml_exp.compress import CompressionMethod, FineTuneSettings, enforce_invariants, parameter_counts
from tinyml_exp.config import to_object
from tinyml_exp.data import Dataset, DatasetSplits
from tinyml_exp.models import Architecture
from tinyml_exp.tracking import Tracker, config_fingerprint, flatten
from tinyml_exp.tracking.provenance import provenance_tags
from tinyml_exp.validate import validate

if TYPE_CHECKING:
    import tf_keras

    from tinyml_exp.export.tflite import TFLiteRecipe
    from tinyml_exp.hardware.target import Target

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
        yield
    except BaseException:
        tracker.set_tags({"stage_failed": name})
        raise
    seconds = time.perf_counter() - start
    summary.metrics[f"time/{name}_s"] = seconds
    tracker.log_metrics({f"time/{name}_s": seconds})


def run_experiment(cfg: DictConfig, out_dir: Path, overrides: list[str] | None = None) -> RunSummary:
    from tinyml_exp.export import export_artifacts
    from tinyml_exp.models.base_model import base_reference, obtain_base_model

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
        summary = RunSummary(run_id=tracker.run_id, out_dir=out_dir)
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
        from_logits = not options.architecture.softmax_output

        with stage("data", tracker, summary):
            data = options.dataset.load(cfg.seed)
            tracker.log_metrics({f"data/{k}_samples": v for k, v in data.sizes().items()})

        with stage("train", tracker, summary):
            base = obtain_base_model(cfg, data, options.architecture, [tracker.keras_callback("train")])
            tracker.set_tags(
                {"base_model.cache_key": base.cache_key, "base_model.from_cache": base.from_cache}
            )
            if base.from_cache:  # a fresh training logged its curves epoch by epoch
                tracker.log_history(base.history, "train")
            reference = base_reference(base, data, cfg, from_logits)
            tracker.log_metrics({f"base/{k}": v for k, v in reference.items()})

        with stage("compress", tracker, summary):
            settings = FineTuneSettings(
                optimizer=cfg.train.optimizer,
                batch_size=cfg.train.batch_size,
                from_logits=from_logits,
                verbose=cfg.train.verbose,
                seed=cfg.seed,
            )
            compressed = options.compression.apply(base.model, data, settings)
            tracker.log_metrics(compressed.metrics)
            tracker.set_tags(compressed.tags)
            enforce_invariants(tracker, compressed.checks)  # a lost invariant fails the run here

        with stage("export", tracker, summary):
            exported = export_artifacts(
                compressed.model, compressed.recipe, data, out_dir, _artifact_stem(options), cfg.export
            )
            for _kind, path in exported.paths.items():
                tracker.log_artifact(path, "model")
            summary.artifacts.update(exported.paths)
            size_metrics = exported.size_metrics(reference)
            verification = compressed.verify_tflite(exported.tflite)  # sparsity, clusters, tensor types
            size_metrics.update(verification.metrics)
            tracker.log_metrics(size_metrics)
            enforce_invariants(tracker, verification.checks)
            if cfg.evaluate.tflm and not compressed.recipe.runs_on_tflm:
                reason = f"TFLM has no kernels for quantize={compressed.recipe.quantize} models"
                tracker.set_tags({"evaluate.tflm_skipped": reason})

        with stage("preflight", tracker, summary):  # operator support, before anything runs the model
            from tinyml_exp.profile.stage import preflight

            preflight(exported.tflite, tracker, out_dir, _artifact_stem(options))

        with stage("evaluate", tracker, summary):
            evaluation = _evaluate(
                cfg, compressed.model, exported.tflite, data, from_logits, compressed.recipe
            )
            metrics = dict(evaluation.metrics)
            if "accuracy/keras" in metrics:
                metrics["accuracy/delta_vs_base"] = metrics["accuracy/keras"] - reference["accuracy_keras"]
            metrics.update(parameter_counts(compressed.model))
            tracker.log_metrics(metrics)

        if cfg.profile.enabled:
            with stage("profile", tracker, summary):
                from tinyml_exp.profile.stage import profile_stage

                stem = _artifact_stem(options)
                profiled = profile_stage(
                    cfg, options.target, exported.tflite, out_dir, stem, tracker, summary.metrics
                )
                summary.metrics.update(profiled.metrics)
                summary.tags.update(profiled.tags)

        from tinyml_exp.hardware.settings import firmware_wanted

        firmware = None
        if firmware_wanted(cfg.firmware, options.target):
            with stage("firmware", tracker, summary):  # generated C → ELF → arm-none-eabi-size
                from tinyml_exp.hardware.firmware_stage import firmware_stage

                firmware = firmware_stage(
                    cfg,
                    options.target,
                    exported.tflite,
                    out_dir,
                    _artifact_stem(options),
                    tracker,
                    summary.metrics,
                )
                summary.metrics.update(firmware.metrics)
                summary.tags.update(firmware.tags)

        if cfg.benchmark.enabled and firmware is not None:  # validate() makes the firmware required then
            with stage("benchmark", tracker, summary):  # QEMU or a real board, test set over serial
                from tinyml_exp.hardware.bench_stage import benchmark_stage

                measured = benchmark_stage(
                    cfg, options.target, exported.tflite, firmware, data, out_dir, tracker, summary.metrics
                )
                summary.metrics.update(measured.metrics)
                summary.tags.update(measured.tags)

        summary.metrics.update({**compressed.metrics, **size_metrics, **metrics})
        summary.tags.update(compressed.tags)
        log.info(
            "run %s: %s",
            tracker.run_id,
            ", ".join(
                f"{k}={v:.4g}"
                for k, v in sorted(summary.metrics.items())
                if k.startswith(("accuracy/", "size/"))
            ),
        )
        return summary


def _artifact_stem(options: Options) -> str:
    return f"{options.architecture.name}_{options.compression.name}"


def _evaluate(
    cfg: DictConfig,
    model: tf_keras.Model,
    tflite: bytes,
    data: DatasetSplits,
    from_logits: bool,
    recipe: TFLiteRecipe,
):
    from tinyml_exp.evaluate import evaluate

    # Dynamic-range and float16 models have no TFLM kernels (tag evaluate.tflm_skipped says so).
    backends = tuple(
        b for b in ("tflite", "tflm") if cfg.evaluate[b] and (b != "tflm" or recipe.runs_on_tflm)
    )
    return evaluate(model, tflite, data, from_logits, backends)
