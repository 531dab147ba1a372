"""External programs the firmware path needs, and the Debian package each comes from.

`missing_tools_reason()` is the one check shared by the library (clear one-line errors) and the
tests (skip reasons), so both name the same package.
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
