"""CLI start-up time: `--help` and `--cfg job` of tinyml_exp versus a bare Hydra app, same run.

Goal: ≤ 1.5× the bare app, which holds only while TensorFlow and MLflow stay out of the CLI path.
Usage: python benchmarks/cli_startup.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BARE_APP = """
import hydra
@hydra.main(version_base="1.3", config_path=".", config_name="config")
def main(cfg):
    pass
if __name__ == "__main__":
    main()
"""


def median_seconds(cmd: list[str], cwd: Path, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bare_dir = Path(tmp)
        (bare_dir / "app.py").write_text(BARE_APP)
        (bare_dir / "config.yaml").write_text("seed: 0\n")
        print(f"{'command':<12} {'bare hydra s':>13} {'tinyml_exp s':>13} {'ratio':>7}  (goal ≤ 1.5)")
        for flag in (["--help"], ["--cfg", "job"]):
            bare = median_seconds([sys.executable, "app.py", *flag], bare_dir, args.repeats)
            ours = median_seconds([sys.executable, "-m", "tinyml_exp", *flag], REPO, args.repeats)
            print(f"{' '.join(flag):<12} {bare:>13.3f} {ours:>13.3f} {ours / bare:>7.2f}")


if __name__ == "__main__":
    main()
