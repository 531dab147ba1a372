"""A resumable Optuna study behind Hydra's sweeper interface (`hydra/sweeper=tinyml_optuna`).

The study lives in an Optuna journal file (`JournalFileBackend`: one JSON line per change, so a
process killed mid-write loses at most that line). Opening a study that already has trials keeps
the finished ones and hands trials left RUNNING by a process that died back to the queue with the
same parameters; the sweep then runs only what is left of `n_trials`, which counts every trial the
study ever finished, in any run. One process at a time drives a study: an advisory lock
(`<journal>.owner`, released by the kernel when its holder dies, even by SIGKILL) says so.

A job returns the values `sweep.objectives` names (tinyml_exp/cli/main.py); a model that does not
fit the target returns the worst value on every objective when `sweep.require_fit` is set, and is
recorded here as infeasible (Optuna's constraints, user attribute `fits`), so it never reaches the
front. The front (feasible trials only) is written to `<sweep dir>/optimization_results.yaml`.

Optuna is imported inside the functions: Hydra imports every sweeper plugin at start-up.
"""

from __future__ import annotations

import fcntl
import inspect
import logging
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from omegaconf import DictConfig, OmegaConf

from tinyml_exp.cli.main import WORST_OBJECTIVE
from tinyml_exp.config import sweep_objectives
from tinyml_exp.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_JOURNAL = "optuna_journal.log"  # in hydra.sweep.dir when hydra.sweeper.storage is null


@dataclass
class SearchSpace:
    """What a trial samples (name -> Optuna distribution) and the overrides every job gets as they are."""

    distributions: dict[str, Any]
    fixed: dict[str, str]  # key -> the override as typed

    def overrides(self, params: dict[str, Any]) -> list[str]:
        """One job's override list: the sampled values in Hydra's syntax, then the fixed ones."""
        from hydra.core.override_parser.types import Transformer

        sampled = [f"{name}={Transformer.str(params[name])}" for name in self.distributions]
        return sampled + list(self.fixed.values())


def search_space(arguments: Sequence[str], config_loader: Any = None) -> SearchSpace:
    """`choice(...)`, `range(...)` and `glob(...)` become categorical distributions,
    `interval(a, b)` (tag `log` for a log scale) an int or float one; any other override is fixed.
    A key given twice keeps the last (the command line after `hydra.sweeper.params`)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Transformer

    parser = OverridesParser.create(config_loader=config_loader)
    distributions: dict[str, Any] = {}
    fixed: dict[str, str] = {}
    for override in parser.parse_overrides(list(arguments)):
        key = override.get_key_element()
        distributions.pop(key, None)
        fixed.pop(key, None)
        if not override.is_sweep_override():
            fixed[key] = str(override.input_line)
        elif override.is_interval_sweep():
            distributions[key] = _interval(override.value())
        else:  # choice, range, glob: the listed values, as Hydra's basic sweeper would run them
            from optuna.distributions import CategoricalDistribution

            choices = list(override.sweep_iterator(transformer=Transformer.encode))
            if not choices:
                raise ConfigError(f"{override.input_line}: the sweep lists no values; give at least one")
            distributions[key] = CategoricalDistribution(choices)
    return SearchSpace(distributions, fixed)


def _interval(interval: Any) -> Any:
    from optuna.distributions import FloatDistribution, IntDistribution

    log_scale = "log" in interval.tags
    if isinstance(interval.start, int) and isinstance(interval.end, int):
        return IntDistribution(interval.start, interval.end, log=log_scale)
    return FloatDistribution(float(interval.start), float(interval.end), log=log_scale)


def journal_path(storage: str | None, sweep_dir: str | Path) -> Path:
    """The journal file: `storage` (a path; relative to the working directory) or the default in the
    sweep dir (created). A given path's directory must exist: a typo there would start a new study."""
    if storage is None:
        Path(sweep_dir).mkdir(parents=True, exist_ok=True)
        return Path(sweep_dir) / DEFAULT_JOURNAL
    if "://" in storage:
        raise ConfigError(
            f"hydra.sweeper.storage={storage!r} is a URL; give a journal file path (or null for "
            f"<hydra.sweep.dir>/{DEFAULT_JOURNAL})"
        )
    path = Path(storage).expanduser().absolute()
    if not path.parent.is_dir():
        raise ConfigError(
            f"hydra.sweeper.storage={storage!r}: directory {path.parent} does not exist; create it "
            f"or point storage at an existing directory (null: <hydra.sweep.dir>/{DEFAULT_JOURNAL})"
        )
    return path


def own_study(path: Path) -> IO[str]:
    """Take the study's owner lock (kept while the returned file stays open) or fail saying who has it."""
    handle = open(f"{path}.owner", "a+")  # noqa: SIM115 - held open for the whole sweep
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ConfigError(
            f"the study in {path} is being run by {holder}; wait for it, or give another "
            "hydra.sweeper.storage / hydra.sweeper.study_name"
        ) from None
    handle.truncate(0)
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    # A journal write lock left by a killed owner would stall every write for its grace period;
    # nobody else writes while we hold the owner lock, so it is stale.
    Path(f"{path}.lock").unlink(missing_ok=True)
    return handle


def open_study(path: Path, name: str, directions: list[str], sampler: Any = None) -> Any:
    """The study `name` in the journal `path` (created, or loaded with its trials), with trials a
    dead process left RUNNING marked FAIL (user attribute `interrupted`) and queued again."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState

    storage = JournalStorage(JournalFileBackend(str(path)))
    sampler = sampler or optuna.samplers.RandomSampler()  # a placeholder until the caller sets its own
    study = optuna.create_study(
        storage=storage, study_name=name, directions=directions, sampler=sampler, load_if_exists=True
    )
    found = [d.name.lower() for d in study.directions]
    if found != directions:
        raise ConfigError(
            f"study {name!r} in {path} optimizes {found}, sweep.objectives asks for {directions}; "
            "give another hydra.sweeper.study_name or storage for the new objectives"
        )
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        storage.set_trial_user_attr(trial._trial_id, "interrupted", True)
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
        log.warning("trial %d was left running by a process that stopped; queued again", trial.number)
    return study


def finished_trials(study: Any) -> int:
    """Trials that count against n_trials: finished ones, except those a dead process interrupted."""
    return sum(t.state.is_finished() and not t.user_attrs.get("interrupted") for t in study.trials)


def next_job_number(study: Any) -> int:
    """The Hydra job number after every one the study has used (job dirs never collide on resume)."""
    return 1 + max((t.user_attrs.get("hydra_job", -1) for t in study.trials), default=-1)


def directions_of(config: DictConfig) -> list[str]:
    """The objectives' directions, in the order `sweep.objectives` lists them."""
    objectives = sweep_objectives(config.sweep)
    for metric, direction in objectives.items():
        if direction not in WORST_OBJECTIVE:
            raise ConfigError(f"sweep.objectives.{metric}={direction!r}: expected maximize or minimize")
    return list(objectives.values())


def make_sampler(sampler: DictConfig | None, trials_before: int = 0) -> Any:
    """The configured sampler (`_target_` + its arguments), told about infeasible trials where it
    can be. A seed is offset by the trials the study already has: a resumed study restarted with
    the same seed would propose the parameters of its first trials again."""
    from hydra.utils import get_class
    from optuna.exceptions import ExperimentalWarning

    if not sampler:
        return None
    kwargs = OmegaConf.to_container(sampler, resolve=True)
    assert isinstance(kwargs, dict)
    target = kwargs.pop("_target_", None)
    if not target:
        raise ConfigError("hydra.sweeper.sampler has no _target_; give an optuna.samplers class")
    try:
        cls = get_class(str(target))
    except Exception as e:
        raise ConfigError(f"hydra.sweeper.sampler._target_={target!r}: {e}") from e
    if kwargs.get("seed") is not None:
        kwargs["seed"] = int(kwargs["seed"]) + trials_before
    if "constraints_func" in inspect.signature(cls).parameters:
        kwargs.setdefault("constraints_func", fit_constraint)
    try:
        with warnings.catch_warnings():  # constraints_func is "experimental" in Optuna 4.9; chosen knowingly
            warnings.simplefilter("ignore", ExperimentalWarning)
            return cls(**kwargs)
    except TypeError as e:  # an argument the class does not take
        raise ConfigError(
            f"hydra.sweeper.sampler: {e}; see the class's arguments in Optuna's reference"
        ) from e


def fit_constraint(trial: Any) -> list[float]:
    """Optuna's constraint (≤ 0 is feasible): whether the trial's model fits the target."""
    return [0.0 if trial.user_attrs.get("fits", True) else 1.0]


def values_of(result: Any, directions: list[str]) -> list[float]:
    """A job's return value as one float per objective (ValueError saying what was wrong)."""
    values = result if isinstance(result, list | tuple) else [result]
    try:
        values = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"the job returned {result!r}, not {len(directions)} number(s)") from None
    if len(values) != len(directions):
        raise ValueError(f"the job returned {len(values)} values for {len(directions)} objectives")
    return values


def fits(values: list[float], directions: list[str]) -> bool:
    """False when a value is the worst score, which a job gives a model that does not fit."""
    return not any(v == WORST_OBJECTIVE[d] for v, d in zip(values, directions, strict=True))


def write_front(study: Any, objectives: list[str], path: Path) -> list[Any]:
    """The feasible Pareto front (params and named values per trial) as YAML; returns its trials."""
    # best_trials leaves infeasible trials out only where the sampler recorded constraints
    front = sorted((t for t in study.best_trials if t.user_attrs.get("fits", True)), key=lambda t: t.number)
    rows = [
        {"trial": t.number, "params": t.params, "values": dict(zip(objectives, t.values, strict=True))}
        for t in front
    ]
    summary = {"study": study.study_name, "trials": finished_trials(study), "front": rows}
    OmegaConf.save(OmegaConf.create(summary), path)
    return front


# (the overrides of each job in a batch, the first job's number) -> Hydra's JobReturn per job
Launch = Callable[[list[list[str]], int], Sequence[Any]]


@dataclass
class StudySettings:
    """`hydra.sweeper.*` of hydra/sweeper=tinyml_optuna (schema: hydra_plugins/tinyml_exp_sweeper)."""

    study_name: str
    storage: str | None
    n_trials: int  # in total, over every run of the study
    n_jobs: int  # trials per launcher batch
    sampler: DictConfig | None
    params: DictConfig | None


def sweep(
    settings: StudySettings, config: DictConfig, arguments: list[str], launch: Launch, loader: Any
) -> Any:
    """Open (or resume) the study, run the trials left, write the front; returns the study."""
    directions = directions_of(config)
    params = [f"{k}={v}" for k, v in (settings.params or {}).items()]
    space = search_space(params + list(arguments), loader)
    path = journal_path(settings.storage, str(config.hydra.sweep.dir))
    owner = own_study(path)
    try:
        study = open_study(path, settings.study_name, directions)
        study.sampler = make_sampler(settings.sampler, len(study.trials)) or study.sampler
        log.info(
            "study %s in %s: %d of %d trials done (after a crash, the same command with "
            "hydra.sweeper.storage=%s resumes it)",
            settings.study_name, path, finished_trials(study), settings.n_trials, path,
        )  # fmt: skip
        run_trials(study, space, settings.n_trials, max(1, settings.n_jobs), launch, directions)
        front = write_front(
            study,
            list(sweep_objectives(config.sweep)),
            Path(str(config.hydra.sweep.dir)) / "optimization_results.yaml",
        )
        log.info(
            "study %s: %d trials, %d on the front (feasible only)",
            settings.study_name,
            finished_trials(study),
            len(front),
        )
        return study
    finally:
        owner.close()


def run_trials(
    study: Any, space: SearchSpace, n_trials: int, batch: int, launch: Launch, directions: list[str]
) -> None:
    """Ask, launch and tell in batches until the study has `n_trials` finished trials."""
    job = next_job_number(study)
    while (left := n_trials - finished_trials(study)) > 0:
        trials = [study.ask(space.distributions) for _ in range(min(batch, left))]
        batch_overrides = []
        for number, trial in enumerate(trials, start=job):
            overrides = space.overrides(trial.params)
            trial.set_user_attr("hydra_job", number)
            trial.set_user_attr("overrides", overrides)
            batch_overrides.append(overrides)
        returns = launch(batch_overrides, job)
        job += len(trials)
        for trial, result in zip(trials, returns, strict=True):
            record(study, trial, result, directions)


def record(study: Any, trial: Any, result: Any, directions: list[str]) -> None:
    """Tell the study a job's values, or that it failed (a job that raised or returned no numbers)."""
    from optuna.trial import TrialState

    try:
        values = values_of(result.return_value, directions)  # re-raises the job's own exception
    except Exception as e:
        log.warning("trial %d failed: %s", trial.number, e)
        study.tell(trial, state=TrialState.FAIL)
        return
    trial.set_user_attr("fits", fits(values, directions))
    study.tell(trial, values)
