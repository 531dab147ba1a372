"""The config: its schemas, where its YAML lives, and the one `compose(overrides)` every face uses.

Every option of a config group is one YAML file, `conf/<group>/<name>.yaml`, whose name is the
option's name, and one dataclass registered for that name (`tinyml_exp.registry.register_option`)
that is both the schema (typed fields, so a typo or a wrong type fails at compose time naming the
key) and the behaviour (its methods). The classes are found by importing every module of the
group's package (`Config`'s field says which package), and `store_schemas` stores, for each YAML
file, its class as `schema/<group>/<name>` with `name` set; `conf/config.yaml` puts that schema under
the chosen option (`/schema/<group>@<group>: ${<group>}`). The pipeline turns a composed group
node back into its class with `to_object`.

A project's own config directory (`tinyml-exp --config-dir conf`, or `TINYML_EXP_CONFIG_DIR` for
every face) comes first on Hydra's search path, before the package's `conf/`: its YAML files add
options to the groups and a file of the same name shadows the package's. An option YAML without a
class of its own takes the class of the option its defaults list extends (`defaults: [seed_cnn]`
in `conf/architecture/my_net.yaml`), which also gives it that option's values to override.

Option modules are imported here, so they must stay light: TensorFlow and MLflow are imported
inside methods, never at module level.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import MISSING, OmegaConf

from tinyml_exp.errors import ConfigError
from tinyml_exp.hardware.settings import BenchmarkConfig, FirmwareConfig
from tinyml_exp.registry import class_for, registered_options, to_object
from tinyml_exp.resources import resource_dir

if TYPE_CHECKING:
    from omegaconf import DictConfig

__all__ = [
    "CONFIG_DIR_ENV",
    "Config",
    "compose",
    "config_dir",
    "option_classes",
    "option_names",
    "project_config_dir",
    "search_path",
    "store_schemas",
    "to_object",
]

# A project's own config directory, for every face (`tinyml-exp --config-dir DIR` sets it too).
CONFIG_DIR_ENV = "TINYML_EXP_CONFIG_DIR"

# One config directory, or several in search-path order (the first that has a file wins).
ConfDirs = Path | Sequence[Path] | None


@dataclass
class TrainConfig:
    epochs: int = MISSING
    batch_size: int = MISSING
    learning_rate: float = MISSING
    optimizer: str = MISSING  # adam | sgd | rmsprop
    # Keras progress output: 1 = progress bar, 2 = one line per epoch, "auto" = bar on a terminal.
    verbose: Any = "auto"


WEIGHT_ENCODINGS = ("dense", "sparse", "clustered", "smallest", "auto")  # export.weights


@dataclass
class ExportConfig:
    c_header: bool = True
    # Weight encoding of each layer in the generated C (firmware), FULLY_CONNECTED and CONV_2D:
    # dense | sparse (2:4, else a bitmask of the non-zeros) | clustered (<= 16 values per tensor or
    # channel; with zeros, PCQAT: 4-bit indices of the non-zeros only) | smallest (the smallest the
    # weights allow, even when slower) | auto (the smallest that the cost model finds no slower than
    # dense: int8 layers mostly stay dense, pruned float ones take the bitmask); a layer without the
    # pattern stays dense (tag firmware.encodings says why). See export/cgen/encodings.py.
    weights: str = "dense"
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
    # Register the run's model (the .tflite as an MLflow pyfunc) under this name in the model registry.
    register: str | None = None
    # Where to log when tracking.uri does not answer (e.g. sqlite:///mlflow.db); null = fail instead.
    fallback_uri: str | None = None


@dataclass
class CacheConfig:
    enabled: bool = True
    dir: str = ".cache/tinyml_exp"


DEFAULT_OBJECTIVES = {"accuracy/tflite": "maximize"}  # sweep.objectives: null


def sweep_objectives(sweep: Any) -> dict[str, str]:
    """`sweep.objectives` (metric -> direction, in order), or the default when it is null."""
    return dict(sweep.objectives or DEFAULT_OBJECTIVES)


@dataclass
class SweepConfig:
    # Skip a job whose identical config already has a FINISHED run in the experiment.
    resume: bool = False
    # Values a job returns to the sweeper, in order: metric name -> "maximize" | "minimize";
    # null: DEFAULT_OBJECTIVES. Null rather than a default dict, which an experiment's dict would be
    # merged into (keeping accuracy/tflite as an extra first objective) instead of replacing.
    objectives: dict[str, str] | None = None
    # A model that does not fit the target scores the worst value on every objective.
    require_fit: bool = False


@dataclass
class Config:
    seed: int = 0
    # true: TensorFlow's C++ log lines (CUDA probing, oneDNN notes, absl) and MLflow's INFO lines
    # reach the terminal; false hides them.
    verbose: bool = False
    # The config groups; "options": the package whose modules register the group's classes.
    dataset: Any = field(default=MISSING, metadata={"options": "tinyml_exp.data"})
    architecture: Any = field(default=MISSING, metadata={"options": "tinyml_exp.models"})
    compression: Any = field(default=MISSING, metadata={"options": "tinyml_exp.compress"})
    target: Any = field(default=MISSING, metadata={"options": "tinyml_exp.targets"})
    # Where the model comes from: keras (build, train, compress) | tflite_file (a finished .tflite).
    model: Any = field(default=MISSING, metadata={"options": "tinyml_exp.sources"})
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
    """The package's config directory (the installed package's, else the checkout's)."""
    return resource_dir("conf")


def project_config_dir() -> Path | None:
    """The user's project config directory named by TINYML_EXP_CONFIG_DIR, if any."""
    value = os.environ.get(CONFIG_DIR_ENV)
    if not value:
        return None
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        raise ConfigError(
            f"config directory {value} ({CONFIG_DIR_ENV} or --config-dir) is not a directory: "
            "give the path of your project's conf/"
        )
    return path


def search_path(conf: ConfDirs = None) -> list[Path]:
    """The config directories in Hydra's order, the first with a file winning: `conf` when given,
    else the project's (TINYML_EXP_CONFIG_DIR) then the package's."""
    if conf is None:
        project = project_config_dir()
        dirs = [*([project] if project else []), config_dir()]
    else:
        dirs = [Path(conf)] if isinstance(conf, str | Path) else [Path(c) for c in conf]
    for extra in dirs[:-1]:
        if (extra / "config.yaml").is_file():  # Hydra would take it for the package's, schemas and all
            raise ConfigError(
                f"{extra / 'config.yaml'} would replace tinyml_exp's own config: move its values to "
                f'{extra / "project" / "default.yaml"} (`# @package _global_`, README "Your own project")'
            )
    return dirs


def option_names(group_name: str, conf: ConfDirs = None) -> list[str]:
    """The options of a group: the YAML files in `<dir>/<group>/` of every config directory, by name."""
    return sorted({p.stem for d in search_path(conf) for p in (d / group_name).glob("*.yaml")})


def _option_file(group_name: str, name: str, dirs: list[Path]) -> Path | None:
    """The YAML file Hydra loads for the option: the first on the search path."""
    return next((f for d in dirs if (f := d / group_name / f"{name}.yaml").is_file()), None)


def _extends(group_name: str, path: Path, dirs: list[Path]) -> str | None:
    """The option of the same group the YAML's defaults list names first (`- seed_cnn`,
    `- /architecture/seed_cnn`), if any."""
    defaults = OmegaConf.load(path).get("defaults") if path.stat().st_size else None
    for entry in defaults or []:
        if isinstance(entry, str) and entry != "_self_":
            name = entry.removeprefix("/").removeprefix(f"{group_name}/")
            if _option_file(group_name, name, dirs) is not None:
                return name
    return None


def _option_class(group_name: str, name: str, dirs: list[Path], seen: tuple[str, ...] = ()) -> type | None:
    """The class registered for the name, else the class of the option it extends (recursively),
    else the one registered for a pattern that matches the name."""
    registered = registered_options(group_name)
    if name in registered:
        return registered[name]
    path = _option_file(group_name, name, dirs)
    base = _extends(group_name, path, dirs) if path is not None else None
    if base is not None and base not in (*seen, name):
        cls = _option_class(group_name, base, dirs, (*seen, name))
        if cls is not None:
            return cls
    return class_for(group_name, name)


def option_classes(group_name: str, conf: ConfDirs = None) -> dict[str, type]:
    """{option name: its class} for every YAML file of the group; a file without a class fails."""
    discover_options()
    dirs = search_path(conf)
    classes = {}
    for name in option_names(group_name, dirs):
        cls = _option_class(group_name, name, dirs)
        if cls is None:
            raise ConfigError(
                f"{_option_file(group_name, name, dirs)} has no class: register one with "
                f'@register_option("{group_name}", "{name}") in a module of {option_packages()[group_name]}, '
                f"or extend an option of the group in its defaults list (`defaults: [{_example(group_name)}]`)"
            )
        classes[name] = cls
    return classes


def _example(group_name: str) -> str:
    names = option_names(group_name, config_dir())
    return names[0] if names else "OPTION"


_STORED: list[tuple[Path, ...]] = []  # the search path whose schemas the ConfigStore holds


def store_schemas(conf: ConfDirs = None) -> None:
    """Register the base schema and one schema per option YAML in Hydra's ConfigStore (idempotent)."""
    dirs = tuple(d.resolve() for d in search_path(conf))
    if [dirs] == _STORED:
        return
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for group_name in option_packages():
        for name, cls in option_classes(group_name, list(dirs)).items():
            node = OmegaConf.structured(cls)
            node.name = name  # the option's name is its file's name, stated nowhere else
            cs.store(group=f"schema/{group_name}", name=name, node=node)
    _STORED[:] = [dirs]


@contextmanager
def _hydra_search_path(dirs: list[Path]) -> Iterator[None]:
    """Hydra initialised as `tinyml-exp --config-dir` initialises it: the last directory as the
    app's own, the others before it (`initialize_config_dir` takes only one directory)."""
    from hydra import initialize_config_dir
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.global_hydra import GlobalHydra

    with initialize_config_dir(config_dir=str(dirs[-1].resolve()), version_base="1.3"):
        if len(dirs) > 1:
            csp = create_config_search_path(str(dirs[-1].resolve()))
            for extra in reversed(dirs[:-1]):
                csp.prepend(provider="command-line", path=f"file://{extra.resolve()}")
            GlobalHydra.instance().clear()
            Hydra.create_main_hydra2(task_name="app", config_search_path=csp)
        yield


def compose(
    overrides: list[str] | None = None, conf: ConfDirs = None, with_hydra: bool = False
) -> DictConfig:
    """The config `tinyml-exp` would run with these overrides (with the `hydra` node when
    `with_hydra`): the one composition every face and test uses. `conf`: the config directories
    (default: the project's, if TINYML_EXP_CONFIG_DIR names one, then the package's)."""
    from hydra import compose as hydra_compose

    dirs = search_path(conf)
    store_schemas(dirs)
    with _hydra_search_path(dirs):
        return hydra_compose(
            config_name="config", overrides=list(overrides or []), return_hydra_config=with_hydra
        )
