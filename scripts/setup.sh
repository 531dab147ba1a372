#!/usr/bin/env bash
# Set up what a fresh machine lacks, then stop: the Debian packages the tests need (as root or with
# passwordless sudo; when they are missing and cannot be installed it fails, naming them), a
# virtual environment in .venv with the pinned dependencies. Safe to run again: it only does
# what is missing. Used by `make run` and `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PYTHON=$candidate
      break
    fi
  done
fi
if [ -z "$PYTHON" ]; then
  echo "setup: Python 3.11 is required (TensorFlow 2.21 wheels are pinned for it); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

# The Debian packages the tests need: the one tool -> package map in tinyml_exp/hardware/tools.py
# (stdlib only, so the system Python reads it before the venv exists).
packages=$("$PYTHON" -c 'from tinyml_exp.hardware.tools import setup_packages; print(*setup_packages())')
read -r -a APT_PACKAGES <<<"$packages"

not_installed() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

# Without them the tests skip locally and fail under CI=true: stop here, naming them, unless
# SKIP_APT=1 says to go on (their tests then skip).
mapfile -t missing < <(not_installed "${APT_PACKAGES[@]}")
if ((${#missing[@]})) && [ "${SKIP_APT:-0}" != 1 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi
  if [ "$SUDO" = none ] || ! command -v apt-get >/dev/null || ! command -v dpkg-query >/dev/null; then
    echo "setup: cannot install the Debian package(s) the tests need: ${missing[*]} (needs apt-get as root or passwordless sudo; install them, or set SKIP_APT=1 to go on without)" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq || true  # a stale mirror list: the install below says what failed
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || true
  mapfile -t missing < <(not_installed "${missing[@]}")
  if ((${#missing[@]})); then
    echo "setup: apt-get could not install the Debian package(s) the tests need: ${missing[*]}" >&2
    exit 1
  fi
elif ((${#missing[@]})); then
  echo "setup: SKIP_APT=1: going on without ${missing[*]} (their tests skip; under CI=true they fail)" >&2
fi

stamp="$VENV/.installed"
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
# Reinstall only when the dependency declarations changed since the last install.
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/setup.sh -nt "$stamp" ]; then
  echo "setup: installing Python dependencies into $VENV (first time: a few minutes, ~3 GB)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # The scale extra's old sweeper pins optuna < 3; ours (hydra/sweeper=tinyml_optuna) needs 4.9.
  "$VENV/bin/python" -m pip uninstall -q -y hydra-optuna-sweeper 2>/dev/null || true
  # editable_mode=compat puts the checkout on sys.path: the default editable finder hides
  # hydra_plugins/ from Hydra's plugin scan, and `-m` sweeps run outside the checkout then fail
  # with "Could not find 'hydra/sweeper/tinyml_basic'".
  "$VENV/bin/python" -m pip install -q -e ".[dev,scale,cycles]" --config-settings editable_mode=compat
  touch "$stamp"
fi
