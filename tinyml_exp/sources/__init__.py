"""The `model` config group: where a run's model comes from.

`model=keras` (the default) builds the architecture, trains it (or takes the cached base model)
and compresses it; `model=tflite_file model.path=vendor.tflite` starts from a finished `.tflite`:
no training, no compression, and the file's own graph says what it takes and gives.
Option modules stay light: TensorFlow and NumPy are imported inside methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from omegaconf import MISSING

__all__ = ["ModelSource"]


@dataclass
class ModelSource:
    name: str = MISSING
    # Whether the run builds, trains and compresses a Keras model (the train and compress stages).
    trains: ClassVar[bool] = True
