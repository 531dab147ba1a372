import os

# Before anything imports TensorFlow (tinyml_exp sets these too; tests may import TF first).
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
