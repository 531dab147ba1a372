"""What a missing tool, emulator, data set or extra means for a test (tests/helpers.skip_or_fail):
a skip that names the package on a developer's machine, a failure that names it under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, missing_reason, skip_or_fail
from tinyml_exp.hardware.tools import DEBIAN_PACKAGES, TEST_TOOLS, missing_tools_reason, setup_packages


def test_locally_a_missing_tool_is_a_skip_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="gcc-arm-none-eabi"):
        skip_or_fail("needs arm-none-eabi-gcc: install the Debian package(s) gcc-arm-none-eabi")


@pytest.mark.parametrize("value", ["true", "TRUE", "1"])
def test_under_ci_it_is_a_failure_naming_the_package(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match=r"CI=true and needs socat: install .* socat"):
        skip_or_fail("needs socat: install the Debian package(s) socat")


def test_reasons_name_the_debian_package_from_the_one_map(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # no compiler, emulator or socat
    reason = missing_tools_reason("arm-none-eabi-gcc", "qemu-system-arm", "socat")
    assert reason == (
        "needs arm-none-eabi-gcc, qemu-system-arm, socat: "
        "install the Debian package(s) gcc-arm-none-eabi qemu-system-arm socat"
    )
    assert set(TEST_TOOLS) <= set(DEBIAN_PACKAGES)  # every tool the tests need has its package
    assert {"gcc-arm-none-eabi", "qemu-system-arm", "socat", "dataset-fashion-mnist"} <= set(setup_packages())


def test_missing_dataset_and_extra_name_their_fix() -> None:
    # conf/dataset/mnist.yaml points at /usr/share/datasets/mnist, which no Debian package fills.
    dataset = missing_reason.__wrapped__("dataset", "mnist")
    assert dataset is None or (
        "dataset.path='/usr/share/datasets/mnist'" in dataset and "IDX files" in dataset
    )
    extra = missing_reason("modules", "scale", "hydra_plugins.no_such_launcher")
    assert extra == "needs hydra_plugins.no_such_launcher: pip install -e '.[scale]'"
    assert missing_reason("modules", "scale", "hydra") is None


@pytest.mark.parametrize(("ci", "outcome"), [("true", "6 errors"), ("", "6 skipped")])
def test_firmware_tests_without_the_toolchain(tmp_path: Path, ci: str, outcome: str) -> None:
    """The real firmware-build tests in a child pytest whose PATH has no ARM toolchain or make."""
    test_file = REPO / "tests" / "test_firmware_build.py"  # 6 firmware tests, all needing the toolchain
    env = {**os.environ, "PATH": str(Path(sys.executable).parent), "CI": ci, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "firmware",
            "-rfs",
            str(test_file),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    summary = done.stdout.strip().splitlines()[-1]  # a failure at set-up counts as an error
    assert outcome in summary and "passed" not in summary, done.stdout[-2000:]
    assert "install the Debian package(s) gcc-arm-none-eabi make" in done.stdout
    assert (done.returncode != 0) == bool(ci)


def test_hydra_finds_the_project_sweepers_outside_the_checkout(tmp_path: Path) -> None:
    # Hydra scans the hydra_plugins namespace with pkgutil, which cannot see through the default
    # editable finder: `-m` sweeps from a user's own directory then fail on hydra/sweeper=tinyml_basic.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = (
        "from hydra.core.plugins import Plugins; from hydra.plugins.sweeper import Sweeper; "
        "print(*sorted(c.__name__ for c in Plugins.instance().discover(Sweeper)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert {"LongestFirstBasicSweeper", "OptunaJournalSweeper"} <= set(out), (
        f"Hydra sees only {out} from outside the checkout: install with "
        "`pip install -e . --config-settings editable_mode=compat` (scripts/setup.sh does)"
    )
