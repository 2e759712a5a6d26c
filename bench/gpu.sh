#!/usr/bin/env bash
# The GPU benchmark, in one call on a lent accelerator (about 5 minutes on an H100):
# bf16/fp32 matmul peak, then training throughput and model FLOP utilization of the demo
# and 960 h models in bf16 (the 960 h one also at the recipe's full 1200 s batch).
#   bash bench/gpu.sh [OUT]       # figures in OUT/bench.md and OUT/bench.json (default exp/bench-gpu)
# Needs torch, torchaudio, PyYAML and sentencepiece (a GPU image usually has them); it does not
# read audio, so soundfile and jiwer are not needed. BENCHMARKS.md says where the figures go.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-exp/bench-gpu}
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && PY=.venv/bin/python
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 \
  "$PY" -m asr.bench --device cuda --sections machine,train --steps 5 --out "$OUT"
