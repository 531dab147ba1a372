"""tinyml_exp's Hydra sweeper: a resumable Optuna study (tinyml_exp/study.py).

Hydra finds sweepers by importing every module under the `hydra_plugins` namespace package and
only instantiates plugin classes defined there, so the class and its config schema live here and
the work is done in tinyml_exp.study. The wheel ships this package (setup.cfg, find_namespace).
"""
