#!/usr/bin/env bash
# Installs everything the project needs, once: espeak-ng (apt) and a virtual environment
# in .venv with the pinned packages. Safe to run again; it skips what is already there.
# Usage: bash scripts/setup.sh [dev]   ("dev" adds pytest, hypothesis, matplotlib and pocketsphinx)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v espeak-ng >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing espeak-ng with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null
  else
    echo "setup: espeak-ng is missing; install it (Debian/Ubuntu: sudo apt-get install espeak-ng) and run again" >&2
    exit 1
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=".venv/.installed-$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -c1-16)-${1:-main}"
if [ ! -f "$stamp" ]; then
  echo "setup: installing pinned packages into .venv (torch is large: a few minutes)"
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
  if [ "${1:-}" = dev ]; then
    .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
  fi
  .venv/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
  touch "$stamp"
fi
