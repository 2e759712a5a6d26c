#!/usr/bin/env bash
# The GPU call: every GPU figure in one process (python -m asr.bench.gpu), about 3 minutes on an
# H100 by the sizes chosen (at most 6: no case starts after 330 s): the matmul peak; for both
# LibriSpeech recipes the NaN check (bf16, dropout, padding, chunks of 1 frame with no left
# context and random chunks), training's own step timed chunked and at full context (device
# augmentation, sampler-packed batches, TF32, 3 warm-ups), and a 200-step bf16-vs-fp32 overfit.
#   bash bench/gpu.sh [OUT]       # default OUT: $OUT, else exp/bench-gpu
# Writes OUT/gpu.json (torch, CUDA, device, driver and every row) and OUT/gpu.md (the lines for
# BENCHMARKS.md). Needs only what a GPU image has: torch, torchaudio, numpy, PyYAML, tqdm; a
# missing one, or no GPU, stops it before any case (exit 2); a failed case exits 1.
# On a CPU, `python -m asr.bench.gpu --dry-run` prints the same rows at tiny sizes (tests/test_gpu_bench.py).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-exp/bench-gpu}}
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && PY=.venv/bin/python
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$PY" -c "import torch, torchaudio, numpy, yaml, tqdm" || { echo "error: a package the GPU call needs is missing" >&2; exit 2; }
"$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 2)" ||
  { echo "error: torch.cuda.is_available() is False" >&2; exit 2; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
mkdir -p "$OUT"
"$PY" -m asr.bench.gpu --out "$OUT" 2>&1 | tee "$OUT/gpu.log"
