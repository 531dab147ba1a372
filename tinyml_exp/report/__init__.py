"""Report: the result-summary table (markdown + CSV), Pareto plots and, when firmware was built,
the flash / instructions bars of a sweep or experiment."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from tinyml_exp.report.bars import plot_device_bars
from tinyml_exp.report.mlperf import write_mlperf_table
from tinyml_exp.report.pareto import plot_pareto
from tinyml_exp.report.table import Run, write_table

log = logging.getLogger(__name__)

__all__ = ["ReportResult", "Run", "collect_runs", "write_report"]


@dataclass
class ReportResult:
    runs: list[Run]
    paths: list[Path]


def collect_runs(uri: str, experiment: str | None = None, parent_run_id: str | None = None) -> list[Run]:
    """Runs of a sweep (children of `parent_run_id`) or of a whole experiment, oldest first,
    without the sweep parents themselves."""
    from mlflow.tracking import MlflowClient

    from tinyml_exp.tracking.sweep import REUSED_TAG_PREFIX

    client = MlflowClient(uri)
    if parent_run_id is not None:
        experiment_ids = [client.get_run(parent_run_id).info.experiment_id]
        # The sweep's own children, and runs of earlier sweeps it reused when resuming.
        queries = [
            f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
            f"tags.`{REUSED_TAG_PREFIX}{parent_run_id}` = 'true'",
        ]
    else:
        found = client.get_experiment_by_name(experiment or "tinyml_exp")
        if found is None:
            raise ValueError(f"no MLflow experiment named {experiment!r} in {uri}")
        experiment_ids, queries = [found.experiment_id], [""]
    runs = {}
    for query in queries:
        token = None
        while True:
            page = client.search_runs(experiment_ids, query, max_results=1000, page_token=token)
            runs.update({r.info.run_id: r for r in page})
            token = page.token
            if not token:
                break
    ordered = sorted(runs.values(), key=lambda r: r.info.start_time)
    return [
        Run(
            r.info.run_id,
            r.info.run_name or "",
            r.info.status,
            dict(r.data.metrics),
            dict(r.data.tags),
            dict(r.data.params),
        )
        for r in ordered
        if r.data.tags.get("run_kind") != "sweep_parent"
    ]


def write_report(
    uri: str, out_dir: Path, experiment: str | None = None, parent_run_id: str | None = None
) -> ReportResult:
    from tinyml_exp.tracking import resolve_tracking_uri

    runs = collect_runs(resolve_tracking_uri(uri), experiment, parent_run_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = write_table(runs, out_dir)
    paths += write_mlperf_table(runs, out_dir)
    finished = [r for r in runs if r.status == "FINISHED"]
    paths += plot_pareto(finished, out_dir)
    paths += plot_device_bars(finished, out_dir)
    log.info("report of %d runs written to %s", len(runs), out_dir)
    return ReportResult(runs, paths)
