"""The report's MLPerf Tiny table (tinyml_exp/report/mlperf.py), from runs as MLflow returns them."""

from __future__ import annotations

from tinyml_exp.report import Run
from tinyml_exp.report.mlperf import PUBLISHED_SOURCE, write_mlperf_table


def _run(architecture: str, **metrics: float) -> Run:
    tags = {"architecture": architecture, "cycles_unit": "instructions"}
    return Run("id-" + architecture, architecture, "FINISHED", dict(metrics), tags, {})


def test_the_table_has_the_measured_figures_beside_the_published_ones(tmp_path) -> None:
    resnet = _run(
        "resnet8",
        **{
            "macs/total": 12_501_632.0,
            "cycles/median": 25_001_264.0,
            "ram/cgen_activation_bytes": 33_648.0,
            "ram/tflm_arena_bytes": 55_952.0,
            "flash/firmware_bytes": 99_328.0,
            "agreement/device_vs_tflite_exact": 1.0,
            "benchmark/samples": 50.0,
        },
    )
    seed = _run("seed_cnn", **{"macs/total": 93_288.0})
    [md, csv_path] = write_mlperf_table([seed, resnet], tmp_path)
    text = md.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| IC resnet8"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:11] == [
        "12,501,632",
        "25,001,264 instr",
        "2.00",
        "",  # no cycle model in this run
        "33,648",
        "55,952",
        "0.60",
        "99,328",
        "yes (100% of 50)",
    ]
    assert cells[11:] == ["6.8", "1.6", "1.6"]
    assert "(published)" in text.splitlines()[2] and PUBLISHED_SOURCE in text
    assert "seed_cnn" not in text and csv_path.read_text().count("\n") == 2
    assert write_mlperf_table([seed], tmp_path / "none") == []  # no MLPerf model, no table
