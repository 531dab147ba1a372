"""Tracking: one MLflow run per job, with params, metrics, tags and artifacts.

MLflow is imported only when a run starts. Relative sqlite URIs are resolved against the
directory the user runs from, and artifacts are stored beside the database.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    from tinyml_exp.data import DatasetSplits
    from tinyml_exp.results import StageResult

log = logging.getLogger(__name__)

_SQLITE = "sqlite:///"
# MLflow truncates longer param values; say so instead of losing the tail silently.
_MAX_PARAM_CHARS = 6000


def resolve_tracking_uri(uri: str, base_dir: Path | None = None) -> str:
    if uri.startswith(_SQLITE) and not uri.startswith(_SQLITE + "/"):
        path = (base_dir or Path.cwd()) / uri[len(_SQLITE) :]
        return _SQLITE + str(path.resolve())
    return uri


def artifact_root_for(uri: str) -> str | None:
    """`<db dir>/mlartifacts` for a sqlite store; None lets a tracking server choose."""
    if uri.startswith(_SQLITE):
        return (Path(uri[len(_SQLITE) :]).parent / "mlartifacts").as_uri()
    return None


def flatten(config: Mapping[str, Any] | DictConfig, prefix: str = "") -> dict[str, str]:
    """Nested config -> {"dataset.name": "fashion_mnist", ...}; lists become their YAML-ish text."""
    if isinstance(config, DictConfig):
        config = OmegaConf.to_container(config, resolve=True)
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            text = "null" if value is None else str(value)
            if len(text) > _MAX_PARAM_CHARS:
                text = text[: _MAX_PARAM_CHARS - 12] + "…(truncated)"
            flat[name] = text
    return flat


def config_fingerprint(cfg: DictConfig) -> str:
    """Hash of the resolved config that decides a run's results (where it is logged, whether a
    sweep resumes, what the terminal shows and Hydra's own settings left out): two runs with equal fingerprints did the same
    work."""
    import hashlib
    import json

    container = OmegaConf.to_container(cfg, resolve=True)
    for key in ("tracking", "sweep", "hydra", "verbose"):
        container.pop(key, None)
    return hashlib.sha256(json.dumps(container, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Tracker:
    """An MLflow run. Use as a context manager: FINISHED on success, FAILED on an error (with the
    reason as a tag), KILLED on Ctrl-C; whatever was logged before is kept in every case."""

    def __init__(
        self, uri: str, experiment: str, run_name: str | None = None, fallback_uri: str | None = None
    ) -> None:
        self.uri = resolve_tracking_uri(uri)
        self.experiment = experiment
        self.run_name = run_name
        self.fallback_uri = resolve_tracking_uri(fallback_uri) if fallback_uri else None
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self._client = None

    def _connect(self) -> str:
        """Open the store (creating it and the experiment on first use); the experiment's id.
        A server that does not answer fails in seconds (TrackingUnreachable naming
        `tracking.uri`), or hands over to `tracking.fallback_uri` when the user set one."""
        if self._client is None:
            from tinyml_exp.tracking.connect import TrackingUnreachable

            try:
                self._client = self._open(self.uri)
            except TrackingUnreachable as e:
                if not self.fallback_uri:
                    raise
                log.warning("%s; logging to tracking.fallback_uri=%s instead", e, self.fallback_uri)
                self.uri = self.fallback_uri
                self._client = self._open(self.uri)
        from tinyml_exp.tracking.connect import ensure_experiment

        self.experiment_id = ensure_experiment(self._client, self.experiment, artifact_root_for(self.uri))
        return self.experiment_id

    @staticmethod
    def _open(uri: str):
        import mlflow
        from mlflow.tracking import MlflowClient

        from tinyml_exp.tracking.connect import is_remote, probe, use_run_http_settings

        client = MlflowClient(uri)
        if is_remote(uri):
            probe(client, uri)
            use_run_http_settings()
        mlflow.set_tracking_uri(uri)
        return client

    def __enter__(self) -> Tracker:
        experiment_id = self._connect()
        from tinyml_exp.tracking.sweep import sweep_context

        run = self._client.create_run(experiment_id, run_name=self.run_name, tags=sweep_context())
        self.run_id = run.info.run_id
        log.info("MLflow run %s (%s) in %s", self.run_id, run.info.run_name, self.uri)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            status = "FINISHED"
        elif issubclass(exc_type, KeyboardInterrupt):
            status = "KILLED"
            self.set_tags({"interrupted": "true"})
        else:
            status = "FAILED"
            self.set_tags({"failure_reason": f"{exc_type.__name__}: {exc}"[:5000]})
        self.close(status)
        return False

    def close(self, status: str) -> None:
        """End the run: FINISHED, FAILED or KILLED (MLflow's statuses)."""
        self._client.set_terminated(self.run_id, status=status)

    def end_running_children(self, status: str) -> int:
        """Close this run's children still RUNNING with `status` (tagged `interrupted`): their
        workers ended with this process (a sweep stopped by Ctrl-C or `kill`), so nobody else
        will. How many were closed."""
        query = f"tags.`mlflow.parentRunId` = '{self.run_id}' and attributes.status = 'RUNNING'"
        children = self._client.search_runs([self.experiment_id], query, max_results=1000)
        for child in children:
            self._client.set_tag(child.info.run_id, "interrupted", "true")
            self._client.set_terminated(child.info.run_id, status=status)
        return len(children)

    def mark_reused(self, run_id: str) -> None:
        """Record that the current sweep reuses a run finished earlier (sweep.resume), so the
        sweep's report includes it."""
        from tinyml_exp.tracking.sweep import REUSED_TAG_PREFIX, sweep_context

        parent = sweep_context().get("mlflow.parentRunId")
        if parent:
            self._client.set_tag(run_id, f"{REUSED_TAG_PREFIX}{parent}", "true")

    def find_finished(self, tags: Mapping[str, str]) -> Any | None:
        """A FINISHED run (mlflow.entities.Run) of this experiment carrying all `tags`, if any."""
        experiment_id = self._connect()
        conditions = [f"tags.`{k}` = '{v}'" for k, v in tags.items()] + ["attributes.status = 'FINISHED'"]
        runs = self._client.search_runs([experiment_id], " and ".join(conditions), max_results=1)
        return runs[0] if runs else None

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow's batch limit
            self._client.log_batch(self.run_id, params=items[i : i + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [
            Metric(k, float(v), now, step or 0)
            for k, v in metrics.items()
            if v is not None and math.isfinite(float(v))
        ]
        for i in range(0, len(items), 1000):
            self._client.log_batch(self.run_id, metrics=items[i : i + 1000])

    def log_history(self, history: Mapping[str, list[float]], prefix: str) -> None:
        """Per-epoch curves (`train/loss`, `train/val_accuracy`, ...) with the epoch as step."""
        for name, values in history.items():
            for epoch, value in enumerate(values):
                self.log_metrics({f"{prefix}/{name}": value}, step=epoch)

    def keras_callback(self, prefix: str):
        """A Keras callback that logs each epoch's metrics as it ends, so curves are live in the UI
        and an interrupted training keeps the epochs it finished."""
        import tf_keras as keras

        tracker = self

        class _EpochLogger(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                tracker.log_metrics({f"{prefix}/{k}": v for k, v in (logs or {}).items()}, step=epoch)

        return _EpochLogger()

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for key, value in tags.items():
            self._client.set_tag(self.run_id, key, str(value))

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self._client.log_artifact(self.run_id, str(path), artifact_path)

    def log_result(self, result: StageResult) -> None:
        """A stage's metrics, tags and artifacts."""
        self.log_metrics(result.to_metrics())
        self.set_tags(result.to_tags())
        for folder, path in result.artifacts:
            self.log_artifact(path, folder)

    def log_text(self, text: str, artifact_file: str) -> None:
        self._client.log_text(self.run_id, text, artifact_file)

    def log_datasets(self, data: DatasetSplits, source_path: str | None) -> None:
        """The run's splits as MLflow dataset inputs (contexts train / validation / test)."""
        import time

        from mlflow.exceptions import MlflowException

        from tinyml_exp.tracking.inputs import dataset_inputs

        inputs = dataset_inputs(data, source_path)
        # Parallel sweep jobs log the same dataset: the store creates its row once, and a job that
        # loses that race gets a UNIQUE-constraint error. The row exists then, so a retry links it.
        for attempt in range(3):
            try:
                self._client.log_inputs(self.run_id, datasets=inputs)
                return
            except MlflowException as e:
                if "UNIQUE constraint" not in str(e) or attempt == 2:
                    raise
                time.sleep(0.2 * (attempt + 1))

    def set_description(self, text: str) -> None:
        """The run page's description (MLflow's `mlflow.note.content` tag)."""
        from tinyml_exp.tracking.inputs import NOTE

        self.set_tags({NOTE: text})

    def log_deployable(
        self,
        files: Mapping[str, Path],
        metrics: Mapping[str, float],
        tags: Mapping[str, str],
        register: str | None = None,
    ) -> dict[str, float]:
        """Finish a successful run for MLflow's UI: the `.tflite` (with `files`' C and headers) as
        the run's MLflow model, registered as `register` when set, and the one-line summary as the
        description. Returns (and logs) the time it took as `time/mlflow_model_s`."""
        import time

        from tinyml_exp.tracking.model import log_tflite_model
        from tinyml_exp.tracking.model import register as register_model
        from tinyml_exp.tracking.summary import key_figures, summary_line

        start = time.perf_counter()
        self.set_description(summary_line(metrics, tags))
        figures = key_figures(metrics, tags)
        try:
            logged = log_tflite_model(self._client, self.run_id, self.experiment_id, files, figures)
            self.set_tags({"mlflow_model.uri": logged.model_uri})
            if register:
                register_model(logged, register, {**figures, "run_id": self.run_id})
                self.set_tags({"mlflow_model.registered": logged.registered})
        except Exception as e:  # the run's figures are all logged: a packaging problem must not fail it
            log.warning("logging the MLflow model failed: %s", e)
            self.set_tags({"mlflow_model.failed": f"{type(e).__name__}: {e}"[:5000]})
        timing = {"time/mlflow_model_s": time.perf_counter() - start}
        self.log_metrics(timing)
        return timing
