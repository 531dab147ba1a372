"""Keras model files: legacy HDF5 (`.h5`, what the course compares sizes against) and `.keras`."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tf_keras


def save_keras_files(model: tf_keras.Model, out_dir: Path, stem: str) -> dict[str, Path]:
    """Save both formats, optimizer state included (as `model.save` does by default)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"h5": out_dir / f"{stem}.h5", "keras": out_dir / f"{stem}.keras"}
    with warnings.catch_warnings():
        # Keras calls HDF5 "legacy"; the course measures against it, so it is written on purpose.
        warnings.filterwarnings("ignore", message=".*HDF5 file.*", category=UserWarning)
        model.save(paths["h5"], save_format="h5")
    model.save(paths["keras"])
    return paths
