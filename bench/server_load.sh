#!/usr/bin/env bash
# Load test of the streaming server on loopback (asr/bench/server_load.py has the method):
# the most concurrent real-time streams with p95 final latency under 1 s, partial latency
# at half that load, memory per stream, and hostile clients beside the good ones.
#   bash bench/server_load.sh [MODEL] [LIST] [server_load options...]
#   e.g. bash bench/server_load.sh exp/demo/model.pt exp/demo/test.list --json exp/server_load.json
#   batched vs unbatched: add --max-batch 1 for the unbatched server (default: the server's batching)
# Runs on cores ${CORES:-0,1} (server and clients together), one torch thread per worker;
# stops by itself (about 2-4 minutes). Needs requirements-serve.txt installed.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-exp/demo/model.pt}
LIST=${2:-exp/demo/test.list}
shift $(( $# < 2 ? $# : 2 ))
CORES=${CORES:-0,1}
PY=${PYTHON:-.venv/bin/python}
WORKERS=$(( $(echo "$CORES" | tr -cd ',' | wc -c) + 1 ))
uptime
taskset -c "$CORES" env OMP_NUM_THREADS=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" \
  "$PY" -m asr.bench.server_load --model "$MODEL" --list "$LIST" --workers "$WORKERS" "$@"
uptime
