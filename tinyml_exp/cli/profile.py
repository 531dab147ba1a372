"""`tinyml-exp-profile MODEL.tflite [target=...] [key=value ...]`: profile any `.tflite`, no training.

  tinyml-exp-profile model.tflite                                  default target (b_l475e_iot01a)
  tinyml-exp-profile model.tflite target=nucleo_h743zi2 profile.backend=tflm_cmsis_nn
  tinyml-exp-profile model.tflite target=pico_rp2040 target.reserved_ram_bytes=65536 --out prof/
  tinyml-exp-profile model.tflite target=b_l475e_iot01a,pico_rp2040   several targets: a fit table
  tinyml-exp-profile model.tflite --all-targets --check             exit 3 unless it fits all of them

Overrides are composed with `tinyml_exp.config.compose`, exactly as `tinyml-exp` composes them,
so `target.*` and `profile.*` keys are typed and a typo names the key. Nothing is logged to
MLflow unless `--mlflow` is given (then one run per target in `tracking.uri`/`tracking.experiment`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tinyml_exp.config import compose, option_names

log = logging.getLogger("tinyml_exp.profile")

EXIT_BAD_INPUT, EXIT_DOES_NOT_FIT = 2, 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinyml-exp-profile",
        description="Profile a .tflite on a target: MACs, RAM (formula, TFLM arena), flash, cycles, fits?",
        epilog="Targets: " + ", ".join(option_names("target")),
    )
    parser.add_argument("model", type=Path, help="the .tflite file")
    parser.add_argument(
        "overrides", nargs="*", help="Hydra overrides: target=NAME[,NAME...] target.KEY=V profile.KEY=V"
    )
    parser.add_argument(
        "--out", type=Path, help="write the per-layer CSV/markdown, operator table and PNG here"
    )
    parser.add_argument("--all-targets", action="store_true", help="profile on every target option")
    parser.add_argument(
        "--mlflow", action="store_true", help="log each profile as an MLflow run (tracking.uri)"
    )
    parser.add_argument(
        "--check", action="store_true", help=f"exit {EXIT_DOES_NOT_FIT} unless the model fits every target"
    )
    parser.add_argument(
        "--no-table", action="store_true", help="print the summary without the per-layer table"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings on stderr")
    return parser


def _split_targets(overrides: list[str], all_targets: bool) -> tuple[list[str], list[str | None]]:
    """(the other overrides, the target names to profile; [None] = the config's default)."""
    rest, targets = [], []
    for item in overrides:
        if item.startswith("target="):
            targets.extend(t for t in item.split("=", 1)[1].split(",") if t)
        else:
            rest.append(item)
    if all_targets:
        targets = option_names("target")
    return rest, targets or [None]


def _compose(overrides: list[str], target: str | None):
    return compose([*([f"target={target}"] if target else []), *overrides])


def _log_mlflow(cfg, result, model_path: Path, artifacts: dict[str, Path]) -> str:
    from omegaconf import OmegaConf

    from tinyml_exp.tracking import Tracker, flatten

    name = f"profile-{model_path.stem}-{result.target.name}"
    with Tracker(cfg.tracking.uri, cfg.tracking.experiment, name) as tracker:
        tracker.set_tags(
            {"target": result.target.name, "source": "tinyml-exp-profile", "model_file": str(model_path)}
        )
        tracker.set_tags(result.tags)
        tracker.log_params(flatten(OmegaConf.to_container(cfg.target, resolve=True), "target."))
        tracker.log_params(flatten(OmegaConf.to_container(cfg.profile, resolve=True), "profile."))
        tracker.log_metrics(result.metrics)
        tracker.log_artifact(model_path, "model")
        for path in artifacts.values():
            tracker.log_artifact(path, "profile")
        return tracker.run_id


def _fit_table(results: list) -> str:
    lines = [
        f"{'target':22} {'fits':5} {'RAM need':>10} {'RAM avail':>13} {'flash need':>11} {'latency ms':>11}  reason"
    ]
    for r in results:
        v, m = r.verdict, r.metrics
        ram = f"{v.ram_need_bytes:,}" if v.ram_need_bytes is not None else "n/a"
        flash = f"{v.flash_need_bytes:,}" if v.flash_need_bytes is not None else "n/a"
        latency = f"{m['latency/estimate_ms']:.2f}" if "latency/estimate_ms" in m else "n/a"
        lines.append(
            f"{r.target.name:22} {'yes' if v.fits else 'NO':5} {ram:>10} {v.ram_available_bytes:>13,} "
            f"{flash:>11} {latency:>11}  {'' if v.fits else v.reason}"
        )
    return "\n".join(lines)


def _bad_input_errors() -> tuple[type[Exception], ...]:
    """What a bad override, model file or option value raises: one line, exit EXIT_BAD_INPUT."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from tinyml_exp.tflite_graph import TFLiteGraphError

    return (HydraException, OmegaConfBaseException, TFLiteGraphError, ValueError, FileNotFoundError)


def _show(args: argparse.Namespace, cfg, result, several: bool) -> None:
    """Print one target's profile; write its artifacts (--out) and MLflow run (--mlflow)."""
    from tinyml_exp.profile.report import summary_text, table_markdown, write_artifacts

    print(summary_text(result))
    if not args.no_table:
        print()
        print(table_markdown(result))
    artifacts = {}
    if args.out is not None:
        out = args.out / result.target.name if several else args.out
        artifacts = write_artifacts(result, out, plot=cfg.profile.plot)
        print(f"artifacts: {', '.join(str(p) for p in artifacts.values())}")
    if args.mlflow:
        print(f"MLflow run {_log_mlflow(cfg, result, args.model.resolve(), artifacts)}")
    print()


def _model_problem(model: Path) -> str | None:
    """Why `model` cannot be profiled (missing, truncated or corrupt), before any work; None if it can."""
    from tinyml_exp.tflite_graph import TFLiteGraphError, read_graph

    if not model.is_file():
        return f"{model}: no such file"
    try:
        read_graph(model)
    except TFLiteGraphError as e:
        return str(e)
    return None


def run(argv: list[str]) -> int:
    args = _parser().parse_intermixed_args(argv)  # overrides may follow the flags
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    problem = _model_problem(args.model)
    if problem is not None:
        print(f"tinyml-exp-profile: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    import tempfile

    from tinyml_exp.profile.profiler import profile_model
    from tinyml_exp.registry import to_object

    overrides, targets = _split_targets(args.overrides, args.all_targets)
    results = []
    # One arena measurement serves every target: it depends on the model only.
    with tempfile.TemporaryDirectory(prefix="tinyml-profile-") as arena_cache:
        for target_name in targets:
            try:
                cfg = _compose(overrides, target_name)
                target = to_object(cfg.target)
                calibration = None
                if cfg.profile.calibration_file:
                    from tinyml_exp.profile.calibration import load_points

                    calibration = load_points(cfg.profile.calibration_file)
                result = profile_model(
                    args.model,
                    target,
                    backend=cfg.profile.backend,
                    arena_probe=cfg.profile.arena_probe,
                    probe_timeout_s=cfg.profile.probe_timeout_s,
                    calibration=calibration,
                    calibrate=cfg.profile.calibrate,
                    cache_dir=Path(arena_cache),
                )
            except _bad_input_errors() as e:
                print(f"tinyml-exp-profile: {e}", file=sys.stderr)
                return EXIT_BAD_INPUT
            _show(args, cfg, result, several=len(targets) > 1)
            results.append(result)
    if len(results) > 1:
        print(_fit_table(results))
    if args.check and not all(r.verdict.fits for r in results):
        return EXIT_DOES_NOT_FIT
    return 0


def main() -> None:
    from tinyml_exp.errors import ConfigError

    try:
        sys.exit(run(sys.argv[1:]))
    except ConfigError as e:  # e.g. TINYML_EXP_CONFIG_DIR naming no directory (the target list needs it)
        print(f"tinyml-exp-profile: {e}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


if __name__ == "__main__":
    main()
