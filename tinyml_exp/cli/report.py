"""`tinyml-exp-report` / `python -m tinyml_exp.report`: the summary table and Pareto plots of a
sweep (by parent run id) or of a whole experiment, read from MLflow."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tinyml_exp.config import TrackingConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tinyml-exp-report", description=__doc__)
    defaults = TrackingConfig()
    parser.add_argument("--tracking-uri", default=defaults.uri, help="MLflow store (default: %(default)s)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--experiment", default=defaults.experiment, help="experiment name (default: %(default)s)"
    )
    which.add_argument("--parent-run", help="id of a sweep's parent run: report only its children")
    parser.add_argument(
        "--out", type=Path, default=Path("report"), help="output directory (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from tinyml_exp.report import write_report

    try:
        result = write_report(args.tracking_uri, args.out, args.experiment, args.parent_run)
    except Exception as e:  # a CLI: one line, not a traceback
        print(f"tinyml-exp-report: {e}", file=sys.stderr)
        return 1
    print((args.out / "summary.md").read_text())
    # The course's table measured on the device, the MLPerf Tiny table: when this report wrote them.
    for extra in (args.out / "device.md", args.out / "mlperf.md"):
        if extra in result.paths:
            print(extra.read_text())
    print("written: " + ", ".join(str(p) for p in result.paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
