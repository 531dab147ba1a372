"""tinyml_exp: declarative TinyML experiments (train → compress → export → measure → benchmark)."""

import os

# TFMOT needs Keras 2 (tf-keras); this must be set before anything imports TensorFlow.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's C++ INFO/WARNING lines (CPU feature notes, CUDA probing) drown the run's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
