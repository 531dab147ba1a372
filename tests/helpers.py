"""Shared test helpers: composing the real config, and skipping with a reason that says why."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from tinyml_exp.config import store_schemas

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "conf")


def compose_config(overrides: list[str] | None = None) -> DictConfig:
    """The app's real config (conf/ + schemas), composed as the CLI would compose it."""
    store_schemas()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=overrides or [])


def tiny_overrides(tmp_path: Path) -> list[str]:
    """A run that takes seconds: synthetic data, 1 epoch, store and cache under tmp_path."""
    return [
        "dataset=synthetic",
        "train.epochs=1",
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        f"cache.dir={tmp_path}/cache",
    ]


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
