"""The pipeline logs what stages return. A full tiny run through every stage (firmware on QEMU,
benchmark on a few samples): the metric names it logs are the README's list, and its measured
count calibrates the next run's estimate. A failing stage's partial result is logged first."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import compose_config, require_commands, tiny_overrides

FULL_RUN = [
    pytest.mark.slow,
    pytest.mark.firmware,
    require_commands("arm-none-eabi-gcc", "make", "qemu-system-arm"),
]

README = Path(__file__).resolve().parents[1] / "README.md"


_LAYERS_ONLY = "- benchmark with `benchmark.layers=true` only:"


def _readme_metric_items(layers_only: bool) -> list[str]:
    text = README.read_text()
    block = text.split("<!-- metric-names: begin -->", 1)[1].split("<!-- metric-names: end -->", 1)[0]
    items = re.split(r"\n(?=- )", block.strip())
    chosen = [item for item in items if item.startswith(_LAYERS_ONLY) == layers_only]
    return re.findall(r"`([^`\s]+/[^`\s]+)`", "\n".join(chosen))


def readme_metric_names() -> set[str]:
    """The names every run of the full pipeline logs (`benchmark.layers=true` adds more)."""
    return set(_readme_metric_items(layers_only=False))


def readme_layer_metric_patterns() -> list[re.Pattern[str]]:
    """What `benchmark.layers=true` adds: its names, and its families (`<...>`: one name part)."""
    return [
        re.compile(
            "".join(r"[a-z0-9_]+" if p.startswith("<") else re.escape(p) for p in re.split(r"(<[^>]+>)", n))
        )
        for n in _readme_metric_items(layers_only=True)
    ]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory):
    """The same config twice, with `profile.calibration_file` set (empty at first); (client,
    first run, second run, the calibration file)."""
    from tinyml_exp.pipeline import run_experiment

    tmp = tmp_path_factory.mktemp("pipeline")
    points = tmp / "points.yaml"
    points.touch()
    overrides = [
        *tiny_overrides(tmp),
        "compression=ptq_int8",
        "target=qemu_netduinoplus2",
        "benchmark.enabled=true",
        "benchmark.samples=12",
        "benchmark.progress=false",
        f"profile.calibration_file={points}",
    ]
    first = run_experiment(compose_config(overrides), tmp / "out1")
    second = run_experiment(compose_config(overrides), tmp / "out2")
    client = MlflowClient(f"sqlite:///{tmp}/mlflow.db")
    return client, client.get_run(first.run_id), client.get_run(second.run_id), points


def full_run(test):
    for mark in reversed(FULL_RUN):
        test = mark(test)
    return test


@full_run
def test_the_metric_names_a_run_logs_are_the_readme_list(two_runs) -> None:
    _, first, _, _ = two_runs
    assert first.info.status == "FINISHED"
    listed, logged = readme_metric_names(), set(first.data.metrics)
    assert logged == listed, (
        f"logged, not in README: {sorted(logged - listed)}; in README, not logged: {sorted(listed - logged)}"
    )


@full_run
def test_a_benchmark_run_calibrates_the_next_runs_estimate(two_runs) -> None:
    from tinyml_exp.profile.calibration import load_points

    _, first, second, points_file = two_runs
    m1, m2 = first.data.metrics, second.data.metrics
    # no measured point for QEMU before: the fitted per-kernel costs (cgen_costs.json) price it
    assert first.data.tags["cost_model.cgen"].startswith("fitted to QEMU instruction counts")
    [point, _] = load_points(points_file)  # one point per benchmark run
    assert point.backend == "cgen" and point.target == "qemu_netduinoplus2"
    assert point.measured == m1["cycles/median"] and first.info.run_id in point.source
    # the second run's estimate is the first run's measured count scaled onto the same model
    tag = second.data.tags["cost_model.cgen"]
    assert tag.startswith("calibrated ×") and f"measured by run {first.info.run_id}" in tag
    assert m2["cycles/prior_cgen"] == pytest.approx(m1["cycles/estimate_cgen"])
    assert m2["cycles/estimate_cgen"] == pytest.approx(m1["cycles/median"])
    assert abs(m2["error/cycles_estimate_pct"]) < abs(m1["error/cycles_estimate_pct"])
    assert m2["cycles/median"] == m1["cycles/median"]  # QEMU counts instructions: deterministic


def test_a_failing_stage_has_its_partial_result_logged_before_the_run_fails(tmp_path: Path) -> None:
    from tinyml_exp.errors import StageError
    from tinyml_exp.options import Options
    from tinyml_exp.pipeline import RunState, RunSummary, stage
    from tinyml_exp.results import StageResult
    from tinyml_exp.tracking import Tracker

    cfg = compose_config(tiny_overrides(tmp_path))
    tracker = Tracker(cfg.tracking.uri, "partial")
    partial = StageResult(metrics={"benchmark/samples": 3.0}, tags={"benchmark.complete": "false"})
    with pytest.raises(StageError, match="stopped"), tracker:
        run = RunState(cfg, Options.from_config(cfg), tracker, RunSummary(tracker.run_id, tmp_path), tmp_path)
        with stage("benchmark", run):
            raise StageError("stopped after 3 samples", partial=partial)
    logged = MlflowClient(cfg.tracking.uri).get_run(tracker.run_id)
    assert logged.info.status == "FAILED" and logged.data.tags["stage_failed"] == "benchmark"
    assert (
        logged.data.metrics["benchmark/samples"] == 3.0 and logged.data.tags["benchmark.complete"] == "false"
    )
    assert "time/benchmark_s" not in logged.data.metrics  # a failed stage has no time
