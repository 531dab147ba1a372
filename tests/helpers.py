"""Shared test helpers: composing the real config, running the app, and what a missing tool or data
set means (a skip with a reason that says why; under CI=true a failure)."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import pytest
from omegaconf import DictConfig

from tinyml_exp.config import compose, config_dir, option_names
from tinyml_exp.hardware.tools import missing_tools_reason

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = str(config_dir())


def compose_config(overrides: list[str] | None = None, with_hydra: bool = False) -> DictConfig:
    """The app's real config, composed by the function every face uses; with the `hydra` node
    (launcher, sweeper, ...) when `with_hydra`."""
    return compose(overrides, with_hydra=with_hydra)


def options(group: str) -> tuple[str, ...]:
    """The options of a config group: the YAML files in conf/<group>/."""
    return tuple(option_names(group))


def tiny_overrides(tmp_path: Path) -> list[str]:
    """A run that takes seconds: synthetic data, 1 epoch, store and cache under tmp_path."""
    return [
        "dataset=synthetic",
        "train.epochs=1",
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        f"cache.dir={tmp_path}/cache",
    ]


def qemu_benchmark_overrides(tmp_path: Path, uri: str) -> list[str]:
    """An int8 run benchmarked on the emulated board (store, cache and run dir under tmp_path); the
    slow TFLM and arena steps off: the device figures are what these runs check."""
    return [
        "compression=ptq_int8",
        "target=qemu_netduinoplus2",
        "benchmark.enabled=true",
        "evaluate.tflm=false",
        "profile.arena_probe=false",
        "profile.plot=false",
        f"tracking.uri={uri}",
        f"cache.dir={tmp_path}/cache",
        f"hydra.run.dir={tmp_path}/out",
    ]


def randomize_statistics(model: Any, rng: Any, keras: Any, *, biases: bool) -> None:
    """Random BatchNorm statistics (and, with `biases`, random non-zero biases) in place, so that
    folding and requantization see values an untrained model's ones and zeros would hide."""
    for layer in model.layers:
        weights = layer.get_weights()
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = weights
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.2, beta.shape),
                               rng.normal(0, 0.2, mean.shape), rng.uniform(0.5, 2.0, var.shape)])  # fmt: skip
        elif biases and len(weights) == 2:  # kernel + bias
            layer.set_weights([weights[0], rng.normal(0, 0.05, weights[1].shape)])


def trained_seed_cnn() -> tuple[Any, Any, DictConfig]:
    """(model, data, cfg): conf/'s seed CNN after one epoch on synthetic data (a few seconds)."""
    from tinyml_exp.data.synthetic import SyntheticDataset
    from tinyml_exp.models import build_model
    from tinyml_exp.models.train import compile_model, fit, set_global_seed

    cfg = compose_config(["dataset=synthetic"])
    data = SyntheticDataset(name="synthetic", class_names=list(cfg.dataset.class_names)).load(0)
    set_global_seed(0)
    model = build_model(cfg.architecture, data.input_shape, data.num_classes)
    compile_model(model, "adam", 1e-3, from_logits=True)
    fit(model, data, epochs=1, batch_size=32, verbose=0)
    return model, data, cfg


def app_command(*args: str) -> list[str]:
    """`python -m tinyml_exp ...` with this interpreter: the app exactly as a user starts it."""
    return [sys.executable, "-m", "tinyml_exp", *args]


def app_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This checkout first on the path; a PYTHONPATH the tests run with stays after it."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **(extra or {})}


def run_app(
    args: Sequence[str], cwd: Path, timeout: float = 600, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run the app in a subprocess (from `cwd`, output captured as text) and return the result."""
    return subprocess.run(
        app_command(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout, env=app_env(env_extra)
    )


def default_sigint() -> None:
    """`preexec_fn` for children a test interrupts: Ctrl-C must reach them even when the test runner
    was started with SIGINT ignored (background job of a shell), since Python only installs its
    KeyboardInterrupt handler over SIG_DFL."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _count(db: Path, query: str) -> int:
    """`query`'s count on the store, 0 while MLflow is still creating its tables (the file exists
    before its schema does: on a busy machine the poll can fall in between) or holds a write lock."""
    try:
        with sqlite3.connect(db) as con:
            return int(con.execute(query).fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def interrupt_when(
    proc: subprocess.Popen,
    db: Path,
    count_query: str,
    at_least: int,
    timeout_s: float,
    what: str,
    signum: int = signal.SIGINT,
) -> None:
    """Ctrl-C `proc` (or send it `signum`) once `count_query` on its MLflow store `db` counts
    `at_least` rows (fail with `what` if it never does within `timeout_s`), then wait for it to
    end; killed in any case."""
    try:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if db.exists() and _count(db, count_query) >= at_least:
                break
            time.sleep(0.3)
        else:
            pytest.fail(what)
        proc.send_signal(signum)
        proc.wait(60)
    finally:
        proc.kill()


@contextlib.contextmanager
def socat_pty(link: Path, port: int) -> Iterator[Path]:
    """A pty at `link` bridged by socat to 127.0.0.1:`port` (QEMU's UART): the emulated board as a
    tty, as a real board on USB appears."""
    bridge = subprocess.Popen(
        ["socat", f"pty,link={link},raw,echo=0", f"tcp:127.0.0.1:{port}"],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not link.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        yield link
    finally:
        bridge.terminate()
        bridge.wait(timeout=5)


def on_ci() -> bool:
    """CI=true (as GitHub Actions, GitLab and most CI services set it): the machine is set up by
    scripts/setup.sh, so anything the tests need and cannot find is a failure, not a skip."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def skip_or_fail(reason: str) -> NoReturn:
    """The one place that decides what a missing tool, emulator, data set or extra means: a skip
    with `reason` on a developer's machine, a failure naming it (and its package) under CI=true."""
    if on_ci():
        pytest.fail(f"CI=true and {reason} (scripts/setup.sh installs it)", pytrace=False)
    pytest.skip(reason)


def require_commands(*commands: str) -> pytest.MarkDecorator:
    """Mark: every command must be installed (see `missing_reason`), the Debian package named."""
    return pytest.mark.requires("tools", *commands)


def require_dataset(name: str) -> pytest.MarkDecorator:
    """Mark: the files of dataset `name` (conf/dataset/<name>.yaml) must be at its `path`."""
    return pytest.mark.requires("dataset", name)


def require_modules(*modules: str, extra: str) -> pytest.MarkDecorator:
    """Mark: Python modules that come with the project's optional `extra`."""
    return pytest.mark.requires("modules", extra, *modules)


@functools.cache
def missing_reason(kind: str, *names: str) -> str | None:
    """What a `requires` mark lacks on this machine (one line naming the fix), or None."""
    if kind == "tools":
        return missing_tools_reason(*names)
    if kind == "dataset":
        return _dataset_missing(names[0])
    if kind == "modules":
        extra, *modules = names
        absent = [m for m in modules if not _importable(m)]
        return f"needs {', '.join(absent)}: pip install -e '.[{extra}]'" if absent else None
    raise ValueError(f"unknown requirement kind {kind!r}")


def check_requirements(item: pytest.Item) -> None:
    """conftest's set-up hook: skip or fail (see `skip_or_fail`) a test whose `requires` marks are unmet."""
    for mark in item.iter_markers("requires"):
        reason = missing_reason(*mark.args)
        if reason is not None:
            skip_or_fail(reason)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _dataset_missing(name: str) -> str | None:
    dataset = compose_config([f"dataset={name}"]).dataset
    root = Path(dataset.path or "/nonexistent").expanduser()
    stems = (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    )
    absent = [s for s in stems if not (root / s).is_file() and not (root / f"{s}.gz").is_file()]
    if not absent:
        return None
    return f"needs dataset {name} at dataset.path={str(root)!r} ({absent[0]}[.gz] is missing): {dataset.package_hint}"
