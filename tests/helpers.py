"""Shared test helpers: composing the real config, and skipping with a reason that says why."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from omegaconf import DictConfig

from tinyml_exp.config import compose, config_dir, option_names

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


def app_command(*args: str) -> list[str]:
    """`python -m tinyml_exp ...` with this interpreter: the app exactly as a user starts it."""
    return [sys.executable, "-m", "tinyml_exp", *args]


def app_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), **(extra or {})}


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


def require_commands(*commands: str) -> pytest.MarkDecorator:
    """Skip unless every command is on PATH, naming the Debian package to install."""
    packages = {
        "arm-none-eabi-gcc": "gcc-arm-none-eabi",
        "qemu-system-arm": "qemu-system-arm",
        "socat": "socat",
        "gcc": "gcc",
    }
    missing = [c for c in commands if shutil.which(c) is None]
    reason = "needs " + ", ".join(f"{c} (apt-get install {packages.get(c, c)})" for c in missing)
    return pytest.mark.skipif(bool(missing), reason=reason)
