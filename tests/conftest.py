import os

import pytest

# Before anything imports TensorFlow (tinyml_exp sets these too; tests may import TF first).
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires(kind, *names): tools / dataset / modules the test needs; missing: a skip, under CI=true "
        "a failure (tests/helpers.require_commands, require_dataset, require_modules)",
    )


@pytest.hookimpl(tryfirst=True)  # before fixtures set up (a module's firmware build, say)
def pytest_runtest_setup(item: pytest.Item) -> None:
    from tests.helpers import check_requirements

    check_requirements(item)


@pytest.fixture(scope="session")
def models() -> dict[str, dict[str, bytes | int]]:
    """The generated-C test models, converted once per session: test_cgen and test_cycle_model
    both use them (a fixture imported into a second module would be built twice)."""
    from tests.test_cgen import build_models

    return build_models()
