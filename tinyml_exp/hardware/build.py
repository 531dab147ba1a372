"""Builds the firmware (`firmware/Makefile`) for one board and one generated model, and reads its size.

build = build_firmware("qemu_netduinoplus2", model_dir, tmp_path / "fw")
build.elf, build.flash_bytes, build.ram_bytes
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tinyml_exp.errors import TinymlExpError
from tinyml_exp.hardware.tools import FIRMWARE_BUILD_TOOLS, require_tools
from tinyml_exp.resources import resource_dir

log = logging.getLogger(__name__)

FIRMWARE_DIR = resource_dir("firmware")  # the package's copy, else the checkout's
FIXTURE_MODEL_DIR = FIRMWARE_DIR / "tests" / "fixture_model"
_ERROR_TAIL_LINES = 30
# `arm-none-eabi-size -B`: a header, then "text data bss dec hex filename".
_SIZE_ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([0-9a-fA-F]+)\s+(\S.*)$")


class FirmwareBuildError(TinymlExpError):
    """The firmware did not build (bad board or model directory, or a compiler / linker error)."""


@dataclass(frozen=True)
class FirmwareBuild:
    """A built firmware image and its footprint, as `arm-none-eabi-size` reports it."""

    board: str
    model_dir: Path
    elf: Path
    bin: Path
    size_report: Path
    text_bytes: int  # code, constants (weights) and the vector table
    data_bytes: int  # initialised variables: in flash (initial values) and in RAM
    bss_bytes: int  # zero-initialised variables: activation buffer, receive buffer, parser state
    toolchain: str  # first line of `arm-none-eabi-gcc --version`

    @property
    def flash_bytes(self) -> int:
        """Flash image: text + data (the initial values of .data are stored in flash)."""
        return self.text_bytes + self.data_bytes

    @property
    def ram_bytes(self) -> int:
        """Static RAM: data + bss. Leaves out the stack (the linker script reserves room for it)."""
        return self.data_bytes + self.bss_bytes


def available_boards() -> tuple[str, ...]:
    """Board ports: the folders of firmware/boards with a tme_board.h."""
    return tuple(sorted(p.parent.name for p in (FIRMWARE_DIR / "boards").glob("*/tme_board.h")))


def parse_size_report(text: str) -> tuple[int, int, int]:
    """(text, data, bss) bytes from `arm-none-eabi-size -B` output for one file."""
    rows = [m for line in text.splitlines() if (m := _SIZE_ROW.match(line))]
    if len(rows) != 1:
        raise FirmwareBuildError(f"expected one row of arm-none-eabi-size output, got {len(rows)}: {text!r}")
    text_b, data_b, bss_b = (int(rows[0].group(i)) for i in (1, 2, 3))
    return text_b, data_b, bss_b


def _check_inputs(board: str, model_dir: Path, build_dir: Path) -> None:
    boards = available_boards()
    if board not in boards:
        raise FirmwareBuildError(f"unknown firmware board {board!r}: expected one of {', '.join(boards)}")
    for name in ("model.h", "model.c"):
        if not (model_dir / name).is_file():
            raise FirmwareBuildError(
                f"model directory {model_dir} has no {name}: generate the model's C code there first"
            )
    for what, path in (("model directory", model_dir), ("build directory", build_dir)):
        if any(c.isspace() for c in str(path)):
            raise FirmwareBuildError(f"{what} {str(path)!r} contains whitespace, which make cannot handle")


def _toolchain_version() -> str:
    result = subprocess.run(["arm-none-eabi-gcc", "--version"], capture_output=True, text=True, check=True)
    return result.stdout.splitlines()[0].strip()


@dataclass(frozen=True)
class AppOptions:
    """What firmware/Makefile links besides board and model: APP, and its INPUTS_DIR / MODEL_CFLAGS."""

    app: str = "bench"  # the serial benchmark protocol; "measure": semihosting counts (cgen.qemu)
    inputs_dir: Path | None = None  # APP=measure: the directory holding tme_inputs.c
    model_cflags: tuple[str, ...] = ()  # extra flags for the model's objects only


def _make_command(
    board: str, model_dir: Path, build_dir: Path, jobs: int, defines: Sequence[str], app: AppOptions
) -> list[str]:
    command = ["make", "-C", str(FIRMWARE_DIR), f"-j{jobs}", f"BOARD={board}", f"APP={app.app}"]
    command += [f"MODEL_DIR={model_dir}", f"BUILD_DIR={build_dir}"]
    if app.inputs_dir is not None:
        command.append(f"INPUTS_DIR={Path(app.inputs_dir).resolve()}")
    if app.model_cflags:
        command.append("MODEL_CFLAGS=" + " ".join(app.model_cflags))
    if defines:
        command.append("TME_DEFINES=" + " ".join(f"-D{d}" for d in defines))
    return command


def build_firmware(
    board: str,
    model_dir: Path,
    build_dir: Path,
    *,
    jobs: int = 1,
    defines: Sequence[str] = (),
    app: AppOptions = AppOptions(),
) -> FirmwareBuild:
    """Builds firmware/ for `board` with the model in `model_dir` (model.c / model.h) into `build_dir`.

    Incremental: make rebuilds only what changed (and everything when board, model directory or
    flags change). `defines` (`NAME=VALUE` or `NAME`) make test builds (firmware/Makefile
    TME_DEFINES), e.g. a tiny receive ring or a hang after N requests; `app` another application
    (APP=measure, see AppOptions). Raises ToolMissingError naming the Debian package when the toolchain is missing,
    FirmwareBuildError with the compiler's last lines when the build fails.
    """
    model_dir, build_dir = Path(model_dir).resolve(), Path(build_dir).resolve()
    _check_inputs(board, model_dir, build_dir)
    require_tools(*FIRMWARE_BUILD_TOOLS)
    command = _make_command(board, model_dir, build_dir, jobs, defines, app)
    log.info("building firmware: %s", " ".join(command))
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-_ERROR_TAIL_LINES:])
        raise FirmwareBuildError(f"firmware build for board {board!r} with model {model_dir} failed:\n{tail}")
    size_report = build_dir / "size.txt"
    text_b, data_b, bss_b = parse_size_report(size_report.read_text())
    build = FirmwareBuild(
        board=board,
        model_dir=model_dir,
        elf=build_dir / "firmware.elf",
        bin=build_dir / "firmware.bin",
        size_report=size_report,
        text_bytes=text_b,
        data_bytes=data_b,
        bss_bytes=bss_b,
        toolchain=_toolchain_version(),
    )
    log.info(
        "firmware %s: flash %d B (text %d + data %d), static RAM %d B (data + bss %d)",
        board,
        build.flash_bytes,
        text_b,
        data_b,
        build.ram_bytes,
        bss_b,
    )
    return build
