"""The config: its schemas, where its YAML lives, and the one `compose(overrides)` every face uses.

Every option of a config group is one YAML file, `conf/<group>/<name>.yaml`, whose name is the
option's name, and one dataclass registered for that name (`tinyml_exp.registry.register_option`)
that is both the schema (typed fields, so a typo or a wrong type fails at compose time naming the
key) and the behaviour (its methods). The classes are found by importing every module of the
group's package (`Config`'s field says which package), and `store_schemas` stores, for each YAML
file, its class as `schema/<group>/<name>` with `name` set; `conf/config.yaml` puts that schema under
the chosen option (`/schema/<group>@<group>: ${<group>}`). The pipeline turns a composed group
node back into its class with `to_object`.

Option modules are imported here, so they must stay light: TensorFlow and MLflow are imported
inside methods, never at module level.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import MISSING, OmegaConf

from tinyml_exp.errors import ConfigError
from tinyml_exp.hardware.settings import BenchmarkConfig, FirmwareConfig
from tinyml_exp.registry import class_for, to_object
from tinyml_exp.resources import resource_dir

if TYPE_CHECKING:
    from omegaconf import DictConfig

__all__ = ["Config", "compose", "config_dir", "option_classes", "option_names", "store_schemas", "to_object"]


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
    tflite: bool = True  # batched where the model allows it, over the whole test split
    tflm: bool = True
    # TFLM runs one image at a time (≈ 1 ms each on the host): its accuracy, loss and agreement
    # are on the first tflm_samples test images (logged as evaluate/tflm_samples); null = all.
    tflm_samples: int | None = 1000


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
class RuntimeConfig:
    # TensorFlow/OpenMP/BLAS threads per run; null = the cores the launcher gives each worker
    # (usable cores // hydra.launcher.n_jobs for joblib, see tinyml_exp/runtime.py).
    threads: int | None = None


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
    # The config groups; "options": the package whose modules register the group's classes.
    dataset: Any = field(default=MISSING, metadata={"options": "tinyml_exp.data"})
    architecture: Any = field(default=MISSING, metadata={"options": "tinyml_exp.models"})
    compression: Any = field(default=MISSING, metadata={"options": "tinyml_exp.compress"})
    target: Any = field(default=MISSING, metadata={"options": "tinyml_exp.targets"})
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    firmware: FirmwareConfig = field(default_factory=FirmwareConfig)
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)


def option_packages() -> dict[str, str]:
    """{config group: the package whose modules register its options}."""
    return {f.name: f.metadata["options"] for f in fields(Config) if "options" in f.metadata}


def discover_options() -> None:
    """Import every module of every group's package, which runs their `register_option`."""
    for package in option_packages().values():
        module = importlib.import_module(package)
        for info in pkgutil.iter_modules(getattr(module, "__path__", []), prefix=f"{package}."):
            if not info.name.rsplit(".", 1)[-1].startswith("_"):
                importlib.import_module(info.name)


def config_dir() -> Path:
    """The config directory all faces and tests compose from (the package's, else the checkout's)."""
    return resource_dir("conf")


def option_names(group_name: str, conf: Path | None = None) -> list[str]:
    """The options of a group: the YAML files in `<conf>/<group>/`, by name."""
    return sorted(p.stem for p in ((conf or config_dir()) / group_name).glob("*.yaml"))


def option_classes(group_name: str, conf: Path | None = None) -> dict[str, type]:
    """{option name: its class} for every YAML file of the group; a file without a class fails."""
    discover_options()
    classes = {}
    for name in option_names(group_name, conf):
        cls = class_for(group_name, name)
        if cls is None:
            raise ConfigError(
                f"conf/{group_name}/{name}.yaml has no class: register one with "
                f'@register_option("{group_name}", "{name}") in a module of {option_packages()[group_name]}'
            )
        classes[name] = cls
    return classes


_STORED: list[Path] = []  # the conf directory whose schemas the ConfigStore holds


def store_schemas(conf: Path | None = None) -> None:
    """Register the base schema and one schema per option YAML in Hydra's ConfigStore (idempotent)."""
    conf = (conf or config_dir()).resolve()
    if [conf] == _STORED:
        return
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for group_name in option_packages():
        for name, cls in option_classes(group_name, conf).items():
            node = OmegaConf.structured(cls)
            node.name = name  # the option's name is its file's name, stated nowhere else
            cs.store(group=f"schema/{group_name}", name=name, node=node)
    _STORED[:] = [conf]


def compose(
    overrides: list[str] | None = None, conf: Path | None = None, with_hydra: bool = False
) -> DictConfig:
    """The config `tinyml-exp` would run with these overrides (with the `hydra` node when
    `with_hydra`): the one composition every face and test uses."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    conf = conf or config_dir()
    store_schemas(conf)
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        return hydra_compose(
            config_name="config", overrides=list(overrides or []), return_hydra_config=with_hydra
        )
