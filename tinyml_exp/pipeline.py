"""One run, end to end: data → base model (trained or cached) → compress → export → preflight →
evaluate → profile → firmware → benchmark.

Each stage is a verb that returns a result (`tinyml_exp.results.StageResult`) and logs nothing;
`STAGES` is the recipe, read top to bottom, and `run_experiment` runs it inside one MLflow run:
for each stage, run it, log its result (also the partial one a failing stage's `StageError`
carries), time it, and tag the one that fails. Figures that need two results (estimate versus
measurement) are computed here, once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from tinyml_exp import interrupt
from tinyml_exp.compress import FineTuneSettings, compress, parameter_counts
from tinyml_exp.data import DatasetSplits
from tinyml_exp.errors import StageError, StageInterrupted
from tinyml_exp.options import Options
from tinyml_exp.results import StageResult
from tinyml_exp.tasks import CLASSIFICATION_ONLY, task_of
from tinyml_exp.tracking import Tracker, config_fingerprint, flatten
from tinyml_exp.tracking.model import deployable_files
from tinyml_exp.tracking.provenance import provenance_tags
from tinyml_exp.tracking.summary import summary_line
from tinyml_exp.validate import evaluation_backends, validate

__all__ = ["STAGES", "Options", "RunSummary", "estimate_errors_of", "run_experiment"]

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    run_id: str
    out_dir: Path
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)
    skipped: bool = False  # sweep.resume found the same config already FINISHED
    tracking_uri: str = ""  # where the run was logged (tracking.fallback_uri when it took over)
    experiment_id: str = ""


@dataclass
class RunState:
    """What one run's stages share: the config, the group options, the tracker, and each stage's
    result once it has run (`results[name]`)."""

    cfg: DictConfig
    options: Options
    tracker: Tracker
    summary: RunSummary
    out_dir: Path
    results: dict[str, Any] = field(default_factory=dict)
    data: DatasetSplits | None = None

    @property
    def stem(self) -> str:
        """File-name stem of the run's artifacts, e.g. `seed_cnn_ptq_int8` (a `.tflite` file's own name)."""
        if not self.options.model.trains:
            return self.options.model.stem()
        return f"{self.options.architecture.name}_{self.options.compression.name}"

    @property
    def from_logits(self) -> bool:
        return not self.options.architecture.softmax_output

    def log(self, result: StageResult) -> None:
        """Log a result on the run and keep its figures for the run's summary."""
        self.tracker.log_result(result)
        self.summary.metrics.update(result.to_metrics())
        self.summary.tags.update(result.to_tags())


def estimate_errors_of(profile: StageResult | None, measured: StageResult) -> dict[str, float]:
    """`error/*_estimate_pct`: the profile's estimates against a measuring result's figures
    (firmware sizes, device counts); empty without a profile."""
    if profile is None:
        return {}
    from tinyml_exp.profile.verdict import estimate_errors

    return estimate_errors({**profile.metrics, **measured.metrics})


def _record(run: RunState, name: str, result: StageResult) -> None:
    run.results[name] = result
    run.log(result)
    if name == "data" and run.data is not None:
        run.tracker.log_datasets(run.data, run.options.dataset.path)
    if name in ("firmware", "benchmark"):
        errors = estimate_errors_of(run.results.get("profile"), result)
        run.log(StageResult(metrics=errors))


@contextmanager
def stage(name: str, run: RunState) -> Iterator[None]:
    """Time a stage; when it raises, log the partial result it carries and tag the run with the
    stage's name before the error goes on."""
    start = time.perf_counter()
    log.info("stage %s", name)
    try:
        interrupt.check()
        yield
        interrupt.check()
    except (StageError, StageInterrupted) as e:
        if e.partial is not None:
            _record(run, name, e.partial)
        run.tracker.set_tags({"stage_failed": name})
        raise
    except BaseException:
        run.tracker.set_tags({"stage_failed": name})
        raise
    run.log(StageResult(metrics={f"time/{name}_s": time.perf_counter() - start}))


def _load_data(run: RunState) -> StageResult:
    from tinyml_exp.runtime import limit_threads

    run.data = run.options.dataset.load(run.cfg.seed)  # NumPy only: a missing dataset says so first
    # Before any TensorFlow work: TensorFlow's pools get their size when TensorFlow starts.
    threads = limit_threads(run.cfg.runtime.threads)
    metrics = {f"data/{k}_samples": v for k, v in run.data.sizes().items()}
    return StageResult(metrics=metrics, tags={"runtime.threads": str(threads)})


def _train(run: RunState) -> StageResult:
    from tinyml_exp.models.base_model import train

    # The callback logs each epoch as it ends: live curves, and an interrupted run keeps them.
    callback = run.tracker.keras_callback("train")
    result = train(run.cfg, run.data, run.options.architecture, run.from_logits, [callback])
    if result.base.from_cache:  # no training ran: log the cached curves
        run.tracker.log_history(result.history, "train")
    return result


def _compress(run: RunState) -> StageResult:
    train = run.cfg.train
    settings = FineTuneSettings(
        train.optimizer, train.batch_size, run.from_logits, train.verbose, run.cfg.seed
    )
    return compress(run.options.compression, run.results["train"].base.model, run.data, settings)


def _export(run: RunState) -> StageResult:
    from tinyml_exp.export import export

    if not run.options.model.trains:  # model=tflite_file: the file is the export
        from tinyml_exp.sources.tflite_file import export_file

        result = export_file(run.options.model, run.data, run.out_dir, run.stem, run.cfg.export.c_header)
        run.summary.artifacts.update(result.paths)
        return result
    compressed, reference = run.results["compress"], run.results["train"].reference
    result = export(
        compressed.model, compressed.recipe, run.data, run.out_dir, run.stem, run.cfg.export, reference
    )
    run.summary.artifacts.update(result.paths)
    compressed.check_tflite(result)  # do the promises hold on the .tflite? (raises if not)
    return result


def _preflight(run: RunState) -> StageResult:
    """Operator support per backend, before anything runs the model."""
    from tinyml_exp.profile.stage import preflight

    return preflight(run.results["export"].tflite, run.out_dir, run.stem)


def _evaluate(run: RunState) -> StageResult:
    from tinyml_exp.evaluate import evaluate

    if not run.options.model.trains:  # model=tflite_file: the interpreters only, if the data fits
        from tinyml_exp.sources.tflite_file import evaluate_file

        export = run.results["export"]
        backends = evaluation_backends(run.cfg.evaluate, export.recipe).backends
        return evaluate_file(export, run.data, backends, run.cfg.evaluate.tflm_samples)
    compressed = run.results["compress"]
    chosen = evaluation_backends(run.cfg.evaluate, compressed.recipe)
    tflite = run.results["export"].tflite
    if (task := task_of(run.options.architecture)) != "classification":  # mse/*, roc_auc/*
        from tinyml_exp.evaluate.regression import evaluate_regression

        result = evaluate_regression(compressed.model, tflite, run.data, chosen.backends, task)
    else:
        samples = run.cfg.evaluate.tflm_samples
        result = evaluate(compressed.model, tflite, run.data, run.from_logits, chosen.backends, samples)
    if "accuracy/keras" in result.metrics:
        base = run.results["train"].reference["accuracy_keras"]
        result.metrics["accuracy/delta_vs_base"] = result.metrics["accuracy/keras"] - base
    result.metrics.update(parameter_counts(compressed.model))
    if chosen.tflm_skipped:
        result.tags["evaluate.tflm_skipped"] = chosen.tflm_skipped
    return result


def _profile(run: RunState) -> StageResult:
    from tinyml_exp.profile.stage import profile

    return profile(run.cfg, run.options.target, run.results["export"].tflite, run.out_dir, run.stem)


def _build_firmware(run: RunState) -> StageResult:
    """Generated C → ELF → arm-none-eabi-size."""
    from tinyml_exp.hardware.firmware_stage import build_firmware

    return build_firmware(run.cfg, run.options.target, run.results["export"].tflite, run.out_dir, run.stem)


def _benchmark(run: RunState) -> StageResult:
    """QEMU or a real board: the test set over the serial link; the measured median becomes a
    calibration point when `profile.calibration_file` is set."""
    from tinyml_exp.hardware.bench_stage import benchmark

    tflite, firmware = run.results["export"].tflite, run.results["firmware"]
    profile = run.results.get("profile")  # its per-layer estimates sit beside benchmark.layers' counts
    result = benchmark(run.cfg, run.options.target, tflite, firmware, run.data, run.out_dir, profile)
    if task_of(run.options.architecture) != "classification":  # agreement and bit-exactness only
        for name in CLASSIFICATION_ONLY:
            result.metrics.pop(name, None)
    _save_calibration_point(run, result)
    return result


def _save_calibration_point(run: RunState, bench: Any) -> None:
    """The firmware runs the generated C: the point is for the cgen backend, in the target's
    count unit (the unit of `cycles/median`)."""
    profile, path = run.results.get("profile"), run.cfg.profile.calibration_file
    if not path or profile is None or "cycles/median" not in bench.metrics:
        return
    from tinyml_exp.profile.calibration import append_point
    from tinyml_exp.profile.profiler import calibration_point

    source = (
        f"measured by run {run.tracker.run_id}: {run.stem} on {run.options.target.name}, "
        f"median of {int(bench.metrics['benchmark/samples'])} samples"
    )
    point = calibration_point(profile, bench.metrics["cycles/median"], source, backend="cgen")
    count = append_point(point, path)
    log.info("calibration point written to %s (%d points)", path, count)


def _firmware_wanted(run: RunState) -> bool:
    from tinyml_exp.hardware.settings import firmware_wanted

    return firmware_wanted(run.cfg.firmware, run.options.target)


def _benchmark_wanted(run: RunState) -> bool:
    # validate() makes the firmware required when the benchmark is enabled
    from tinyml_exp.sources.tflite_file import MISMATCH_TAG

    fits = MISMATCH_TAG not in run.results["export"].tags  # a .tflite the dataset does not fit
    return run.cfg.benchmark.enabled and "firmware" in run.results and fits


def _always(run: RunState) -> bool:
    return True


def _trains(run: RunState) -> bool:
    return run.options.model.trains  # not for model=tflite_file


# The recipe: (stage name, what it does, whether this run wants it). A new stage is one function
# and one line here.
STAGES: tuple[tuple[str, Callable[[RunState], StageResult], Callable[[RunState], bool]], ...] = (
    ("data", _load_data, _always),
    ("train", _train, _trains),
    ("compress", _compress, _trains),
    ("export", _export, _always),
    ("preflight", _preflight, _always),
    ("evaluate", _evaluate, _always),
    ("profile", _profile, lambda run: run.cfg.profile.enabled),
    ("firmware", _build_firmware, _firmware_wanted),
    ("benchmark", _benchmark, _benchmark_wanted),
)


def _start(run: RunState, fingerprint: str, overrides: list[str] | None) -> None:
    """What every run logs first: identity tags, provenance, the config."""
    options, tracker = run.options, run.tracker
    identity = {
        "dataset": options.dataset.name,
        "architecture": options.architecture.name,
        "compression": options.compression.name,
        "target": options.target.name,
        "model": options.model.name,
    }
    run.summary.tags.update(identity)  # the run's summary line names what ran
    tracker.set_tags({"config_hash": fingerprint, **identity, **provenance_tags(overrides)})
    tracker.log_params(flatten(run.cfg))
    tracker.log_text(OmegaConf.to_yaml(run.cfg, resolve=True), "config.yaml")


def run_experiment(cfg: DictConfig, out_dir: Path, overrides: list[str] | None = None) -> RunSummary:
    options = Options.from_config(cfg)
    validate(cfg, options)
    out_dir.mkdir(parents=True, exist_ok=True)
    made = (
        [options.architecture.name, options.compression.name]
        if options.model.trains
        else [options.model.stem()]
    )
    run_name = cfg.tracking.run_name or "-".join([*made, options.dataset.name, options.target.name])
    tracker = Tracker(cfg.tracking.uri, cfg.tracking.experiment, run_name, cfg.tracking.fallback_uri)
    fingerprint = config_fingerprint(cfg)
    if cfg.sweep.resume and (finished := tracker.find_finished({"config_hash": fingerprint})):
        run_id = finished.info.run_id
        log.info("sweep.resume: skipping, this config already FINISHED as run %s", run_id)
        tracker.mark_reused(run_id)
        return RunSummary(
            run_id,
            out_dir,
            dict(finished.data.metrics),
            dict(finished.data.tags),
            skipped=True,
            tracking_uri=tracker.uri,
            experiment_id=finished.info.experiment_id,
        )
    with tracker:
        summary = RunSummary(
            tracker.run_id, out_dir, tracking_uri=tracker.uri, experiment_id=tracker.experiment_id
        )
        run = RunState(cfg, options, tracker, summary, out_dir)
        _start(run, fingerprint, overrides)
        for name, step, wanted in STAGES:
            if wanted(run):
                with stage(name, run):
                    _record(run, name, step(run))
        _log_deployable(run)
        log.info("run %s: %s", tracker.run_id, summary_line(run.summary.metrics, run.summary.tags))
        return run.summary


def _log_deployable(run: RunState) -> None:
    """The `.tflite` and its C as the run's MLflow model (registered when `tracking.register`)."""
    firmware = run.results.get("firmware")
    files = deployable_files(run.results["export"].paths, getattr(firmware, "cgen", None))
    timing = run.tracker.log_deployable(
        files, run.summary.metrics, run.summary.tags, run.cfg.tracking.register
    )
    run.summary.metrics.update(timing)
