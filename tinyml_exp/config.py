"""Structured-config schemas and their registration in Hydra's ConfigStore.

Every option of a config group is one dataclass that is both the schema (typed fields, so a typo
or a wrong type fails at compose time naming the key) and the behaviour (its methods). It is
registered under `schema/<group>/<name>`; `conf/<group>/<option>.yaml` extends it with
`defaults: [/schema/<group>/<name>@_here_, _self_]` and sets the values. The pipeline turns a
composed group node back into its class with `OmegaConf.to_object`.

Option modules are imported here, so they must stay light: TensorFlow and MLflow are imported
inside methods, never at module level.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from omegaconf import MISSING, DictConfig, OmegaConf

from tinyml_exp.hardware.settings import BenchmarkConfig, FirmwareConfig

T = TypeVar("T")

# Modules whose classes register config options; importing them runs the decorators.
OPTION_MODULES = (
    "tinyml_exp.data",
    "tinyml_exp.models",
    "tinyml_exp.compress",
    "tinyml_exp.hardware.target",
)

_OPTIONS: dict[tuple[str, str], type] = {}


def register_option(group: str, name: str) -> Callable[[type[T]], type[T]]:
    """Class decorator: make a dataclass the schema `schema/<group>/<name>`."""

    def decorator(cls: type[T]) -> type[T]:
        key = (group, name)
        if key in _OPTIONS and _OPTIONS[key] is not cls:
            raise ValueError(f"config option {group}/{name} registered twice")
        _OPTIONS[key] = cls
        return cls

    return decorator


def registered_options(group: str) -> dict[str, type]:
    return {name: cls for (g, name), cls in _OPTIONS.items() if g == group}


@dataclass
class TrainConfig:
    epochs: int = MISSING
    batch_size: int = MISSING
    learning_rate: float = MISSING
    optimizer: str = MISSING  # adam | sgd | rmsprop
    # Keras progress output: 1 = progress bar, 2 = one line per epoch, "auto" = bar on a terminal.
    verbose: Any = "auto"


@dataclass
class ExportConfig:
    c_header: bool = True
    # Representative samples for full-integer quantization (calibration of activation ranges).
    representative_samples: int = 100


@dataclass
class EvaluateConfig:
    tflite: bool = True
    tflm: bool = True


@dataclass
class ProfileConfig:
    enabled: bool = True
    # Backend whose figures feed cycles/estimate, flash/estimate_bytes and the fit verdict:
    # tflm_reference | tflm_cmsis_nn | cgen (the others are logged with a _<backend> suffix).
    backend: str = "cgen"
    arena_probe: bool = True  # smallest TFLM arena that runs, bisected in a child process
    probe_timeout_s: float = 60.0  # per child-process reply
    calibrate: bool = True  # scale estimates by measured points for the target (profile/calibration.py)
    calibration_file: str | None = None  # extra measured points (YAML list), see profile/calibration.py
    plot: bool = True


@dataclass
class TrackingConfig:
    # Relative sqlite paths resolve against the directory the user runs from.
    uri: str = "sqlite:///mlflow.db"
    experiment: str = "tinyml_exp"
    run_name: str | None = None


@dataclass
class CacheConfig:
    enabled: bool = True
    dir: str = ".cache/tinyml_exp"


@dataclass
class SweepConfig:
    # Skip a job whose identical config already has a FINISHED run in the experiment.
    resume: bool = False
    # Values a job returns to the sweeper, in order: metric name -> "maximize" | "minimize".
    objectives: dict[str, str] = field(default_factory=lambda: {"accuracy/tflite": "maximize"})
    # A model that does not fit the target scores the worst value on every objective.
    require_fit: bool = False


@dataclass
class Config:
    seed: int = 0
    dataset: Any = MISSING
    architecture: Any = MISSING
    compression: Any = MISSING
    target: Any = MISSING
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    firmware: FirmwareConfig = field(default_factory=FirmwareConfig)
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)


_STORED = False


def store_schemas() -> None:
    """Register every schema in Hydra's ConfigStore (idempotent)."""
    global _STORED
    if _STORED:
        return
    from hydra.core.config_store import ConfigStore

    for module in OPTION_MODULES:
        importlib.import_module(module)
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for (group, name), cls in _OPTIONS.items():
        cs.store(group=f"schema/{group}", name=name, node=cls)
    _STORED = True


def to_object(node: DictConfig) -> Any:
    """The option object (dataclass instance) for a composed group node."""
    return OmegaConf.to_object(node)
