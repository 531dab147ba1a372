"""The run's deployable artifact as an MLflow model: a pyfunc model that runs the `.tflite` in the
TFLite interpreter (tflite_pyfunc.py), the generated C and headers as artifacts of that model,
and optionally a version in the model registry tagged with the run's key figures.

Kept cheap: requirements are the installed versions of the three packages the model imports (no
environment inference, which would load the model in a subprocess), and the signature is written
from the input shape (no input example to run).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MODEL_NAME = "tflite_model"
_CODE = Path(__file__).with_name("tflite_pyfunc.py")
_REQUIREMENTS = ("mlflow", "numpy", "ai-edge-litert")


@dataclass
class LoggedTflite:
    model_id: str
    model_uri: str  # models:/<model id>
    registered: str | None = None  # "<name>/<version>" when registered


def requirements() -> list[str]:
    """The model's pip requirements: the installed versions of what it imports."""
    pins = []
    for dist in _REQUIREMENTS:
        try:
            pins.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pins.append(dist)
    return pins


def deployable_files(export_paths: Mapping[str, Path], cgen: Any | None) -> dict[str, Path]:
    """The model's files: the `.tflite`, its C array header, and the generated C source and header
    when the firmware stage generated them (`cgen`: its CGenResult)."""
    files = {k: Path(export_paths[k]) for k in ("tflite", "c_header") if k in export_paths}
    if cgen is not None:
        files.update({"model_c": Path(cgen.model_c), "model_h": Path(cgen.model_h)})
    return files


def _signature(tflite: Path) -> Any:
    """Float input and output tensors of the `.tflite`'s shapes, any batch (read without
    allocating the interpreter)."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    interpreter = Interpreter(model_path=str(tflite))
    input_shape = tuple(int(d) for d in interpreter.get_input_details()[0]["shape"][1:])
    output_shape = tuple(int(d) for d in interpreter.get_output_details()[0]["shape"][1:])

    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *input_shape))]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *output_shape))]),
    )


def log_tflite_model(
    client: Any,
    run_id: str,
    experiment_id: str,
    files: Mapping[str, Path],
    tags: Mapping[str, str],
) -> LoggedTflite:
    """Log `files["tflite"]` (plus the other `files`: C source and headers) as the run's model."""
    import mlflow.pyfunc
    from mlflow.entities import LoggedModelOutput

    # Created first with the run as its source: pyfunc.log_model links a model to a run only
    # through the fluent active run, which this project does not use.
    model = client.create_logged_model(
        experiment_id, name=MODEL_NAME, source_run_id=run_id, tags=dict(tags), model_type="tflite"
    )
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per file
    with warnings.catch_warnings():  # "no input example": on purpose, it would run the model
        warnings.simplefilter("ignore", UserWarning)
        mlflow.pyfunc.log_model(
            name=MODEL_NAME,
            python_model=str(_CODE),
            artifacts={kind: str(path) for kind, path in files.items()},
            pip_requirements=requirements(),
            signature=_signature(files["tflite"]),
            model_id=model.model_id,
        )
    client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])
    client.finalize_logged_model(model.model_id, "READY")
    return LoggedTflite(model.model_id, f"models:/{model.model_id}")


def register(logged: LoggedTflite, name: str, key_figures: Mapping[str, str]) -> LoggedTflite:
    """A new version of registered model `name` from the logged model, tagged with `key_figures`."""
    import mlflow

    version = mlflow.register_model(logged.model_uri, name, tags=dict(key_figures))
    logged.registered = f"{name}/{version.version}"
    log.info("registered model %s version %s", name, version.version)
    return logged
