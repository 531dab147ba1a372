"""The joblib workers of a sweep: started, and warmed, while the base model trains; quick to exit.

Measured on this 2-core machine (`benchmarks/sweep_walltime.py`, notes in
`benchmarks/sweep_speed_notes.md`): loky starts its workers only when the launcher submits the
first job, after the base model is trained, and each worker's first job then pays for importing
TensorFlow, MLflow and the stages and for decoding the dataset (10–24 s before the first job's run
exists); at the end each worker spends 7–17 s tearing down TensorFlow's objects while the
launching process waits for it.

So, before the base model trains, `warm_joblib_workers` runs one small task per worker through
joblib with the launcher's own settings: loky keeps that executor and the launcher reuses it
(same arguments, same processes). The task sizes TensorFlow's thread pools as the jobs will
(`runtime.threads`), imports what the stages import, keeps the decoded dataset for the jobs of
that process (`tinyml_exp.data.base.keep_loaded`), and makes the worker leave without the
interpreter's teardown once every log line is flushed (`exit_without_teardown`): by then every
job's figures are in the tracking store, each job closed its own run.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
import os
import sys
import threading
from typing import Any

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

_exit_hook_installed = False
_work_finished = False
_KEEP_ALIVE_S = 120.0
# What a job's stages import on first use, TensorFlow's (after the pools are sized) and the rest.
_TENSORFLOW_MODULES = ("tf_keras", "tensorflow_model_optimization")
_STAGE_MODULES = (
    "matplotlib",
    "mlflow",
    "mlflow.pyfunc",
    "mlflow.data",
    "tinyml_exp.pipeline",
    "tinyml_exp.compress",
    "tinyml_exp.evaluate",
    "tinyml_exp.export",
    "tinyml_exp.profile.stage",
    "tinyml_exp.hardware.firmware_stage",
    "tinyml_exp.tracking.inputs",
    "tinyml_exp.tracking.model",
)


def _flush() -> None:
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed stream: nothing to flush
            stream.flush()


def exit_without_teardown() -> None:
    """In a worker process: at exit, flush the log handlers and the standard streams, then end the
    process at once (the exit hooks registered before this one and the interpreter's teardown are
    skipped; nothing of a run is left in them, the run's tracker writes synchronously)."""
    global _exit_hook_installed
    if _exit_hook_installed:
        return
    _exit_hook_installed = True

    def leave() -> None:
        _flush()
        os._exit(0)

    atexit.register(leave)  # registered last, so it runs first


def work_finished() -> None:
    """Say that this process's run, or its sweep, ended normally (see `leave_if_finished`)."""
    global _work_finished
    _work_finished = True


def leave_if_finished() -> None:
    """In the launching process, once the app returned: when its run or sweep ended normally,
    wait for the joblib workers, flush, and end without the interpreter's teardown (measured 6 s
    on a loaded machine for MLflow's and Matplotlib's objects, more with TensorFlow's). After an
    error the normal exit runs, with the hooks that close a sweep's parent run."""
    if not _work_finished:
        return
    stop_joblib_workers(wait=True)
    _flush()
    os._exit(0)


def settle_in_worker() -> None:
    """In a loky worker (joblib's processes; not Ray's, SLURM's or the launching process): keep
    the loaded dataset for the next jobs, and exit without the teardown. Idempotent."""
    import multiprocessing

    if multiprocessing.current_process().name.startswith("LokyProcess"):
        from tinyml_exp.data.base import keep_loaded

        keep_loaded(True)
        exit_without_teardown()


def warm_worker(
    hydra_state: Any, threads: int | None, dataset: Any | None, seed: int, tracking_uri: str | None
) -> int:
    """One worker's warm-up (runs in the worker); its process id. `hydra_state`: Hydra's
    singletons, as every job receives them; unpickling them imports Hydra and its plugins."""
    from tinyml_exp.runtime import limit_threads

    del hydra_state
    settle_in_worker()
    if threads is not None:  # the jobs agree on their thread count: size the pools now
        limit_threads(threads)
        for module in _TENSORFLOW_MODULES:
            importlib.import_module(module)
    for module in _STAGE_MODULES:
        importlib.import_module(module)
    if tracking_uri is not None:
        _open_local_store(tracking_uri)
    if dataset is not None:
        try:
            dataset.load(seed)
        except Exception as e:  # the jobs report a dataset problem themselves, in their runs
            log.debug("warm-up: the dataset does not load here (%s)", e)
    return os.getpid()


def _open_local_store(uri: str) -> None:
    """Import MLflow and open a local store (sqlite or a folder): MLflow keeps the store of a URI
    per process, so the jobs find it open. A tracking server is left alone: a slow or absent one
    must not hold the warm-up (the jobs probe it with their own time limits)."""
    from mlflow.tracking import MlflowClient

    from tinyml_exp.tracking import resolve_tracking_uri
    from tinyml_exp.tracking.connect import is_remote

    if is_remote(uri):
        return
    try:
        MlflowClient(resolve_tracking_uri(uri)).search_experiments(max_results=1)
    except Exception as e:  # the jobs report a store problem themselves, in their own way
        log.debug("warm-up: the tracking store does not open here (%s)", e)


def _joblib_settings(config: DictConfig) -> dict[str, Any]:
    """The keyword arguments the joblib launcher gives `joblib.Parallel`, built as it builds them,
    so that loky reuses the warmed executor for the jobs."""
    from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg

    settings = OmegaConf.to_container(config.hydra.launcher, resolve=True)
    settings.pop("_target_", None)
    settings["backend"] = "loky"
    process_joblib_cfg(settings)
    return settings


def _agreed(jobs: list[DictConfig], key: str) -> tuple[bool, Any]:
    """(whether every job has the same value at `key`, that value)."""
    values = {OmegaConf.to_yaml(OmegaConf.create({"v": OmegaConf.select(job, key)})) for job in jobs}
    return len(values) == 1, OmegaConf.select(jobs[0], key)


def warm_joblib_workers(config: DictConfig, jobs: list[DictConfig]) -> Warming | None:
    """Start the joblib workers and warm them in the background (None for another launcher or an
    empty job list); `Warming.finish()` before the launcher starts."""
    if "joblib" not in str(config.hydra.launcher.get("_target_", "")) or not jobs:
        return None
    from hydra.core.singleton import Singleton
    from joblib import delayed

    from tinyml_exp.runtime import auto_threads

    settings = _joblib_settings(config)
    same_threads, threads = _agreed(jobs, "runtime.threads")
    # null = the launcher's share, which the worker reads from the environment as the jobs do
    threads = (auto_threads() if threads is None else int(threads)) if same_threads else None
    same_data, dataset_cfg = _agreed(jobs, "dataset")
    same_seed, seed = _agreed(jobs, "seed")
    dataset = OmegaConf.to_object(dataset_cfg) if same_data and same_seed else None
    same_store, uri = _agreed(jobs, "tracking.uri")
    uri = str(uri) if same_store else None
    hydra_state = Singleton.get_state()

    warming = Warming(settings)
    warming.start(delayed(warm_worker)(hydra_state, threads, dataset, seed, uri) for _ in warming.each)
    return warming


class Warming:
    """The warm-up thread; until `finish`, it hands the workers an empty task every
    `_KEEP_ALIVE_S`, since loky ends a worker idle for 300 s (a base model may train longer)."""

    def __init__(self, settings: dict[str, Any]) -> None:
        from joblib import effective_n_jobs

        self.settings = settings
        self.each = range(effective_n_jobs(settings.get("n_jobs")))
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, tasks: Any) -> None:
        self._thread = threading.Thread(
            target=self._run, args=(list(tasks),), name="warm-workers", daemon=True
        )
        self._thread.start()

    def _run(self, tasks: list[Any]) -> None:
        from joblib import Parallel, delayed

        try:
            pids = Parallel(**self.settings)(tasks)
            log.info("sweep: %d joblib workers warmed (processes %s)", len(self.each), sorted(set(pids)))
            while not self._done.wait(_KEEP_ALIVE_S):
                Parallel(**self.settings)(delayed(os.getpid)() for _ in self.each)
        except Exception as e:  # only time is lost: the launcher starts its workers itself
            log.warning("warming the joblib workers failed (%s); the jobs start them", e)

    def finish(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()


def stop_joblib_workers(wait: bool = False) -> None:
    """After the last job: let the idle workers go now (they exit at once, see
    `exit_without_teardown`), while the report is written, rather than at the interpreter's exit."""
    loky = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(loky, "_executor", None) if loky is not None else None
    if executor is not None:
        executor.shutdown(wait=wait)
