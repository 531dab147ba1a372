"""The faces: every command a user types, as thin wrappers over the stages.

  main.py     `tinyml-exp` / `python -m tinyml_exp`: the Hydra app (one run or a sweep)
  profile.py  `tinyml-exp-profile`: profile any .tflite on one or more targets
  bench.py    `tinyml-exp-bench`: stream test images to a board already flashed
  report.py   `tinyml-exp-report`: the summary table and Pareto plots of a sweep
  sweep.py    the Hydra callback that opens and closes a sweep's MLflow parent run
  project_dir.py  `--config-dir DIR` / TINYML_EXP_CONFIG_DIR: a project's own conf/ for every face

All of them compose the config with `tinyml_exp.config.compose` from `tinyml_exp.config.search_path()`
(a project's conf/, if any, then the package's).
Kept light: TensorFlow, MLflow and NumPy are imported inside the commands, never at module level.
"""
