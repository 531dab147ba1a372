"""External programs the firmware path needs, and the Debian package each comes from.

`DEBIAN_PACKAGES` is the one tool → package map: `missing_tools_reason()` names the package in the
library's one-line errors and in the tests' skip (or, under CI=true, failure) reasons, and
`setup_packages()` is what scripts/setup.sh installs.
"""

from __future__ import annotations

import shutil
import subprocess

from tinyml_exp.errors import TinymlExpError

DEBIAN_PACKAGES: dict[str, str] = {
    "arm-none-eabi-gcc": "gcc-arm-none-eabi",
    "arm-none-eabi-objcopy": "binutils-arm-none-eabi",
    "arm-none-eabi-size": "binutils-arm-none-eabi",
    "newlib-nano": "libnewlib-arm-none-eabi",  # not a program: checked through the compiler
    "make": "make",
    "gcc": "gcc",
    "qemu-system-arm": "qemu-system-arm",
    "st-flash": "stlink-tools",  # flashing the B-L475E-IOT01A (benchmark.flash)
    "openocd": "openocd",
    "socat": "socat",
}
FIRMWARE_BUILD_TOOLS = (
    "make",
    "arm-none-eabi-gcc",
    "arm-none-eabi-objcopy",
    "arm-none-eabi-size",
    "newlib-nano",
)

# What the test suite runs: scripts/setup.sh installs their packages, and under CI=true a test
# whose tool is missing fails instead of skipping (tests/helpers.require_commands).
TEST_TOOLS = (*FIRMWARE_BUILD_TOOLS, "gcc", "qemu-system-arm", "socat")
# Data sets the tests read, by the Debian package that installs them (the conf/dataset/*.yaml
# of each names it in its package_hint).
TEST_DATA_PACKAGES = ("dataset-fashion-mnist",)


def setup_packages() -> list[str]:
    """The Debian packages the tests need, sorted: those of TEST_TOOLS and TEST_DATA_PACKAGES."""
    return sorted({DEBIAN_PACKAGES[tool] for tool in TEST_TOOLS} | set(TEST_DATA_PACKAGES))


class ToolMissingError(TinymlExpError):
    """A program the firmware path needs is not installed."""


def _has_newlib_nano() -> bool:
    if shutil.which("arm-none-eabi-gcc") is None:
        return False
    # The compiler echoes the bare name back when it cannot find the file.
    found = subprocess.run(
        ["arm-none-eabi-gcc", "-print-file-name=nano.specs"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return found != "nano.specs"


def _is_missing(tool: str) -> bool:
    if tool == "newlib-nano":
        return not _has_newlib_nano()
    return shutil.which(tool) is None


def missing_tools_reason(*tools: str) -> str | None:
    """None when every tool is there, else one line naming what is missing and its package."""
    missing = [tool for tool in tools if _is_missing(tool)]
    if not missing:
        return None
    packages = sorted({DEBIAN_PACKAGES.get(tool, tool) for tool in missing})
    return f"needs {', '.join(missing)}: install the Debian package(s) {' '.join(packages)}"


def require_tools(*tools: str) -> None:
    """Raises ToolMissingError with the one-line reason when a tool is missing."""
    reason = missing_tools_reason(*tools)
    if reason is not None:
        raise ToolMissingError(reason)
