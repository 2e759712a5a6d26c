#!/usr/bin/env bash
# Peak memory of transcribe.py on a 60-minute file against a 1-minute file.
#
#   bash bench/long_audio_memory.sh [MODEL] [transcribe.py options...]
#   e.g. bash bench/long_audio_memory.sh exp/demo/model.pt --chunk-ms 640
#
# Builds both files (once, in $WORK, default /tmp/asr-long-audio) from espeak-ng sentences
# joined by 0.5-1.2 s pauses, written sentence by sentence so the builder holds no more
# than one sentence either; then runs transcribe.py on each under /usr/bin/time -v and
# compares "Maximum resident set size". Exits 1 if the 60-minute file needs more than
# 50 MB above the 1-minute file.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-exp/demo/model.pt}
shift || true
WORK=${WORK:-/tmp/asr-long-audio}
PY=${PYTHON:-.venv/bin/python}
LIMIT_MB=50
mkdir -p "$WORK"

if [ ! -f "$WORK/60min.flac" ] || [ ! -f "$WORK/1min.flac" ]; then
  echo "building $WORK/1min.flac and $WORK/60min.flac from espeak-ng speech"
  nice -n 19 "$PY" -m asr.bench.long_audio "$WORK"
fi

peak_kb() {  # FILE [options]: peak resident set size of transcribe.py on FILE, in kB
  local file=$1 name
  shift
  name=$(basename "$file" .flac)
  nice -n 19 /usr/bin/time -v "$PY" transcribe.py --model "$MODEL" "$@" "$file" > "$WORK/$name.hyp" 2> "$WORK/$name.time" \
    || { echo "transcribe.py failed on $file:" >&2; grep -v '^\s' "$WORK/$name.time" | tail -5 >&2; exit 1; }
  awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/$name.time"
}

start=$(date +%s)
one=$(peak_kb "$WORK/1min.flac" "$@")
mid=$(date +%s)
sixty=$(peak_kb "$WORK/60min.flac" "$@")
end=$(date +%s)
diff_mb=$(( (sixty - one) / 1024 ))
echo "options: ${*:-(defaults: full context, overlapping windows)}"
echo "1-minute file:  peak RSS $(( one / 1024 )) MB ($(( mid - start )) s)"
echo "60-minute file: peak RSS $(( sixty / 1024 )) MB ($(( end - mid )) s)"
echo "difference: ${diff_mb} MB (limit ${LIMIT_MB} MB); words transcribed: $(cut -f2 "$WORK/60min.hyp" | wc -w)"
[ "$diff_mb" -le "$LIMIT_MB" ]
