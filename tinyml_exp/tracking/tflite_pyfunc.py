"""The MLflow pyfunc model of a run: `predict` runs the run's `.tflite` in the TFLite interpreter.

Logged as "model from code": MLflow copies this file into the model, so loading it needs MLflow,
NumPy and ai-edge-litert only, not tinyml_exp. Inputs are float samples in the model's float range
(as the run's test set); int8 models are quantized and dequantized at their boundaries with the
scale and zero point the `.tflite` carries. The output is the model's output per sample (scores,
or logits for a model without a softmax).
"""

from __future__ import annotations

import warnings
from typing import Any

import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel

# MLflow advises type hints on `predict` as the class is defined (here, and on every load) in a
# warnings context of its own, so no filter reaches it; the logged signature describes the input
# instead, so the advice is not shown.
_show, warnings.showwarning = warnings.showwarning, lambda *args, **kwargs: None


class TFLiteModel(PythonModel):
    def load_context(self, context: Any) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=context.artifacts["tflite"])
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]

    # No type hints: MLflow would derive a schema from them (the signature is logged instead).
    def predict(self, context, model_input, params=None):
        shape = tuple(self._input["shape"][1:])
        x = np.asarray(model_input, dtype=np.float32).reshape((-1, *shape))
        outputs = [self._invoke(sample[None]) for sample in x]
        return np.concatenate(outputs) if outputs else np.zeros((0, *self._output["shape"][1:]), np.float32)

    def _invoke(self, sample: np.ndarray) -> np.ndarray:
        dtype = self._input["dtype"]
        if dtype != np.float32:  # integer input: quantize with the tensor's own parameters
            scale, zero = self._input["quantization"]
            info = np.iinfo(dtype)
            sample = np.clip(np.round(sample / scale + zero), info.min, info.max).astype(dtype)
        self._interpreter.set_tensor(self._input["index"], sample)
        self._interpreter.invoke()
        out = self._interpreter.get_tensor(self._output["index"])
        if out.dtype != np.float32:
            scale, zero = self._output["quantization"]
            out = (out.astype(np.float32) - zero) * scale
        return out.astype(np.float32)


warnings.showwarning = _show
mlflow.models.set_model(TFLiteModel())
