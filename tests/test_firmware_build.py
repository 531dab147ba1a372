"""Both board ports build with the ARM toolchain; footprint, memory map and build errors."""

from __future__ import annotations

import logging
import os
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import require_commands
from tinyml_exp.hardware.build import (
    FIXTURE_MODEL_DIR,
    FirmwareBuild,
    FirmwareBuildError,
    available_boards,
    build_firmware,
    parse_size_report,
)
from tinyml_exp.hardware.tools import ToolMissingError

log = logging.getLogger(__name__)

needs_toolchain = require_commands("arm-none-eabi-gcc", "make")

# Stack top (_estack) per board: the end of SRAM on QEMU's F405; the end of SRAM2 on the L475.
STACK_TOP = {"qemu_netduinoplus2": 0x2002_0000, "b_l475e_iot01a": 0x1000_8000}
# Fixture firmware footprint, measured 3.5-3.7 KB flash / 1.9 KB RAM with GCC 12.2 -O3. The limits
# leave 2x room for changes and still catch a stray printf (newlib-nano's alone is > 10 KB).
FIXTURE_FLASH_LIMIT_BYTES = 8 * 1024
FIXTURE_RAM_LIMIT_BYTES = 4 * 1024


def test_parse_size_report() -> None:
    text = "   text\t   data\t    bss\t    dec\t    hex\tfilename\n   3540\t      8\t   1896\t   5444\t   1544\t/x/firmware.elf\n"
    assert parse_size_report(text) == (3540, 8, 1896)
    with pytest.raises(FirmwareBuildError, match="expected one row"):
        parse_size_report("text data bss\n")


def test_boards_are_the_two_ports() -> None:
    assert available_boards() == ("b_l475e_iot01a", "qemu_netduinoplus2")


@pytest.fixture(scope="module", params=sorted(STACK_TOP))
def fixture_build(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> FirmwareBuild:
    board = request.param
    return build_firmware(board, FIXTURE_MODEL_DIR, tmp_path_factory.mktemp(board))


@pytest.mark.firmware
@needs_toolchain
def test_board_builds_with_fixture_model(fixture_build: FirmwareBuild) -> None:
    build = fixture_build
    assert build.elf.is_file() and build.bin.is_file()
    # The .bin is the flash image from 0x08000000: vector table, code, constants, .data values.
    assert build.bin.stat().st_size == build.flash_bytes
    assert 0 < build.flash_bytes < FIXTURE_FLASH_LIMIT_BYTES
    assert 784 + 794 < build.ram_bytes < FIXTURE_RAM_LIMIT_BYTES  # receive buffer + arena at least
    assert build.toolchain.startswith("arm-none-eabi-gcc")
    log.info(
        "%s with fixture: text %d, data %d, bss %d bytes (%s)",
        build.board,
        build.text_bytes,
        build.data_bytes,
        build.bss_bytes,
        build.toolchain,
    )


@pytest.mark.firmware
@needs_toolchain
def test_vector_table_points_at_stack_and_reset_handler(fixture_build: FirmwareBuild) -> None:
    initial_sp, reset_vector = struct.unpack("<II", fixture_build.bin.read_bytes()[:8])
    assert initial_sp == STACK_TOP[fixture_build.board]
    symbols = subprocess.run(
        ["arm-none-eabi-nm", str(fixture_build.elf)], capture_output=True, text=True, check=True
    ).stdout
    address = {
        line.split()[2]: int(line.split()[0], 16) for line in symbols.splitlines() if len(line.split()) == 3
    }
    assert reset_vector == address["cm4_reset_handler"] | 1  # Thumb bit set
    assert address["tme_board_vectors"] == 0x0800_0000
    assert 0x2000_0000 <= address["_ebss"] <= 0x2000_0000 + 96 * 1024  # .bss in SRAM1 (L475) / SRAM


@pytest.mark.firmware
@needs_toolchain
def test_changing_model_dir_rebuilds(tmp_path: Path) -> None:
    build_dir = tmp_path / "build"
    build_firmware("qemu_netduinoplus2", FIXTURE_MODEL_DIR, build_dir)
    other = tmp_path / "other_model"
    shutil.copytree(FIXTURE_MODEL_DIR, other)
    header = other / "model.h"
    header.write_text(header.read_text().replace('"fixture_sum"', '"fixture_other"'))
    old = time.time() - 3600  # older than the objects: only the configuration stamp can trigger
    for path in other.iterdir():
        os.utime(path, (old, old))
    build = build_firmware("qemu_netduinoplus2", other, build_dir)
    image = build.bin.read_bytes()
    assert b"fixture_other" in image and b"fixture_sum" not in image


@pytest.mark.firmware
@needs_toolchain
def test_compile_error_is_reported(tmp_path: Path) -> None:
    model = tmp_path / "broken"
    shutil.copytree(FIXTURE_MODEL_DIR, model)
    (model / "model.c").write_text((model / "model.c").read_text() + "\nint broken(void) { return 1 }\n")
    with pytest.raises(FirmwareBuildError, match=r"(?s)failed:.*model\.c.*error"):
        build_firmware("b_l475e_iot01a", model, tmp_path / "build")


def test_unknown_board_lists_the_ports(tmp_path: Path) -> None:
    with pytest.raises(
        FirmwareBuildError, match="unknown firmware board 'stm32_nope': expected one of b_l475e"
    ):
        build_firmware("stm32_nope", FIXTURE_MODEL_DIR, tmp_path)


def test_missing_model_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FirmwareBuildError, match=f"model directory {tmp_path} has no model.h"):
        build_firmware("qemu_netduinoplus2", tmp_path, tmp_path / "build")


def test_missing_toolchain_names_the_debian_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissingError, match=r"install the Debian package.*gcc-arm-none-eabi") as info:
        build_firmware("qemu_netduinoplus2", FIXTURE_MODEL_DIR, tmp_path / "build")
    assert "\n" not in str(info.value)
