"""One MLflow parent run per multirun, opened and closed in the main process by a Hydra callback.

Jobs find the parent through environment variables set before the launcher starts its workers
(joblib/loky, Ray and submitit workers inherit the environment), and record themselves as its
children with MLflow's `mlflow.parentRunId` tag. The parent is closed FINISHED at the end of the
sweep, FAILED when an error escapes it and KILLED on Ctrl-C; the report is written in every case.
When the sweep stops early, the runs of jobs its local workers were still running are closed KILLED
too (the workers die with the sweep; left alone, those runs would stay RUNNING for ever).
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from tinyml_exp import interrupt
from tinyml_exp.tracking.sweep import PARENT_RUN_ENV, SWEEP_ID_ENV

log = logging.getLogger(__name__)


class MlflowSweepCallback(Callback):
    def __init__(self) -> None:
        self._tracker = None
        self._closed = False
        self._uncaught: type[BaseException] | None = None
        self._config: DictConfig | None = None
        self._output_dir: Path | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from tinyml_exp.tracking import Tracker
        from tinyml_exp.tracking.provenance import provenance_tags

        sweep_id = f"{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        tracking = config.tracking
        # Creating the store here, before any worker exists, avoids concurrent first-time schema
        # creation (which corrupts a sqlite store).
        tracker = Tracker(
            tracking.uri, tracking.experiment, f"sweep-{sweep_id}", tracking.get("fallback_uri")
        )
        tracker.__enter__()
        self._tracker, self._config = tracker, config
        self._output_dir = Path(str(config.hydra.sweep.dir))
        sweep = OmegaConf.to_container(config.hydra.sweeper, resolve=False)
        tracker.set_tags(
            {
                "sweep_id": sweep_id,
                "run_kind": "sweep_parent",
                "sweep.launcher": config.hydra.launcher.get("_target_", "basic").rsplit(".", 1)[-1],
                **provenance_tags(list(config.hydra.overrides.task)),
            }
        )
        tracker.log_text(OmegaConf.to_yaml(sweep), "sweep_config.yaml")
        os.environ[PARENT_RUN_ENV] = tracker.run_id
        os.environ[SWEEP_ID_ENV] = sweep_id
        self._install_exit_hooks()
        log.info("sweep %s: MLflow parent run %s", sweep_id, tracker.run_id)
        self._prepare(config)

    def _prepare(self, config: DictConfig) -> None:
        """Before the fan-out: the workers' core share, the joblib workers started and warmed
        while the base models every job needs are trained (`cli/sweep_workers.py`)."""
        from tinyml_exp.cli.sweep_plan import job_configs, prepare_base_models, set_worker_cpus
        from tinyml_exp.cli.sweep_workers import warm_joblib_workers

        tags: dict[str, Any] = {"sweep.worker_cpus": set_worker_cpus(config)}
        warming = None
        try:
            jobs = job_configs(config)
            warming = warm_joblib_workers(config, jobs)
            tags.update(prepare_base_models(config, jobs))
        except Exception as e:  # the jobs train what they need themselves, as without this step
            log.warning("preparing the sweep's base models failed (%s); each job trains its own", e)
            tags["sweep.base_models_failed"] = str(e)[:500]
        if warming is not None:
            warming.finish()
        self._tracker.set_tags(tags)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        # A Ctrl-C swallowed during the previous job still stops the sweep here.
        interrupt.check()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from tinyml_exp.cli.sweep_workers import stop_joblib_workers

        stop_joblib_workers()  # every job has returned: the idle workers exit while the report is made
        self._close("FINISHED")

    def _install_exit_hooks(self) -> None:
        previous_hook = sys.excepthook

        def remember(exc_type, exc, tb):  # runs before atexit for an uncaught exception
            self._uncaught = exc_type
            previous_hook(exc_type, exc, tb)

        sys.excepthook = remember
        atexit.register(self._close_at_exit)

    def _close_at_exit(self) -> None:
        if self._uncaught is None:
            # Hydra turns an uncaught error into sys.exit(1) without the excepthook.
            status = "FAILED"
        else:
            status = "KILLED" if issubclass(self._uncaught, KeyboardInterrupt) else "FAILED"
        self._close(status)

    def _close(self, status: str) -> None:
        if self._closed or self._tracker is None:
            return
        self._closed = True
        tracker = self._tracker
        if status != "FINISHED" and self._workers_end_with_us():
            try:
                ended = tracker.end_running_children("KILLED")
                if ended:
                    log.warning("%d job(s) stopped with the sweep: their runs closed KILLED", ended)
            except Exception as e:  # the parent's own status matters more
                log.warning("could not close the sweep's unfinished job runs: %s", e)
        try:
            self._write_report(tracker)
        except Exception as e:  # a report problem must not hide the sweep's own status
            log.warning("sweep report failed: %s", e)
            tracker.set_tags({"report_failed": str(e)[:500]})
        tracker.close(status)
        if status == "FINISHED":
            from tinyml_exp.cli.sweep_workers import work_finished

            work_finished()
        os.environ.pop(PARENT_RUN_ENV, None)
        os.environ.pop(SWEEP_ID_ENV, None)
        log.info("sweep parent run %s closed %s", tracker.run_id, status)

    def _workers_end_with_us(self) -> bool:
        """Jobs in this process or its joblib workers stop when the sweep does; Ray and SLURM jobs
        may run on and close their own runs."""
        from tinyml_exp.cli.sweep_plan import launcher_kind

        return self._config is None or launcher_kind(self._config) in ("joblib", "basic")

    def _write_report(self, tracker) -> None:
        from collections import Counter

        from tinyml_exp.report import write_report

        out_dir = (self._output_dir or Path.cwd()) / "report"
        result = write_report(tracker.uri, out_dir, parent_run_id=tracker.run_id)
        for path in result.paths:
            tracker.log_artifact(path, "report")
        statuses = Counter(run.status for run in result.runs)
        tracker.set_tags({f"jobs_{status.lower()}": count for status, count in statuses.items()})
        failed = statuses.get("FAILED", 0)
        if failed:
            log.warning(
                "%d of %d jobs FAILED (reasons in their runs' failure_reason tags)", failed, len(result.runs)
            )
