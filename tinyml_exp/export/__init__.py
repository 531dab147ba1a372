"""Export stage: Keras model -> .h5/.keras, .tflite, C header and generated C inference code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tinyml_exp.export.c_header import write_c_header
from tinyml_exp.export.keras_files import save_keras_files
from tinyml_exp.export.tflite import TFLiteRecipe, convert
from tinyml_exp.results import StageResult
from tinyml_exp.sizes import factor, file_sizes

if TYPE_CHECKING:
    import numpy as np
    import tf_keras

    from tinyml_exp.config import ExportConfig
    from tinyml_exp.data.base import DatasetSplits

__all__ = ["ExportResult", "TFLiteRecipe", "export", "export_artifacts"]


@dataclass
class ExportResult(StageResult):
    """The converted model and its files; `export()` fills the figures (sizes, compression
    factors) and the `model` artifacts, `CompressResult.check_tflite` the `.tflite`'s weight
    figures and invariant checks."""

    tflite: bytes
    recipe: TFLiteRecipe
    paths: dict[str, Path]  # kind ("h5", "keras", "tflite", "c_header") -> file

    def size_metrics(self, reference: dict[str, float]) -> dict[str, float]:
        """Raw and gzip bytes of every artifact, and factors versus the base model's files."""
        metrics: dict[str, float] = {}
        for kind, path in self.paths.items():
            raw, gz = file_sizes(path)
            metrics[f"size/{kind}_bytes"] = float(raw)
            metrics[f"size/{kind}_gzip_bytes"] = float(gz)
        tflite, tflite_gz = metrics["size/tflite_bytes"], metrics["size/tflite_gzip_bytes"]
        metrics["compression/factor_h5"] = factor(reference["h5_bytes"], tflite)
        metrics["compression/factor_tflite"] = factor(reference["tflite_bytes"], tflite)
        metrics["compression/factor_gzip"] = factor(reference["tflite_gzip_bytes"], tflite_gz)
        return metrics


def export_artifacts(
    model: tf_keras.Model,
    recipe: TFLiteRecipe,
    data: DatasetSplits,
    out_dir: Path,
    stem: str,
    cfg: ExportConfig,
) -> ExportResult:
    """Write `.h5`, `.keras`, `.tflite` (batch 1) and, if asked, the `.tflite` as a C header."""
    paths = save_keras_files(model, out_dir, stem)
    representative = _representative_samples(data, cfg.representative_samples)
    tflite = convert(model, recipe, representative)
    paths["tflite"] = out_dir / f"{stem}.tflite"
    paths["tflite"].write_bytes(tflite)
    if cfg.c_header:
        paths["c_header"] = write_c_header(tflite, out_dir / f"{stem}_model_data.h", f"{stem}_tflite")
    return ExportResult(tflite=tflite, recipe=recipe, paths=paths)


def export(
    model: tf_keras.Model,
    recipe: TFLiteRecipe,
    data: DatasetSplits,
    out_dir: Path,
    stem: str,
    cfg: ExportConfig,
    reference: dict[str, float],
) -> ExportResult:
    """Write the artifacts (logged under `model/`) and measure them against the base model's
    `reference` files (`size/*`, `compression/factor_*`)."""
    result = export_artifacts(model, recipe, data, out_dir, stem, cfg)
    result.artifacts = [("model", path) for path in result.paths.values()]
    result.metrics.update(result.size_metrics(reference))
    return result


def _representative_samples(data: DatasetSplits, count: int) -> np.ndarray:
    """The first `count` training images: calibration must not see the test split."""
    return data.x_train[:count]
