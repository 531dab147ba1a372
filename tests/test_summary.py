"""The run's key figures for people: the terminal table, the one-line description, the registry
tags, the UI hint; and the filter that keeps TensorFlow's native log lines off the terminal."""

from __future__ import annotations

from tinyml_exp.tracking.quiet import is_native_chatter
from tinyml_exp.tracking.summary import format_table, key_figures, summary_line, summary_rows, ui_hint

METRICS = {
    "accuracy/keras": 0.968,
    "accuracy/tflite": 0.9675,
    "size/tflite_bytes": 83856.0,
    "ram/tflm_arena_bytes": 42288.0,
    "flash/firmware_bytes": 517504.0,
    "cycles/estimate": 14312524.0,
    "latency/estimate_ms": 4.7492,
    "loss/keras": 0.1,  # not a key figure
}
TAGS = {"fits_target": "false", "fits_target.reason": "flash 517,504 B > 512,000 B", "target": "t"}


def test_table_is_aligned_with_thousands_separators_never_exponents() -> None:
    table = format_table(summary_rows(METRICS, TAGS))
    lines = table.splitlines()
    assert lines == [
        "  accuracy  keras            96.80 %",
        "            tflite           96.75 %",
        "  bytes     .tflite         83,856 B",
        "  RAM       TFLM arena      42,288 B",
        "  flash     firmware       517,504 B",
        "  cycles    estimate    14,312,524",
        "  latency   estimate          4.75 ms",
        "  fits      t                   NO flash 517,504 B > 512,000 B",
    ]
    assert "e+" not in table and "loss" not in table


def test_device_figures_name_their_unit_and_the_weights_saving() -> None:
    metrics = {"cycles/median": 14_240_000.0, "ram/c_bytes": 11_584.0, "flash/c_weights_ratio": 0.38}
    rows = summary_rows({**metrics, "flash/c_weights_bytes": 7_600.0}, {"cycles_unit": "instructions"})
    assert ("instructions", "device median", "14,240,000", "") in rows
    assert ("RAM", "activations (C)", "11,584", "B") in rows
    assert ("flash", "C weights vs dense", "0.38", "×") in rows
    assert summary_rows(metrics, {})[-1][0] == "cycles"  # a board counts cycles


def test_summary_line_registry_tags_and_ui_hint() -> None:
    tags = {**TAGS, "architecture": "seed_cnn", "compression": "ptq_int8", "dataset": "d"}
    line = summary_line(METRICS, tags)
    assert line.startswith("seed_cnn · ptq_int8 · d · t: accuracy keras 96.80 %")
    assert "flash firmware 517,504 B" in line and line.endswith("does not fit")
    figures = key_figures(METRICS, TAGS)
    assert figures["cycles/estimate"] == "14312524" and figures["accuracy/tflite"] == "0.9675"
    assert figures["fits_target"] == "false"
    command, url = ui_hint("sqlite:////w/mlflow.db", "3", "abc")
    assert command == "mlflow ui --backend-store-uri sqlite:////w/mlflow.db --port 5000"
    assert url == "http://127.0.0.1:5000/#/experiments/3/runs/abc"
    assert ui_hint("http://h:5000/", "3", "abc") == (None, "http://h:5000/#/experiments/3/runs/abc")


def test_native_chatter_is_recognised_and_nothing_else() -> None:
    chatter = [
        b"I0000 00:00:1796169623.865129   24368 port.cc:153] oneDNN custom operations are on.",
        b"E0000 00:00:1796169580.085501   23153 cuda_platform.cc:52] failed call to cuInit: ...",
        b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    ]
    kept = [
        b"[2026-12-02 00:05:58,617][tinyml_exp.tracking.model][INFO] - registered model tiny",
        b"Traceback (most recent call last):",
        b"E: something else",
    ]
    assert all(is_native_chatter(line) for line in chatter)
    assert not any(is_native_chatter(line) for line in kept)


def test_native_logs_filter_fd_2_of_this_process_and_its_children(capfd, monkeypatch) -> None:
    import os
    import subprocess

    from tinyml_exp.tracking.quiet import native_logs

    for key in ("TF_CPP_MIN_LOG_LEVEL", "MLFLOW_LOGGING_LEVEL"):  # restored after the test
        monkeypatch.setenv(key, os.environ.get(key, "2" if key.startswith("TF") else "INFO"))

    script = (
        "printf 'I0000 00:00:1796169623.865129   24368 port.cc:153] oneDNN\\n' >&2; "
        "printf 'a line of the compiler\\n' >&2"
    )
    with native_logs(verbose=False):
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written\n")
        subprocess.run(["sh", "-c", script], check=True)
        os.write(2, b"ours\n")
    err = capfd.readouterr().err
    assert err == "a line of the compiler\nours\n"
    with native_logs(verbose=True):
        os.write(2, b"E0000 00:00:1796169580.085501   23153 cuda_platform.cc:52] cuInit\n")
        assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    assert "cuInit" in capfd.readouterr().err
