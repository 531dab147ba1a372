# Quick start: `make run` (the main job) and `make test` (lint + the whole test suite).
# Both first set up what is missing (Debian packages, .venv with pinned dependencies).
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
PYTEST_ARGS ?=
# Test files spread over this many pytest-xdist workers (a file stays on one worker, so its module
# fixtures are built once); 2 cores: 26.5 -> 20.4 min on a loaded machine. TEST_JOBS=0: one process.
TEST_JOBS ?= 2

.PHONY: setup run test test-fast lint format mlflow-ui benchmarks clean

setup:
	@bash scripts/setup.sh

run: setup
	$(PY) -m tinyml_exp $(ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(VENV)/bin/pytest -n $(TEST_JOBS) --dist loadfile $(PYTEST_ARGS)

test-fast: lint
	$(VENV)/bin/pytest -n $(TEST_JOBS) --dist loadfile -m "not slow" $(PYTEST_ARGS)

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

mlflow-ui: setup
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db --port 5000

benchmarks: setup
	$(PY) benchmarks/cli_startup.py

clean:
	rm -rf outputs .cache .pytest_cache .ruff_cache
