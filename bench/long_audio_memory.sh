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
  nice -n 19 "$PY" - "$WORK" <<'PYEOF'
import random, subprocess, sys, tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.audio.read import to_mono_16k
from asr.data.sentences import stdlib_sentences

work = Path(sys.argv[1])
rng = random.Random(0)
sentences = rng.sample(stdlib_sentences(), 24)
clips = []
for text in sentences:
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", tmp.name, text], check=True)
        samples, rate = sf.read(tmp.name, dtype="float32")
    clips.append(to_mono_16k(samples, rate).numpy())
for name, minutes in (("1min", 1), ("60min", 60)):
    target, written = minutes * 60 * 16000, 0
    with sf.SoundFile(str(work / f"{name}.flac.tmp"), "w", 16000, 1, "PCM_16", format="FLAC") as out:
        while written < target:
            piece = np.concatenate([clips[rng.randrange(len(clips))], np.zeros(int(16000 * rng.uniform(0.5, 1.2)), np.float32)])
            piece = piece[: target - written]
            out.write(piece)
            written += len(piece)
    (work / f"{name}.flac.tmp").rename(work / f"{name}.flac")
    print(f"{name}: {written / 16000 / 60:.1f} min")
PYEOF
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
echo "options: ${*:-(defaults: full context within segments)}"
echo "1-minute file:  peak RSS $(( one / 1024 )) MB ($(( mid - start )) s)"
echo "60-minute file: peak RSS $(( sixty / 1024 )) MB ($(( end - mid )) s)"
echo "difference: ${diff_mb} MB (limit ${LIMIT_MB} MB); words transcribed: $(cut -f2 "$WORK/60min.hyp" | wc -w)"
[ "$diff_mb" -le "$LIMIT_MB" ]
