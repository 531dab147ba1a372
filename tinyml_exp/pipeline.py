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
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from tinyml_exp.compress import CompressionMethod, FineTuneSettings
from tinyml_exp.config import to_object
from tinyml_exp.data import Dataset, DatasetSplits
from tinyml_exp.models import Architecture
from tinyml_exp.tracking import Tracker, flatten
from tinyml_exp.tracking.provenance import provenance_tags
from tinyml_exp.validate import validate

if TYPE_CHECKING:
    import tf_keras

    from tinyml_exp.hardware.target import Target

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    run_id: str
    out_dir: Path
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)


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
    with Tracker(cfg.tracking.uri, cfg.tracking.experiment, run_name) as tracker:
        summary = RunSummary(run_id=tracker.run_id, out_dir=out_dir)
        tracker.set_tags(
            {
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
            )
            compressed = options.compression.apply(base.model, data, settings)
            tracker.log_metrics(compressed.metrics)
            tracker.set_tags(compressed.tags)

        with stage("export", tracker, summary):
            exported = export_artifacts(
                compressed.model, compressed.recipe, data, out_dir, _artifact_stem(options), cfg.export
            )
            for _kind, path in exported.paths.items():
                tracker.log_artifact(path, "model")
            summary.artifacts.update(exported.paths)
            size_metrics = exported.size_metrics(reference)
            tracker.log_metrics(size_metrics)

        with stage("evaluate", tracker, summary):
            evaluation = _evaluate(cfg, compressed.model, exported.tflite, data, from_logits)
            metrics = dict(evaluation.metrics)
            if "accuracy/keras" in metrics:
                metrics["accuracy/delta_vs_base"] = metrics["accuracy/keras"] - reference["accuracy_keras"]
            metrics.update(_param_counts(compressed.model))
            tracker.log_metrics(metrics)

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


def _evaluate(cfg: DictConfig, model: tf_keras.Model, tflite: bytes, data: DatasetSplits, from_logits: bool):
    from tinyml_exp.evaluate import evaluate

    backends = tuple(b for b in ("tflite", "tflm") if cfg.evaluate[b])
    return evaluate(model, tflite, data, from_logits, backends)


def _param_counts(model: tf_keras.Model) -> dict[str, Any]:
    import numpy as np

    weights = model.get_weights()
    return {
        "params/total": float(model.count_params()),
        "params/nonzero": float(sum(int(np.count_nonzero(w)) for w in weights)),
    }
