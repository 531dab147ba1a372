"""`model=tflite_file model.path=vendor.tflite`: a finished `.tflite` as the run's model.

No training and no compression: the export stage copies the file into the run directory (with
its C header), and the later stages (preflight, evaluate, profile, firmware, benchmark) take it
as they take a converted model. The dataset's test split is run through it only when it fits the
model's input (shape, and a quantized input for an integer model) and output (one value per
class); otherwise the run says why in the tag `model.data_mismatch` and skips evaluate's figures
and the device benchmark.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from omegaconf import MISSING

from tinyml_exp.errors import ConfigError
from tinyml_exp.registry import register_option
from tinyml_exp.sources import ModelSource

if TYPE_CHECKING:
    from tinyml_exp.data.base import DatasetSplits
    from tinyml_exp.export import ExportResult, TFLiteRecipe
    from tinyml_exp.results import StageResult

MISMATCH_TAG = "model.data_mismatch"


@register_option("model", "tflite_file")
@dataclass
class TFLiteFile(ModelSource):
    trains: ClassVar[bool] = False
    path: str = MISSING  # the .tflite file

    def read(self) -> bytes:
        """The file's bytes, checked to be a TFLite flatbuffer; `ConfigError` (one line) if not."""
        from tinyml_exp.tflite_graph import TFLiteGraphError, read_graph

        path = Path(self.path).expanduser()
        if not path.is_file():
            raise ConfigError(f"model.path={self.path!r}: no such file (give the .tflite to run)")
        model = path.read_bytes()
        try:
            read_graph(model)
        except TFLiteGraphError as e:
            raise ConfigError(f"model.path={self.path!r}: {e}") from e  # says what is wrong and the fix
        return model

    def stem(self) -> str:
        """File-name stem of the run's artifacts: the file's own name, as a C identifier."""
        return re.sub(r"\W", "_", Path(self.path).stem) or "model"


def recipe_of(model: bytes) -> TFLiteRecipe:
    """What the converter would have been asked for to make this file: int8 when the input is
    an integer tensor, dynamic when float activations meet int8 weights, float16 weights, else none."""
    from tinyml_exp.export import TFLiteRecipe
    from tinyml_exp.tflite_graph import read_graph

    graph = read_graph(model)
    if graph.input_tensors[0].type_name in ("INT8", "UINT8", "INT16"):
        return TFLiteRecipe("int8")
    constants = {t.type_name for t in graph.tensors if t.is_constant}
    if "INT8" in constants:
        return TFLiteRecipe("dynamic")
    return TFLiteRecipe("float16" if "FLOAT16" in constants else "none")


def export_file(
    source: TFLiteFile, data: DatasetSplits, out_dir: Path, stem: str, c_header: bool
) -> ExportResult:
    """The file copied into the run directory (and its C header) as the run's export result."""
    from tinyml_exp.export import ExportResult
    from tinyml_exp.export.c_header import write_c_header
    from tinyml_exp.sizes import file_sizes

    model = source.read()
    paths = {"tflite": out_dir / f"{stem}.tflite"}
    paths["tflite"].write_bytes(model)
    if c_header:
        paths["c_header"] = write_c_header(model, out_dir / f"{stem}_model_data.h", f"{stem}_tflite")
    result = ExportResult(tflite=model, recipe=recipe_of(model), paths=paths)
    result.tags["model.path"] = str(Path(source.path).expanduser().resolve())  # the file given
    result.artifacts = [("model", path) for path in paths.values()]
    for kind, path in paths.items():
        raw, gz = file_sizes(path)
        result.metrics.update({f"size/{kind}_bytes": float(raw), f"size/{kind}_gzip_bytes": float(gz)})
    mismatch = data_mismatch(model, data)
    if mismatch:
        result.tags[MISMATCH_TAG] = mismatch
    return result


def data_mismatch(model: bytes, data: DatasetSplits) -> str | None:
    """Why the dataset's samples cannot go through the model, or None when they can."""
    from tinyml_exp.evaluate.interpreters import io_specs

    in_spec, out_spec = io_specs(model)
    takes, given = tuple(in_spec.shape[1:]), tuple(data.x_test.shape[1:])
    if _squeezed(takes) != _squeezed(given):
        return f"the model takes inputs of shape {list(takes)}, the dataset's samples are {list(given)}"
    if in_spec.dtype.kind in "iu" and not in_spec.quantized:
        return f"the model's {in_spec.dtype} input has no quantization parameters to map float samples"
    if in_spec.dtype.kind not in "iuf":
        return f"the model's input type {in_spec.dtype} is not supported"
    outputs = int(_product(out_spec.shape[1:]))
    if outputs != data.num_classes:
        return f"the model gives {outputs} outputs per sample, the dataset has {data.num_classes} classes"
    return None


def evaluate_file(
    export: Any, data: DatasetSplits, backends: tuple[str, ...], tflm_samples: int | None = None
) -> StageResult:
    """Accuracy, loss and agreement on the interpreters when the data fits; else nothing, tagged.
    TFLM runs on the first `tflm_samples` test images (`evaluate.tflm_samples`), as for any run."""
    from tinyml_exp.evaluate import evaluate
    from tinyml_exp.results import StageResult
    from tinyml_exp.tflite_graph import read_graph

    mismatch = export.tags.get(MISMATCH_TAG)
    if mismatch:
        return StageResult(tags={"evaluate.skipped": mismatch})
    graph = read_graph(export.tflite)
    ends_in_softmax = bool(graph.operators) and graph.operators[-1].opcode == "SOFTMAX"
    return evaluate(None, export.tflite, data, not ends_in_softmax, backends, tflm_samples)


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def _product(shape: tuple[int, ...]) -> int:
    total = 1
    for d in shape:
        total *= d
    return total
