"""The resumable Optuna sweeper (tinyml_exp/study.py, hydra/sweeper=tinyml_optuna): search space
from Hydra's sweep syntax, a study that survives its process and runs only what is left, and
experiment=search_hil killed half-way on the emulated board and resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from hydra.core.utils import JobReturn, JobStatus

from tests.helpers import app_command, app_env, require_commands, require_modules, run_app
from tinyml_exp.cli.main import WORST_OBJECTIVE
from tinyml_exp.errors import ConfigError

pytestmark = require_modules("optuna.storages.journal", extra="scale")

DIRECTIONS = ["minimize", "maximize"]


def tiny_job(overrides: list[str]) -> JobReturn:
    """The objective of a job whose overrides set x and y: (x + y, x * y); y=3 does not 'fit'."""
    values = dict(o.split("=", 1) for o in overrides)
    x, y = int(values["x"]), int(values["y"])
    result = JobReturn(status=JobStatus.COMPLETED)
    result.return_value = [WORST_OBJECTIVE[d] for d in DIRECTIONS] if y == 3 else [x + y, x * y]
    return result


class Launcher:
    """Records what it launched; raises KeyboardInterrupt (a crash) at batch `crash_at`."""

    def __init__(self, crash_at: int | None = None) -> None:
        self.batches: list[list[list[str]]] = []
        self.first_jobs: list[int] = []
        self.crash_at = crash_at

    def __call__(self, overrides: list[list[str]], first_job: int) -> list[JobReturn]:
        self.batches.append(overrides)
        self.first_jobs.append(first_job)
        if len(self.batches) == self.crash_at:
            raise KeyboardInterrupt
        return [tiny_job(o) for o in overrides]


def open_tiny(path: Path):
    import optuna

    from tinyml_exp.study import open_study, search_space

    space = search_space(["x=int(interval(0, 9))", "y=choice(1, 2, 3)", "seed=7"])
    return open_study(path, "tiny", DIRECTIONS, optuna.samplers.RandomSampler(seed=0)), space


def test_search_space_from_hydra_sweep_syntax() -> None:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from tinyml_exp.study import search_space

    params = [
        "a=int(interval(2, 16))",
        "b=choice(3, 5)",
        "lr=tag(log, interval(0.001, 0.1))",
        "c=range(1, 4)",
    ]
    command_line = ["b=choice(7)", "dataset=synthetic", "+extra=1"]  # after hydra.sweeper.params
    space = search_space([*params, *command_line])
    assert space.distributions == {
        "a": IntDistribution(2, 16),
        "b": CategoricalDistribution([7]),
        "lr": FloatDistribution(0.001, 0.1, log=True),
        "c": CategoricalDistribution([1, 2, 3]),  # range's stop is exclusive, as in Hydra
    }
    assert space.overrides({"a": 4, "b": 7, "lr": 0.01, "c": 2}) == [
        "a=4", "lr=0.01", "c=2", "b=7", "dataset=synthetic", "+extra=1",
    ]  # fmt: skip


def test_killed_study_resumes_keeping_finished_trials_and_rerunning_interrupted(tmp_path: Path) -> None:
    from optuna.trial import TrialState

    from tinyml_exp.study import finished_trials, run_trials

    journal = tmp_path / "study.journal"
    study, space = open_tiny(journal)
    crashed = Launcher(crash_at=2)
    with pytest.raises(KeyboardInterrupt):
        run_trials(study, space, 5, 2, crashed, DIRECTIONS)
    before = {t.number: (t.params, t.values) for t in study.get_trials(states=(TrialState.COMPLETE,))}
    assert len(before) == 2 and len(crashed.batches[1]) == 2  # batch 2 died with its trials RUNNING

    study, space = open_tiny(journal)  # a new process: only the journal file is shared
    assert finished_trials(study) == 2
    interrupted = study.get_trials(states=(TrialState.FAIL,))
    assert [t.user_attrs["interrupted"] for t in interrupted] == [True, True]
    resumed = Launcher()
    run_trials(study, space, 5, 2, resumed, DIRECTIONS)

    assert sum(len(b) for b in resumed.batches) == 3  # 5 - 2 finished, nothing redone
    assert resumed.batches[0] == crashed.batches[1]  # the interrupted trials, same parameters
    after = {t.number: (t.params, t.values) for t in study.get_trials(states=(TrialState.COMPLETE,))}
    assert len(after) == 5 and all(after[n] == before[n] for n in before)
    jobs = [t.user_attrs["hydra_job"] for t in study.trials if "hydra_job" in t.user_attrs]
    assert len(jobs) == len(set(jobs)) == 7 and resumed.first_jobs[0] == 4  # job dirs never reused
    assert all(o[-1] == "seed=7" for b in resumed.batches for o in b)

    done = Launcher()
    run_trials(*open_tiny(journal), 5, 2, done, DIRECTIONS)
    assert done.batches == []  # a finished study runs nothing


def test_models_that_do_not_fit_never_reach_the_front(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from tinyml_exp.study import make_sampler, open_study, run_trials, search_space, write_front

    nsga2 = OmegaConf.create({"_target_": "optuna.samplers.NSGAIISampler", "seed": 0, "population_size": 4})
    study = open_study(tmp_path / "study.journal", "tiny", DIRECTIONS, make_sampler(nsga2))
    space = search_space(["x=int(interval(0, 9))", "y=choice(1, 2, 3)"])
    run_trials(study, space, 12, 4, Launcher(), DIRECTIONS)
    misfits = [t for t in study.trials if t.params["y"] == 3]
    assert misfits and all(t.user_attrs["fits"] is False for t in misfits)
    assert all(t.system_attrs["constraints"] == [1.0] for t in misfits)  # NSGA-II ranks them last
    front = write_front(study, ["sum", "product"], tmp_path / "front.yaml")
    assert front and all(t.params["y"] != 3 for t in front)
    assert "sum:" in (tmp_path / "front.yaml").read_text()


def test_bad_storage_sampler_and_second_owner_are_one_clear_error(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from tinyml_exp.study import journal_path, make_sampler, open_study, own_study

    with pytest.raises(ConfigError, match=r"hydra.sweeper.storage='/no/such/dir/s.journal': directory /no/such/dir does not exist"):  # fmt: skip
        journal_path("/no/such/dir/s.journal", tmp_path)
    with pytest.raises(ConfigError, match="is a URL; give a journal file path"):
        journal_path("sqlite:///optuna.db", tmp_path)
    assert journal_path(None, tmp_path / "sweep") == tmp_path / "sweep" / "optuna_journal.log"
    tpe_with_nsga2_args = OmegaConf.create({"_target_": "optuna.samplers.TPESampler", "population_size": 8})
    with pytest.raises(ConfigError, match=r"hydra.sweeper.sampler: .*'population_size'"):
        make_sampler(tpe_with_nsga2_args)

    owner = own_study(tmp_path / "s.journal")
    with pytest.raises(ConfigError, match=f"is being run by pid {os.getpid()}"):
        own_study(tmp_path / "s.journal")
    owner.close()
    own_study(tmp_path / "s.journal").close()  # free again once its holder let go
    open_tiny(tmp_path / "s.journal")
    with pytest.raises(ConfigError, match=r"optimizes \['minimize', 'maximize'\], sweep.objectives asks for \['maximize'\]"):  # fmt: skip
        open_study(tmp_path / "s.journal", "tiny", ["maximize"])


def test_a_resumed_seeded_sampler_does_not_propose_the_first_trials_again() -> None:
    from omegaconf import OmegaConf
    from optuna.distributions import IntDistribution

    from tinyml_exp.study import make_sampler

    seeded = OmegaConf.create({"_target_": "optuna.samplers.RandomSampler", "seed": 3})
    x = IntDistribution(0, 10**9)
    draw = lambda sampler: sampler.sample_independent(None, None, "x", x)  # noqa: E731
    assert draw(make_sampler(seeded)) == draw(make_sampler(seeded))  # deterministic
    assert draw(make_sampler(seeded, trials_before=4)) != draw(make_sampler(seeded))


@pytest.mark.slow  # ≈ 10 s of CPU: the sweep's MLflow parent run is opened before the sweeper starts
def test_cli_bad_storage_is_one_line_and_exit_1(tmp_path: Path) -> None:
    args = ["-m", "experiment=search", "hydra.sweeper.storage=/no/such/dir/s.journal"]
    args += [f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"hydra.sweep.dir={tmp_path}/sweep"]
    done = run_app(args, tmp_path, timeout=300)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "Traceback" in line or "tinyml-exp:" in line]
    assert errors == [
        "tinyml-exp: hydra.sweeper.storage='/no/such/dir/s.journal': directory /no/such/dir does not exist; "
        "create it or point storage at an existing directory (null: <hydra.sweep.dir>/optuna_journal.log)"
    ]


# search_hil cut down to seconds per trial: synthetic data, a 2-4 filter CNN, 20 device samples.
HIL_TINY = [
    "dataset=synthetic",
    "dataset.num_train=300",
    "dataset.num_test=40",
    "train.epochs=1",
    "evaluate.tflm=false",
    "profile.arena_probe=false",
    "profile.plot=false",
    "benchmark.samples=20",
    "benchmark.cycle_model=false",
    "architecture.filters=int(interval(2, 4))",
    "compression=choice(ptq_int8, prune_constant)",
    "hydra.sweeper.n_trials=3",
    "hydra.sweeper.n_jobs=1",
]


def completed_trials(journal: Path) -> list:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState

    if not journal.exists():
        return []
    study = optuna.load_study(
        study_name="seed_cnn_search_hil", storage=JournalStorage(JournalFileBackend(str(journal)))
    )
    return study.get_trials(states=(TrialState.COMPLETE,))


@pytest.mark.slow
@pytest.mark.firmware
@require_commands("arm-none-eabi-gcc", "qemu-system-arm")
def test_search_hil_killed_half_way_resumes_without_redoing_trials(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    args = ["-m", "experiment=search_hil", *HIL_TINY, f"hydra.sweep.dir={tmp_path}/sweep"]
    args += [f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"cache.dir={tmp_path}/cache"]
    journal = tmp_path / "sweep" / "optuna_journal.log"
    # Its own process group, so SIGKILL takes QEMU with it, as a crash of the machine would.
    proc = subprocess.Popen(
        app_command(*args), cwd=tmp_path, env=app_env(), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 900
        while not completed_trials(journal) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(1)
        assert proc.poll() is None, "the sweep ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    before = {t.number: t.values for t in completed_trials(journal)}
    assert 1 <= len(before) < 3

    done = run_app(args, tmp_path, timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    trials = completed_trials(journal)
    after = {t.number: t.values for t in trials}
    assert len(after) == 3 and all(after[n] == before[n] for n in before)
    assert len(after[min(after)]) == 4  # the experiment's four measured objectives, no default one
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("search_hil").experiment_id])
    parents = sorted(
        (r for r in runs if r.data.tags.get("run_kind") == "sweep_parent"), key=lambda r: r.info.start_time
    )
    resumed = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[-1].info.run_id]
    assert len(resumed) == 3 - len(before) and {r.info.status for r in resumed} == {"FINISHED"}
    assert all("cycles/median" in r.data.metrics and "accuracy/device" in r.data.metrics for r in resumed)
    assert "front:" in (tmp_path / "sweep" / "optimization_results.yaml").read_text()


def test_an_experiments_objectives_replace_the_default() -> None:
    from tests.helpers import compose_config
    from tinyml_exp.config import DEFAULT_OBJECTIVES, sweep_objectives

    hil = compose_config(["experiment=search_hil"], with_hydra=True)
    assert list(sweep_objectives(hil.sweep)) == [
        "accuracy/device", "cycles/median", "flash/firmware_bytes", "ram/firmware_bytes",
    ]  # fmt: skip
    assert hil.hydra.sweeper._target_.endswith("OptunaJournalSweeper")
    assert sweep_objectives(compose_config([]).sweep) == DEFAULT_OBJECTIVES
