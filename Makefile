# Quick start: `make run` (the main job) and `make test` (lint + the whole test suite).
# Both first set up what is missing (Debian packages, .venv with pinned dependencies).
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup run test test-fast lint format mlflow-ui benchmarks clean

setup:
	@bash scripts/setup.sh

run: setup
	$(PY) -m tinyml_exp $(ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test-fast: lint
	$(VENV)/bin/pytest -m "not slow" $(PYTEST_ARGS)

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

mlflow-ui: setup
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db --port 5000

benchmarks: setup
	$(PY) benchmarks/cli_startup.py

clean:
	rm -rf outputs .cache .pytest_cache .ruff_cache
