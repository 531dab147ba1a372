"""The trained, uncompressed base model of a run: from the cache when it has it, else trained.

A sweep over compression methods shares one base model per (dataset, architecture, training,
seed): the sweep trains it before its jobs start (`prepare`, from `cli/sweep_plan.py`); the cache
lock still makes concurrent runs outside a sweep wait for the one that trains.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from tinyml_exp.models.cache import ModelCache, cache_key
from tinyml_exp.models.train import compile_model, fit, set_global_seed
from tinyml_exp.results import StageResult

if TYPE_CHECKING:
    import tf_keras

    from tinyml_exp.data.base import DatasetSplits
    from tinyml_exp.models.base import Architecture

log = logging.getLogger(__name__)


@dataclass
class BaseModel:
    model: tf_keras.Model
    cache_key: str
    from_cache: bool
    history: dict[str, list[float]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    cache: ModelCache | None = None


def base_model_key(cfg: DictConfig, architecture: Architecture | None = None) -> str:
    """Hash of everything that decides the trained weights (not how they are logged or where),
    including the digest of a user's file the architecture reads (`Architecture.fingerprint`)."""
    architecture_cfg = OmegaConf.to_container(cfg.architecture, resolve=True)
    if architecture_cfg.get("task") == "classification":  # the default: keys from before it stay
        del architecture_cfg["task"]
    payload = {
        "seed": cfg.seed,
        "dataset": OmegaConf.to_container(cfg.dataset, resolve=True),
        "architecture": architecture_cfg,
        "train": {k: v for k, v in OmegaConf.to_container(cfg.train, resolve=True).items() if k != "verbose"},
    }
    fingerprint = architecture.fingerprint() if architecture is not None else ""
    if fingerprint:  # only then: the keys of the built-in networks stay as they were
        payload["architecture_fingerprint"] = fingerprint
    return cache_key(payload)


def train_base_model(
    cfg: DictConfig, data: DatasetSplits, architecture: Architecture, callbacks: Sequence[Any] = ()
) -> tuple[Any, dict]:
    from tinyml_exp.tasks import task_of

    set_global_seed(cfg.seed)
    task = task_of(architecture)
    model = architecture.build(data.input_shape, data.num_classes)
    compile_model(model, cfg.train.optimizer, cfg.train.learning_rate, not architecture.softmax_output, task)
    result = fit(model, data, cfg.train.epochs, cfg.train.batch_size, cfg.train.verbose, callbacks, task)
    meta = {
        "history": result.history,
        "train_seconds": result.seconds,
        "steps_per_epoch": result.steps_per_epoch,
    }
    return model, meta


def obtain_base_model(
    cfg: DictConfig, data: DatasetSplits, architecture: Architecture, callbacks: Sequence[Any] = ()
) -> BaseModel:
    """`callbacks` go to Keras when the model is trained (not when it comes from the cache)."""
    key = base_model_key(cfg, architecture)
    if not cfg.cache.enabled:
        model, meta = train_base_model(cfg, data, architecture, callbacks)
        return BaseModel(model, key, False, meta["history"], meta)
    cache = ModelCache(cfg.cache.dir)
    with cache.lock(key):
        if cache.has(key):
            log.info("base model %s read from the cache (%s)", key, cache.entry(key))
            model, meta = cache.load(key)
            return BaseModel(model, key, True, meta.get("history", {}), meta, cache)
        model, meta = train_base_model(cfg, data, architecture, callbacks)
        cache.store(key, model, meta)
    return BaseModel(model, key, False, meta["history"], meta, cache)


def prepare(cfg: DictConfig) -> str:
    """Put the base model `cfg` (seed, dataset, architecture, train, cache) decides, with its
    reference figures, into the cache; its key. What a sweep does once before its jobs start."""
    architecture = OmegaConf.to_object(cfg.architecture)
    data = OmegaConf.to_object(cfg.dataset).load(cfg.seed)
    base = obtain_base_model(cfg, data, architecture)
    base_reference(base, data, cfg, not architecture.softmax_output)
    return base.cache_key


def base_reference(
    base: BaseModel, data: DatasetSplits, cfg: DictConfig, from_logits: bool, task: str = "classification"
) -> dict[str, float]:
    """Figures of the base model that compressed models are compared with: its test accuracy and
    the bytes of its `.h5` and float `.tflite`. Computed once per cache entry."""
    if "reference" in base.meta:
        return base.meta["reference"]
    from tinyml_exp.evaluate import evaluate
    from tinyml_exp.export.keras_files import save_keras_files
    from tinyml_exp.export.tflite import TFLiteRecipe, convert
    from tinyml_exp.sizes import file_sizes, gzip_bytes

    tflite = convert(base.model, TFLiteRecipe("none"))
    with tempfile.TemporaryDirectory() as tmp:
        h5_bytes, h5_gzip = file_sizes(save_keras_files(base.model, Path(tmp), "base")["h5"])
    if task == "classification":
        metrics = evaluate(base.model, tflite, data, from_logits, backends=()).metrics
        figures = {"accuracy_keras": metrics["accuracy/keras"], "loss_keras": metrics["loss/keras"]}
    else:
        from tinyml_exp.evaluate.regression import evaluate_regression

        figures = {"mse_keras": evaluate_regression(base.model, tflite, data, (), task).metrics["mse/keras"]}
    reference = {
        **figures,
        "h5_bytes": float(h5_bytes),
        "h5_gzip_bytes": float(h5_gzip),
        "tflite_bytes": float(len(tflite)),
        "tflite_gzip_bytes": float(gzip_bytes(tflite)),
    }
    base.meta["reference"] = reference
    if base.cache is not None:
        base.cache.update_meta(base.cache_key, {"reference": reference})
    return reference


@dataclass
class TrainResult(StageResult):
    """The base model and its reference figures (`base/*` metrics); `history` holds the per-epoch
    curves, which the pipeline logs as `train/*` steps when no callback logged them live."""

    base: BaseModel
    reference: dict[str, float]

    @property
    def history(self) -> dict[str, list[float]]:
        return self.base.history


def train(
    cfg: DictConfig,
    data: DatasetSplits,
    architecture: Architecture,
    from_logits: bool,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """The run's base model, from the cache or trained (with `callbacks`), and its figures."""
    base = obtain_base_model(cfg, data, architecture, callbacks)
    from tinyml_exp.tasks import task_of

    reference = base_reference(base, data, cfg, from_logits, task_of(architecture))
    return TrainResult(
        base,
        reference,
        metrics={f"base/{k}": v for k, v in reference.items()},
        tags={"base_model.cache_key": base.cache_key, "base_model.from_cache": str(base.from_cache)},
    )
