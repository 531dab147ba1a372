"""Sweep speed parts: batched TFLite equals one-at-a-time, TFLM on a stated sample, thread shares,
and the sweep's job list composed before the fan-out."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.helpers import compose_config, trained_seed_cnn
from tinyml_exp.evaluate import evaluate, run_tflite
from tinyml_exp.evaluate.batching import any_batch
from tinyml_exp.export.tflite import TFLiteRecipe, convert
from tinyml_exp.runtime import WORKER_CPUS_ENV, auto_threads, limit_threads, worker_share


@pytest.fixture(scope="module")
def trained():
    return trained_seed_cnn()


@pytest.mark.parametrize("quantize", ["none", "int8", "dynamic", "float16"])
def test_batched_tflite_gives_the_one_at_a_time_outputs(trained, quantize: str) -> None:
    model, data, _ = trained
    tflite = convert(model, TFLiteRecipe(quantize), data.x_train[:50])
    assert any_batch(tflite) is not None  # the seed CNN's RESHAPE can be relaxed
    x = data.x_test[:300]  # 300 = one batch of 256 and a padded tail
    one_at_a_time = run_tflite(tflite, x, batch=1)
    batched = run_tflite(tflite, x, batch=256)
    assert batched.shape == one_at_a_time.shape == (300, 10)
    np.testing.assert_array_equal(batched.argmax(axis=1), one_at_a_time.argmax(axis=1))
    np.testing.assert_array_equal(batched, one_at_a_time)


def test_tflm_runs_on_the_stated_sample_and_says_so(trained) -> None:
    model, data, _ = trained
    tflite = convert(model, TFLiteRecipe("int8"), data.x_train[:50])
    m = evaluate(model, tflite, data, from_logits=True, tflm_samples=120).metrics
    assert m["evaluate/tflm_samples"] == 120
    assert m["evaluate/tflite_samples"] == m["evaluate/keras_samples"] == len(data.y_test)
    assert m["agreement/tflm_vs_tflite"] > 0.98  # on the 120 images TFLM ran
    full = evaluate(None, tflite, data, from_logits=True).metrics
    assert full["evaluate/tflm_samples"] == len(data.y_test)


def test_a_worker_keeps_the_splits_it_loaded_read_only() -> None:
    from tinyml_exp.data.base import keep_loaded
    from tinyml_exp.data.synthetic import SyntheticDataset

    small = SyntheticDataset(name="synthetic", class_names=[f"c{i}" for i in range(10)], num_train=60)
    assert small.load(0) is not small.load(0)  # the default: every load reads again
    keep_loaded(True)
    try:
        first = small.load(0)
        assert small.load(0) is first and not first.x_train.flags.writeable
        assert small.load(1) is not first  # another seed (or option) is another split
        other = SyntheticDataset(name="synthetic", class_names=small.class_names, num_train=80)
        assert len(other.load(1).y_train) + len(other.load(1).y_val) == 80
    finally:
        keep_loaded(False)
    assert small.load(0) is not first


def test_only_joblib_workers_settle_as_workers(monkeypatch) -> None:
    import tinyml_exp.cli.sweep_workers as workers
    import tinyml_exp.data.base as base

    workers.settle_in_worker()  # the launching process (here: pytest's) keeps its normal exit
    assert not workers._exit_hook_installed and not base._keep


def test_worker_share_divides_the_cores_among_the_workers() -> None:
    assert worker_share(2, cores=2) == 1
    assert worker_share(-1, cores=4) == 1  # joblib -1: one worker per core
    assert worker_share(2, cores=8) == 4
    assert worker_share(-2, cores=8) == 1  # all but one: 7 workers, 1 core each
    assert worker_share(None, cores=8) == 8


def test_limit_threads_follows_the_launchers_share(monkeypatch) -> None:
    import tensorflow as tf

    monkeypatch.setenv(WORKER_CPUS_ENV, "1")
    assert auto_threads() == 1
    assert limit_threads(None) == 1
    assert os.environ["OMP_NUM_THREADS"] == "1" and os.environ["TF_NUM_INTRAOP_THREADS"] == "1"
    # TensorFlow's pools already exist in this process (the fixture trained a model): they keep
    # their size, and limit_threads says so instead of failing.
    assert tf.config.threading.get_intra_op_parallelism_threads() in (0, 1)


def test_runtime_threads_must_be_positive() -> None:
    from tinyml_exp.errors import ConfigError

    with pytest.raises(ConfigError, match=r"runtime\.threads"):
        limit_threads(0)
    assert compose_config().runtime.threads is None


@pytest.mark.slow
def test_a_sweep_trains_its_shared_base_model_before_the_jobs_start(tmp_path) -> None:
    from tests.test_sweeps import all_runs, run_sweep

    run_sweep(
        tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "compression=none,ptq_int8,ptq_float16"
    )
    _, [parent], children = all_runs(f"sqlite:///{tmp_path}/mlflow.db")
    tags = parent.data.tags
    assert tags["sweep.base_models"] == "1" and tags["sweep.base_models_trained"] == "1"
    assert tags["sweep.worker_cpus"] == str(max(1, len(os.sched_getaffinity(0)) // 2))
    assert len(children) == 3
    assert {r.data.tags["base_model.from_cache"] for r in children} == {"True"}  # no job trained
    assert {r.data.tags["runtime.threads"] for r in children} == {tags["sweep.worker_cpus"]}


@pytest.mark.slow
def test_base_models_only_one_job_needs_are_trained_by_their_jobs(tmp_path) -> None:
    from tests.test_sweeps import all_runs, run_sweep

    run_sweep(tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1")
    _, [parent], children = all_runs(f"sqlite:///{tmp_path}/mlflow.db")
    assert parent.data.tags["sweep.base_models"] == "2"
    assert parent.data.tags["sweep.base_models_trained"] == "0"
    assert {r.data.tags["base_model.from_cache"] for r in children} == {"False"}


def test_the_sweep_plan_sees_every_job_of_the_course_exercise() -> None:
    """glob(*) from the experiment, expanded as the basic sweeper will: 12 jobs, one base model."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    from tinyml_exp.cli.sweep_plan import base_configs, job_overrides
    from tinyml_exp.config import config_dir, option_names, store_schemas

    store_schemas()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("config", ["experiment=seed_exercise6"], return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        jobs = job_overrides(cfg)
        swept = sorted(o for job in jobs for o in job if o.startswith("compression="))
        assert swept == [f"compression={n}" for n in option_names("compression")]
        [(part, count)] = base_configs(cfg).values()
        assert count == len(jobs) and part.train.epochs == 4


def test_the_default_sweeper_launches_the_longest_jobs_first() -> None:
    """The seed study's jobs ordered by their fine-tuning epochs (the 4-epoch ones first, the
    post-training methods last); an experiment's own sweeper still wins over the default."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    from tinyml_exp.cli.sweep_plan import job_configs, job_cost, job_overrides, longest_first
    from tinyml_exp.config import config_dir, store_schemas

    store_schemas()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("config", ["experiment=seed_exercise6"], return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        assert cfg.hydra.sweeper._target_.endswith("LongestFirstBasicSweeper")
        cost = {job.compression.name: job_cost(job) for job in job_configs(cfg)}  # composed once
        ordered = longest_first(cfg, job_overrides(cfg))
        methods = [o.split("=", 1)[1] for job in ordered for o in job if o.startswith("compression=")]
        assert cost["pcqat"] == 3 and cost["cqat"] == 4  # phases x epochs per phase
        assert cost[methods[0]] == max(cost.values()) == 4
        assert [cost[m] for m in methods] == sorted(cost.values(), reverse=True)
        assert set(methods[-4:]) == {"none", "ptq_int8", "ptq_dynamic", "ptq_float16"}
        hil = compose("config", ["experiment=search_hil"], return_hydra_config=True)
        assert hil.hydra.sweeper._target_.endswith("OptunaJournalSweeper")
