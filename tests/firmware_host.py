"""The firmware core built for the host with sanitizers (firmware/tests/host/host_driver.c: stdin ->
tme_app_feed), shared by the protocol fuzz tests and the MLPerf text-dialect tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tinyml_exp.hardware.build import FIRMWARE_DIR, FIXTURE_MODEL_DIR

CORE = FIRMWARE_DIR / "core"
HOST = FIRMWARE_DIR / "tests" / "host"
# The core without tme_main.c (the target's main loop; host_driver.c stands in for it).
CORE_SOURCES = tuple(sorted(p.name for p in CORE.glob("*.c") if p.name != "tme_main.c"))
CFLAGS = ["-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-fno-omit-frame-pointer"]
SANITIZERS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]


def build_host_driver(exe: Path) -> Path:
    """gcc + ASan/UBSan build of host_driver.c, the core and the fixture model into `exe`."""
    sources = [HOST / "host_driver.c", *(CORE / s for s in CORE_SOURCES), FIXTURE_MODEL_DIR / "model.c"]
    includes = [f"-I{d}" for d in (CORE, HOST, FIXTURE_MODEL_DIR)]
    subprocess.run(["gcc", *CFLAGS, *SANITIZERS, *includes, *map(str, sources), "-o", str(exe)], check=True)
    return exe
