"""`hydra/sweeper=tinyml_optuna`: Optuna (NSGA-II by default) over `hydra.sweeper.params`, its
study in a journal file, so a sweep that crashed resumes where it stopped (tinyml_exp/study.py).

Imported by Hydra at every start-up: nothing heavy at module level (Optuna is imported when a
sweep starts).
"""

import sys
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class TinymlOptunaSweeperConf:
    _target_: str = "hydra_plugins.tinyml_exp_sweeper.optuna_journal.OptunaJournalSweeper"
    _recursive_: bool = False  # the sampler is built by the sweeper (it adds the fit constraint)
    # Any optuna.samplers class and its arguments; NSGA-II for several objectives.
    sampler: dict[str, Any] = field(
        default_factory=lambda: {
            "_target_": "optuna.samplers.NSGAIISampler",
            "seed": None,
            "population_size": 50,
        }
    )
    study_name: str = "tinyml_exp"
    # The journal file (a path; its directory must exist); null: <hydra.sweep.dir>/optuna_journal.log.
    # The same storage + study_name again resumes the study.
    storage: str | None = None
    n_trials: int = 20  # in total, over every run of the study: a resumed study runs what is left
    n_jobs: int = 1  # trials launched together (the launcher may run them in parallel)
    # key: choice(a, b) | range(a, b) | glob(*) | int(interval(a, b)) | interval(a, b) | tag(log, interval(a, b))
    params: dict[str, str] = field(default_factory=dict)


ConfigStore.instance().store(
    group="hydra/sweeper", name="tinyml_optuna", node=TinymlOptunaSweeperConf, provider="tinyml_exp"
)


class OptunaJournalSweeper(Sweeper):
    def __init__(
        self,
        sampler: DictConfig | None,
        study_name: str,
        storage: str | None,
        n_trials: int,
        n_jobs: int,
        params: DictConfig | None,
    ) -> None:
        from tinyml_exp.study import StudySettings

        self.settings = StudySettings(study_name, storage, n_trials, n_jobs, sampler, params)
        self.config: DictConfig | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.loader = hydra_context.config_loader
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        from tinyml_exp.errors import TinymlExpError
        from tinyml_exp.study import sweep

        assert self.config is not None, "setup() runs first"

        def launch(overrides: list[list[str]], first_job: int) -> Any:
            return self.launcher.launch(overrides, initial_job_idx=first_job)

        try:
            return sweep(self.settings, self.config, arguments, launch, self.loader)
        except TinymlExpError as e:  # one line, as the CLI prints every user-fixable problem
            sys.exit(f"tinyml-exp: {e}")
