"""`tinyml-exp-bench`: send test images to a board that already runs a tinyml_exp firmware, print
accuracy and cycles (the course's standalone workflow), optionally log the figures to MLflow.

    tinyml-exp-bench --port /dev/ttyACM0 --data test.npz --samples 500
    tinyml-exp-bench --port socket://127.0.0.1:4321 --data x_test.npy --labels y_test.npy
    tinyml-exp-bench --qemu build/firmware.elf --dataset fashion_mnist --model model.tflite --mlflow

Images: uint8 pixels (divided by 255, as the training pipeline does) or floats in the model's
input units; they are quantized as the device's IDENTIFY reply describes its input tensor. `.npy`
and `.npz` files are read with pickle disabled. With `--model`, the device must run that model
(build id, tensors) and its outputs are compared with the TFLite reference kernels.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tinyml_exp.config import TrackingConfig, compose
from tinyml_exp.errors import TinymlExpError
from tinyml_exp.hardware.settings import BenchmarkConfig
from tinyml_exp.targets import TargetBenchmark

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("tinyml_exp.bench")

_IMAGE_KEYS = ("x", "images", "x_test")
_LABEL_KEYS = ("y", "labels", "y_test")
# Its own MLflow experiment: a standalone bench is not one of the pipeline's runs.
BENCH_EXPERIMENT = "tinyml_exp_bench"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    # Defaults are the config's (a board's link, the pipeline's benchmark stage), read from its classes.
    board, bench, tracking = TargetBenchmark(), BenchmarkConfig(), TrackingConfig()
    p = argparse.ArgumentParser(prog="tinyml-exp-bench", description=__doc__.split("\n\n")[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="tty path or pyserial URL (socket://host:port) of the flashed board")
    where.add_argument(
        "--qemu", type=Path, metavar="ELF", help="start QEMU (netduinoplus2) with this firmware"
    )
    data = p.add_mutually_exclusive_group(required=True)
    data.add_argument("--data", type=Path, help=".npz with images and labels, or .npy of images")
    data.add_argument(
        "--dataset", help="a dataset option of conf/dataset (its test split), e.g. fashion_mnist"
    )
    p.add_argument("--labels", type=Path, help=".npy of labels, with a .npy of images")
    p.add_argument(
        "--model", type=Path, help=".tflite the firmware was built from: check it, compare outputs"
    )
    p.add_argument("--samples", type=int, help="the first N samples (default: all)")
    p.add_argument("--baudrate", type=int, default=board.baudrate)
    p.add_argument(
        "--timeout-s", type=float, default=board.timeout_s, help="per request (default %(default)s)"
    )
    p.add_argument("--connect-timeout-s", type=float, default=bench.connect_timeout_s)
    p.add_argument("--retries", type=int, default=bench.retries, help="per sample (default %(default)s)")
    p.add_argument("--warmup", type=int, default=bench.warmup)
    p.add_argument("--repeats", type=int, default=bench.repeats)
    p.add_argument("--clock-hz", type=float, help="clock for latency/fps (default: what the device reports)")
    p.add_argument("--csv", type=Path, help="write the per-sample CSV here")
    p.add_argument("--mlflow", action="store_true", help="log the figures as an MLflow run")
    p.add_argument("--tracking-uri", default=tracking.uri)
    p.add_argument("--experiment", default=BENCH_EXPERIMENT)
    p.add_argument("--run-name", default=None)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    for name in ("samples", "retries", "warmup", "repeats"):
        value, minimum = getattr(args, name), 0 if name in ("retries", "warmup") else 1
        if value is not None and value < minimum:
            p.error(f"--{name}={value} must be >= {minimum}")
    if args.labels is not None and (args.data is None or args.data.suffix != ".npy"):
        p.error("--labels goes with a .npy of images (--data x.npy)")
    return args


def _pick(archive: np.lib.npyio.NpzFile, keys: tuple[str, ...], what: str, path: Path) -> np.ndarray:
    for key in keys:
        if key in archive.files:
            return archive[key]
    raise TinymlExpError(
        f"{path} has no {what} array: expected one of {', '.join(keys)}, found {archive.files}"
    )


def load_samples(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray | None]:
    """(images as float, labels or None), pickle disabled for files."""
    import numpy as np

    from tinyml_exp.data.base import normalise

    if args.dataset:
        return _load_dataset(args.dataset)
    path: Path = args.data
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                images = _pick(archive, _IMAGE_KEYS, "image", path)
                labels = _pick(archive, _LABEL_KEYS, "label", path)
        else:
            images = np.load(path, allow_pickle=False)
            labels = np.load(args.labels, allow_pickle=False) if args.labels else None
    except (OSError, ValueError) as e:  # ValueError: an object array, which needs pickle
        raise TinymlExpError(f"cannot read {path}: {e}") from e
    if labels is not None and len(labels) != len(images):
        raise TinymlExpError(f"{len(images)} images but {len(labels)} labels")
    return normalise(images), (None if labels is None else labels.astype(np.int64).reshape(-1))


def _load_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    from tinyml_exp.registry import to_object

    cfg = compose([f"dataset={name}"])
    data = to_object(cfg.dataset).load(cfg.seed)
    return data.x_test, data.y_test


@contextmanager
def _connected(args: argparse.Namespace, expected) -> Iterator:
    from tinyml_exp.hardware.link import ReliableLink
    from tinyml_exp.hardware.qemu import QemuSupervisor
    from tinyml_exp.hardware.session import open_port

    common = {
        "timeout_s": args.timeout_s,
        "retries": args.retries,
        "connect_timeout_s": args.connect_timeout_s,
        "expected": expected,
    }
    if args.qemu is not None:
        with QemuSupervisor(args.qemu) as qemu:
            hint = f"QEMU runs {args.qemu}; is it a tinyml_exp firmware for netduinoplus2?"
            with ReliableLink(qemu.open_serial, qemu.url, hint=hint, restart=qemu.restart, **common) as link:
                link.connect()
                yield link
        return
    hint = f"check that the board is plugged in, flashed with a tinyml_exp firmware, and that --port {args.port} and --baudrate {args.baudrate} are right"
    with ReliableLink(lambda: open_port(args.port, args.baudrate), args.port, hint=hint, **common) as link:
        link.connect()
        yield link


def format_summary(metrics: dict[str, float], tags: dict[str, str], header: str, clock_hz: float) -> str:
    unit = tags["cycles.unit"]
    lines = [
        header,
        f"samples    {int(metrics['benchmark/samples'])} of {int(metrics['benchmark/samples_requested'])}",
    ]
    if "accuracy/device" in metrics:
        line = f"accuracy   {metrics['accuracy/device']:.4f} on the device"
        if "accuracy/tflite_reference" in metrics:
            line += f" | TFLite reference kernels {metrics['accuracy/tflite_reference']:.4f}"
        lines.append(line)
    if "agreement/device_vs_tflite" in metrics:
        lines.append(
            f"agreement  {metrics['agreement/device_vs_tflite']:.4f} of labels, "
            f"{metrics['agreement/device_vs_tflite_exact']:.4f} of outputs bit-exact with TFLite reference kernels"
        )
    if "cycles/median" in metrics:
        lines.append(
            f"{unit:<10} median {metrics['cycles/median']:,.0f} (mean {metrics['cycles/mean']:,.0f}, "
            f"min {metrics['cycles/min']:,.0f}, max {metrics['cycles/max']:,.0f}) per inference"
        )
        lines.append(
            f"latency    {metrics['latency/ms']:.3f} ms at {clock_hz / 1e6:g} MHz ({unit} / clock) -> "
            f"{metrics['throughput/fps']:.2f} fps"
        )
    if "link/bytes_per_s" in metrics:
        lines.append(
            f"link       {metrics['link/bytes_per_s']:,.0f} B/s, {metrics['link/samples_per_s']:.1f} samples/s, "
            f"{int(metrics['link/retries'])} retries, {int(metrics['link/device_resets'])} device resets, "
            f"{int(metrics['link/reconnects'])} reconnects"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from tinyml_exp.hardware.bench import (
        quantize_samples,
        reference_outputs,
        stream,
        summarize,
        tensor_spec,
        write_csv,
    )
    from tinyml_exp.hardware.link import ModelIdentity

    images, labels = load_samples(args)
    if args.samples is not None:
        images = images[: args.samples]
        labels = None if labels is None else labels[: args.samples]
    if args.model:
        from tinyml_exp.tflite_graph import read_graph

        read_graph(args.model)  # a truncated or corrupt file: one line (a TinymlExpError), no traceback
    tflite = args.model.read_bytes() if args.model else None
    expected = ModelIdentity.from_tflite(tflite) if tflite is not None else None
    with _connected(args, expected) as link:
        info = link.info
        inputs = quantize_samples(images, tensor_spec(info.input))
        reference = reference_outputs(tflite, inputs) if tflite is not None else None
        result = stream(link, inputs, warmup=args.warmup, repeats=args.repeats, progress=not args.no_progress)
    clock_hz = args.clock_hz or info.clock_hz
    summary = summarize(
        result,
        labels,
        tensor_spec(info.output),
        clock_hz=clock_hz,
        unit=info.counter_unit,
        reference=reference,
    )
    header = f"device     {info.model_name} (build 0x{info.build_id:08x}) on {info.board_name} via {link.port_name}"
    print(format_summary(summary.metrics, summary.tags, header, clock_hz))
    if args.csv:
        write_csv(args.csv, result, summary, labels)
    if args.mlflow:
        _log_mlflow(args, summary, result, labels, info)
    if isinstance(result.error, KeyboardInterrupt):
        raise result.error
    if result.error is not None:
        print(
            f"error: stopped after {result.completed} of {result.requested} samples: {result.error}",
            file=sys.stderr,
        )
        return 1
    return 0


def _log_mlflow(args: argparse.Namespace, summary, result, labels, info) -> None:
    import tempfile

    from tinyml_exp.hardware.bench import write_csv
    from tinyml_exp.tracking import Tracker

    with Tracker(args.tracking_uri, args.experiment, args.run_name) as tracker:
        tracker.log_params(
            {
                "benchmark.port": str(args.port or args.qemu),
                "benchmark.data": str(args.data or args.dataset),
                "benchmark.samples": str(args.samples),
                "benchmark.model": str(args.model),
            }
        )
        tracker.log_metrics(summary.metrics)
        tracker.set_tags({**summary.tags, "model": info.model_name, "target": info.board_name})
        with tempfile.TemporaryDirectory() as tmp:
            tracker.log_artifact(
                write_csv(Path(tmp) / "device_samples.csv", result, summary, labels), "benchmark"
            )
        print(f"MLflow run {tracker.run_id} in {tracker.uri}")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    try:
        code = run(args)
    except TinymlExpError as e:  # a user-fixable problem: one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
