#!/usr/bin/env bash
# The GPU benchmark, in one call on a lent accelerator (about 5 minutes on an H100):
# 1. bf16/fp32 matmul peak, then training throughput and model FLOP utilization of the demo
#    and 960 h models (the 960 h one in bf16 and fp32 at 100 s, and bf16 at the recipe's full
#    1200 s batch): OUT/bench.md and OUT/bench.json, the tables of BENCHMARKS.md;
# 2. both LibriSpeech recipes' models (8x subsampling, rotary attention, macaron, conv module,
#    CR-CTC: two views counted, dynamic chunks) at their full bf16 batch: audio-seconds per
#    second, MFU against the GPU's dense bf16 peak and the measured matmul peak, and the
#    device-hours of each recipe's epochs at that rate: OUT/librispeech.txt and .json.
#   bash bench/gpu.sh [OUT]       # default OUT: exp/bench-gpu
# Needs torch, torchaudio, PyYAML and sentencepiece (a GPU image usually has them); it does not
# read audio, so soundfile and jiwer are not needed. BENCHMARKS.md says where the figures go.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-exp/bench-gpu}
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && PY=.venv/bin/python
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -m asr.bench --device cuda --sections machine,train --steps 5 --out "$OUT"
"$PY" -m asr.bench.train --device cuda --steps 10 --json "$OUT/librispeech.json" \
  --config recipes/librispeech/train_100h.yaml --config recipes/librispeech/train_960h.yaml | tee "$OUT/librispeech.txt"
