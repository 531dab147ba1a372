"""Profile stage: MACs, RAM, flash, cycles and latency of a `.tflite` on a target, and whether it fits.

Works on any `.tflite` without training (`tinyml-exp-profile model.tflite target=...`) and as the
pipeline's `profile` stage. Modules: `layers` (per-layer MACs, shapes, formula), `operators`
(pre-flight operator check), `memory` (TFLM arena report and probe), `costmodel` + `calibration`
(cycles per backend), `footprint` (flash), `verdict` (fits / estimate errors), `result` (the
result types, data only), `report` + `plot` (artifacts), `stage` (the pipeline's preflight and
profile verbs), `cli`. Matplotlib, TensorFlow and MLflow are imported only where used.
"""

from tinyml_exp.profile.operators import BACKENDS, OperatorCheck, check_operators
from tinyml_exp.profile.profiler import profile_model
from tinyml_exp.profile.result import ProfileResult
from tinyml_exp.profile.verdict import Verdict, estimate_errors

__all__ = [
    "BACKENDS",
    "OperatorCheck",
    "ProfileResult",
    "Verdict",
    "check_operators",
    "estimate_errors",
    "profile_model",
]
