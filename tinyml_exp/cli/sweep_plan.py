"""Work a sweep's jobs share, done once before the fan-out: their base models.

The sweep callback composes every job's config as the launcher will (the sweeper's parameters and
the command line expanded into one override list per job, each composed by Hydra's own
`load_sweep_config`), collects the distinct base-model cache keys, and trains the missing ones
that more than one job needs in one child process that uses every core. The jobs then read them from the cache: none waits on the
cache lock while another trains, and none trains what another will train too. The cache is the
channel, so on Ray or SLURM `cache.dir` must be storage every node sees (a shared file system);
elsewhere each node trains its own (the lock still makes that safe).

Only Hydra's basic sweeper has a job list before the sweep starts; with another sweeper (Optuna,
Nevergrad) the jobs share the cache as before. A problem here never stops the sweep: it is
logged, and the jobs do the work themselves (and report any error their own way).

Also decided here, where the launcher's settings are known: the cores each worker gets
(`tinyml_exp.runtime`), passed to the workers in an environment variable.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf

from tinyml_exp.runtime import WORKER_CPUS_ENV, usable_cores, worker_share

log = logging.getLogger(__name__)

_BASE_KEYS = ("seed", "dataset", "architecture", "train", "cache")  # what decides a base model


def launcher_kind(config: DictConfig) -> str:
    """The sweep's launcher: "joblib", "ray", "slurm" (submitit), "basic" (Hydra's, jobs in this
    process) or "other"."""
    target = str(config.hydra.launcher.get("_target_", ""))
    if "joblib" in target:
        return "joblib"
    if "ray" in target.lower():
        return "ray"
    if "submitit" in target:
        return "slurm"
    return "basic" if target == "" or "BasicLauncher" in target else "other"


def set_worker_cpus(config: DictConfig) -> int:
    """Set `TINYML_EXP_WORKER_CPUS` from the launcher's config (unless the user set it)."""
    launcher = config.hydra.launcher
    kind = launcher_kind(config)
    if WORKER_CPUS_ENV in os.environ:
        return int(os.environ[WORKER_CPUS_ENV])
    if kind == "joblib":
        cpus = worker_share(launcher.get("n_jobs"))
    elif kind == "ray":
        cpus = int(OmegaConf.select(launcher, "ray.remote.num_cpus", default=None) or 1)
    elif kind == "slurm":
        return 0  # SLURM sets SLURM_CPUS_PER_TASK in the job itself
    else:  # the basic launcher runs jobs one after the other
        cpus = usable_cores()
    os.environ[WORKER_CPUS_ENV] = str(cpus)
    return cpus


def job_overrides(config: DictConfig) -> list[list[str]] | None:
    """Every job's override list, as the basic sweeper will expand them; None for another sweeper."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if "BasicSweeper" not in str(config.hydra.sweeper.get("_target_", "")):
        return None
    params = config.hydra.sweeper.get("params") or {}
    arguments = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    return BasicSweeper.split_arguments(parser.parse_overrides(arguments), None)[0]


def job_configs(config: DictConfig) -> list[DictConfig]:
    """Every job's composed config, as the launcher will compose it, for the jobs whose config
    composes (the others fail in their own job); empty for a sweeper other than the basic one."""
    from hydra.core.global_hydra import GlobalHydra

    loader = GlobalHydra.instance().config_loader()
    composed = []
    _composed.clear()  # only this sweep's jobs: another sweep in the process composes its own
    for overrides in job_overrides(config) or []:
        try:
            job = loader.load_sweep_config(config, list(overrides))
        except Exception as e:  # the job reports its own config error
            log.debug("job %s does not compose here (%s); it will say why", overrides, e)
            continue
        composed.append(job)
        _composed[tuple(overrides)] = job
    return composed


# Jobs composed by `job_configs` (≈ 0.2-0.8 s each), for `longest_first` in the same process.
_composed: dict[tuple[str, ...], DictConfig] = {}


def job_cost(job: DictConfig) -> int:
    """A job's relative cost, for ordering: the fine-tuning epochs its compression method runs
    (the stage that dominates a job: measured 60-70 % of a seed-study job's time)."""
    from tinyml_exp.registry import to_object

    try:
        return int(to_object(job.compression).training_epochs())
    except Exception:  # the job reports its own config error
        return 0


def longest_first(config: DictConfig, batch: Sequence[Sequence[str]]) -> list[Sequence[str]]:
    """`batch` with its most expensive jobs first, equals in their order: with fewer workers than
    jobs, a long job started last would run alone at the end while the other workers idle."""
    from hydra.core.global_hydra import GlobalHydra

    loader = GlobalHydra.instance().config_loader()
    costs = []
    for overrides in batch:
        try:
            job = _composed.get(tuple(overrides)) or loader.load_sweep_config(config, list(overrides))
        except Exception:  # the job reports its own config error
            job = None
        costs.append(0 if job is None else job_cost(job))
    return [batch[i] for i in sorted(range(len(batch)), key=lambda i: -costs[i])]


def base_configs(
    config: DictConfig, jobs: list[DictConfig] | None = None
) -> dict[str, tuple[DictConfig, int]]:
    """{cache key: (the part of a job's config that decides its base model, how many jobs need
    it)} over the sweep's jobs (`jobs`: their composed configs, else composed here)."""
    from tinyml_exp.models.base_model import base_model_key

    found: dict[str, tuple[DictConfig, int]] = {}
    for job in job_configs(config) if jobs is None else jobs:
        try:
            part = OmegaConf.masked_copy(job, list(_BASE_KEYS))
            OmegaConf.resolve(part)
        except Exception as e:  # the job reports its own config error
            log.debug("job config does not resolve here (%s); it will say why", e)
            continue
        if part.cache.enabled:
            key = base_model_key(part)
            found[key] = (found.get(key, (part, 0))[0], found.get(key, (part, 0))[1] + 1)
    return found


def prepare_base_models(config: DictConfig, jobs: list[DictConfig] | None = None) -> dict[str, Any]:
    """Train (in a child process) the base models the sweep's jobs need and the cache lacks;
    returns figures for the parent run's tags. `jobs`: the jobs' composed configs (`job_configs`)."""
    from tinyml_exp.models.cache import ModelCache

    start = time.perf_counter()
    wanted = base_configs(config, jobs)
    # A base model only one job needs is trained by that job, in parallel with the others (a
    # sweep over seeds); one several jobs need is trained here, once, with every core.
    missing = [
        part for key, (part, jobs) in wanted.items() if jobs > 1 and not ModelCache(part.cache.dir).has(key)
    ]
    if missing:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from tinyml_exp.cli.sweep_workers import exit_without_teardown
        from tinyml_exp.models.base_model import prepare

        # A fresh process: the launcher's own process stays free of TensorFlow and its memory.
        # It leaves without tearing TensorFlow down (measured ≈ 10 s the launcher waited for).
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=exit_without_teardown)
        with pool:
            for key in pool.map(prepare, missing):
                log.info("base model %s trained for the sweep's jobs", key)
    return {
        "sweep.base_models": len(wanted),
        "sweep.base_models_shared": sum(jobs > 1 for _, jobs in wanted.values()),
        "sweep.base_models_trained": len(missing),
        "sweep.base_models_s": f"{time.perf_counter() - start:.1f}",
    }
