"""How many threads one run's TensorFlow, OpenMP and BLAS pools get: the cores its launcher gave it.

Two joblib workers on two cores, each with TensorFlow's default pools (one thread per core, intra
and inter), run four busy threads on two cores; measured here (`benchmarks/worker_threads.py`),
one thread per worker is the fastest setting. The share is decided where the launcher's
settings are known and travels by environment variable, which every launcher's workers inherit:

- joblib: the sweep callback sets `TINYML_EXP_WORKER_CPUS` = usable cores // `n_jobs`;
- Ray: the callback sets it to `hydra.launcher.ray.remote.num_cpus`;
- SLURM: the job's own `SLURM_CPUS_PER_TASK`;
- a single run (no launcher): every usable core.

`runtime.threads` overrides the share (null = that automatic value). It must act before
TensorFlow creates its pools: `limit_threads` is called by the run's first stage; it also sets
`OMP_NUM_THREADS`, the BLAS variables and `TF_NUM_*_THREADS` for the processes a run starts.
Light to import: TensorFlow is imported by `limit_threads` only.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

WORKER_CPUS_ENV = "TINYML_EXP_WORKER_CPUS"
# Libraries that read a thread count from the environment when they start.
_THREAD_ENVS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, which cgroups and taskset narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def worker_share(n_jobs: int | None, cores: int | None = None) -> int:
    """Cores per worker when `n_jobs` workers share the machine (joblib's -1 = one per core)."""
    cores = cores or usable_cores()
    if n_jobs is None or n_jobs == 0:
        return cores
    workers = cores + 1 + n_jobs if n_jobs < 0 else n_jobs  # joblib: -1 = all, -2 = all but one
    return max(1, cores // max(1, min(workers, cores)))


def auto_threads() -> int:
    """The threads the launcher gave this process (see the module's docstring)."""
    for name in (WORKER_CPUS_ENV, "SLURM_CPUS_PER_TASK"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return usable_cores()


def limit_threads(threads: int | None) -> int:
    """Give this process `threads` threads (None = `auto_threads()`) in TensorFlow, OpenMP and
    BLAS; returns the number set. Once TensorFlow's pools exist they keep their size: a reused
    worker process keeps the first run's setting (logged at debug level)."""
    count = auto_threads() if threads is None else int(threads)
    if count < 1:
        from tinyml_exp.errors import ConfigError

        raise ConfigError(f"runtime.threads={threads!r} must be ≥ 1 (or null: the cores the launcher gives)")
    for name in _THREAD_ENVS:
        os.environ[name] = str(count)
    _limit_loaded_pools(count)
    return count


def _limit_loaded_pools(count: int) -> None:
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(count)  # BLAS/OpenMP pools NumPy may have loaded already
    except ImportError:
        pass
    import tensorflow as tf

    threading = tf.config.threading
    for get, set_ in (
        (threading.get_intra_op_parallelism_threads, threading.set_intra_op_parallelism_threads),
        (threading.get_inter_op_parallelism_threads, threading.set_inter_op_parallelism_threads),
    ):
        if get() == count:
            continue
        try:
            set_(count)
        except RuntimeError:  # TensorFlow already initialised its pools (a reused worker)
            log.debug("TensorFlow's thread pools already exist; they keep %d threads", get())
