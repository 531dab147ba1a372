"""`tinyml-exp` / `python -m tinyml_exp`: compose the config with Hydra and run one experiment.

Kept light on purpose: TensorFlow and MLflow are imported inside the stages, so `--help` and
`--cfg job` answer in well under a second.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from tinyml_exp import interrupt
from tinyml_exp.cli.project_dir import use_project_config_dir, without_config_dir
from tinyml_exp.config import compose, config_dir, option_names, search_path, store_schemas, sweep_objectives
from tinyml_exp.errors import TinymlExpError

log = logging.getLogger("tinyml_exp")

# What a sweeper gets for a job that failed or does not fit when sweep.require_fit is set
# (tinyml_exp/study.py reads it back as "infeasible").
WORST_OBJECTIVE = {"maximize": float("-1e12"), "minimize": float("1e12")}


def objective_values(cfg: DictConfig, metrics: dict[str, float], fits: bool) -> float | list[float]:
    """The values `sweep.objectives` names, in order (a float when there is one objective)."""
    values = []
    for name, direction in sweep_objectives(cfg.sweep).items():
        value = metrics.get(name)
        if value is None or (cfg.sweep.require_fit and not fits):
            value = WORST_OBJECTIVE[direction]
        values.append(float(value))
    return values[0] if len(values) == 1 else values


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def _run(cfg: DictConfig) -> float | list[float] | None:
    from tinyml_exp.cli.sweep_workers import work_finished
    from tinyml_exp.pipeline import run_experiment
    from tinyml_exp.tracking.quiet import native_logs

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:
        from tinyml_exp.cli.sweep_workers import settle_in_worker

        settle_in_worker()
    try:
        with native_logs(cfg.verbose):
            summary = run_experiment(cfg, Path(hydra_cfg.runtime.output_dir), list(hydra_cfg.overrides.task))
    except TinymlExpError as e:
        # A user-fixable problem: one line, no traceback. In a sweep the other jobs go on.
        log.error("%s", e)
        if hydra_cfg.mode == RunMode.MULTIRUN:
            return objective_values(cfg, {}, fits=False)
        sys.exit(1)
    if hydra_cfg.mode != RunMode.MULTIRUN:  # a sweep's figures are in its report
        print_summary(summary)
        work_finished()
    return objective_values(cfg, summary.metrics, summary.tags.get("fits_target", "true") == "true")


def print_summary(summary) -> None:
    """The run's key figures as a table, then where to see the run in MLflow's UI."""
    from tinyml_exp.tracking.summary import format_table, summary_rows, ui_hint

    print(f"\nRun {summary.run_id}{' (reused, sweep.resume)' if summary.skipped else ''}")
    print(format_table(summary_rows(summary.metrics, summary.tags)))
    command, url = ui_hint(summary.tracking_uri, summary.experiment_id, summary.run_id)
    if command:
        print(f"\nOpen the MLflow UI:  {command}")
    print(f"The run:             {url}")


HELP_HEADER = """tinyml_exp: train, compress, export and measure TinyML models; every run logged to MLflow.

Usage: tinyml-exp [group=option ...] [key=value ...]        one run
       tinyml-exp -m compression=none,ptq_int8 ...          a sweep (one job per combination)
       tinyml-exp -m 'compression=glob(*)' ...              every option of a group
       tinyml-exp --cfg job [overrides]                     print the composed config and stop
       tinyml-exp --config-dir conf architecture=my_net     your project's conf/ beside the package's
       tinyml-exp --hydra-help                              Hydra's own flags and groups
"""


def print_help(overrides: list[str]) -> None:
    """Hydra's `--help` composes the config once per config group to list the options (≈ 1 s
    here); the options are simply the YAML files in conf/, so list those and compose once."""
    from omegaconf import OmegaConf

    print(HELP_HEADER)
    print("== Config groups (choose with group=option) ==")
    for group in sorted({p.name for d in search_path() for p in d.iterdir() if p.is_dir()}):
        options = option_names(group)
        if options:
            print(f"{group}: {', '.join(options)}")
    cfg = compose(overrides)
    print("\n== Config (override any key with key=value) ==")
    print(OmegaConf.to_yaml(cfg))


def main() -> None:
    interrupt.install()
    try:
        sys.argv[1:] = use_project_config_dir(sys.argv[1:])  # a project's conf/, see cli/project_dir.py
        args = without_config_dir(sys.argv[1:])
        if "--help" in args or "-h" in args:
            print_help([a for a in args if not a.startswith("-")])
            return
        store_schemas()
    except TinymlExpError as e:
        sys.exit(f"tinyml-exp: {e}")
    _run()
    from tinyml_exp.cli.sweep_workers import leave_if_finished

    leave_if_finished()  # a finished run or sweep: no teardown to wait for
