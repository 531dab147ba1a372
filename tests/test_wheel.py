"""The package ships whole: a wheel built from the checkout, installed (not editable) into a fresh
venv, runs an experiment from an empty directory, firmware stage included, with conf/ and
firmware/ read from the installed package."""

from __future__ import annotations

import os
import shutil
import site
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO, require_commands

# What a wheel is built from (the rest of the checkout is tests, benchmarks and scripts).
SOURCES = (
    "tinyml_exp",
    "hydra_plugins",
    "conf",
    "firmware",
    "setup.py",
    "setup.cfg",
    "pyproject.toml",
    "MANIFEST.in",
    "README.md",
)
JUNK = shutil.ignore_patterns("__pycache__", "build", "*.egg-info")


def build_wheel(out: Path) -> Path:
    """Build from a copy of the sources, so the checkout gets no build/ or egg-info."""
    src = out / "src"
    for name in SOURCES:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, src / name, **({"ignore": JUNK} if (REPO / name).is_dir() else {}))
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out)]
    subprocess.run([*pip, str(src)], check=True, capture_output=True, text=True, timeout=300)
    (wheel,) = out.glob("tinyml_exp-*.whl")
    return wheel


def fresh_venv(where: Path) -> Path:
    """A venv that sees this venv's packages (a .pth line, so this venv's own .pth files, such as
    an editable install of tinyml_exp, stay inactive) but has no tinyml_exp of its own."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    (purelib,) = where.glob("lib/python*/site-packages")
    (purelib / "_reuse_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return where / "bin"


def clean_env() -> dict[str, str]:
    """No PYTHONPATH: the checkout must not be importable (nor a project's conf/ preset)."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "TINYML_EXP_CONFIG_DIR")
    return {k: v for k, v in os.environ.items() if k not in drop}


def install_wheel(tmp: Path) -> tuple[Path, Path]:
    """(the wheel built from the checkout, the bin/ of a fresh venv it is installed in, not editable)."""
    wheel = build_wheel(tmp / "dist")
    bin_dir = fresh_venv(tmp / "venv")
    install = [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)]
    subprocess.run(install, check=True, capture_output=True, text=True, timeout=300, env=clean_env())
    return wheel, bin_dir


def run_installed(
    bin_dir: Path, command: str, args: list[str], cwd: Path, timeout: float = 900
) -> subprocess.CompletedProcess:
    """An installed console script (`tinyml-exp`, ...) run from `cwd` with the clean environment."""
    return subprocess.run(
        [str(bin_dir / command), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(),
    )


@pytest.mark.slow
@pytest.mark.firmware
@require_commands("arm-none-eabi-gcc")
def test_wheel_installs_and_runs_from_an_empty_directory(tmp_path: Path) -> None:
    wheel, bin_dir = install_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "tinyml_exp/conf/config.yaml" in names and "tinyml_exp/firmware/core/tme_port.h" in names
    assert "hydra_plugins/tinyml_exp_sweeper/optuna_journal.py" in names  # hydra/sweeper=tinyml_optuna
    assert not any(n.startswith("hydra_plugins/__init__") for n in names)  # a namespace other plugins share
    env = clean_env()

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    where = subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "from tinyml_exp.config import config_dir\n"
            "from tinyml_exp.hardware.build import FIRMWARE_DIR\nprint(config_dir()); print(FIRMWARE_DIR)",
        ],
        cwd=run_dir,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.split()
    installed = tmp_path / "venv"
    assert all(Path(p).is_relative_to(installed) for p in where), where

    done = run_installed(bin_dir, "tinyml-exp", ["dataset=synthetic", "train.epochs=1"], run_dir)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    with sqlite3.connect(run_dir / "mlflow.db") as db:
        (status,) = db.execute("SELECT status FROM runs").fetchone()
        firmware = dict(db.execute("SELECT key, value FROM metrics WHERE key LIKE '%/firmware_bytes'"))
    assert status == "FINISHED"
    assert firmware.get("flash/firmware_bytes", 0) > 0, firmware
