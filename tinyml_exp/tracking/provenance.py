"""Where a figure came from: package versions, the project's git state, the command line."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

# Distribution names as pip knows them -> short tag names.
PACKAGES = {
    "tensorflow": "tensorflow",
    "tf-keras": "tf_keras",
    "tensorflow-model-optimization": "tfmot",
    "tflite-micro": "tflite_micro",
    "ai-edge-litert": "ai_edge_litert",
    "mlflow": "mlflow",
    "hydra-core": "hydra",
    "omegaconf": "omegaconf",
    "numpy": "numpy",
}

_PROJECT_ROOT = Path(__file__).resolve().parents[2]


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist, short in PACKAGES.items():
        try:
            versions[short] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[short] = "not installed"
    return versions


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(_PROJECT_ROOT), *args], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def git_state() -> dict[str, str]:
    """Commit of the project's checkout and whether it had uncommitted changes ("unknown" when the
    package is not run from a git checkout, e.g. installed from a wheel)."""
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": "unknown", "git_dirty": "unknown"}
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": "unknown" if status is None else str(bool(status)).lower()}


def provenance_tags(overrides: list[str] | None = None) -> dict[str, str]:
    tags = {f"version.{name}": value for name, value in package_versions().items()}
    tags.update({f"provenance.{k}": v for k, v in git_state().items()})
    tags["provenance.command"] = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
    tags["provenance.overrides"] = " ".join(overrides or []) or "(none)"
    from tinyml_exp.tracking.inputs import source_tags

    tags.update(source_tags(_PROJECT_ROOT))  # MLflow's own source / git tags, for its UI
    return tags
