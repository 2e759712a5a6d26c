#!/usr/bin/env bash
# The main job on the embedded default: install, make the synthesized corpus and the test
# sets, train the demo recipe in what is left of a 30-minute budget, then transcribe the
# three test sets and print one WER line each.
# Extra arguments are recipe overrides, e.g.: bash scripts/demo.sh trainer.max_epochs=2
# BUDGET_MIN (default 30) is the whole job's budget; RESERVE_S (default 180) is kept for
# the final validation, export and transcription after training.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
BUDGET_MIN=${BUDGET_MIN:-30}
RESERVE_S=${RESERVE_S:-180}
bash scripts/setup.sh
.venv/bin/python -m asr.cli.prepare --config recipes/demo/demo.yaml "$@"
left=$(( BUDGET_MIN * 60 - ($(date +%s) - start) - RESERVE_S ))
[ "$left" -lt 120 ] && left=120
budget=$(printf '00:%02d:%02d:%02d' $(( left / 3600 )) $(( left / 60 % 60 )) $(( left % 60 )))  # DD:HH:MM:SS
echo "== training for at most $(( left / 60 )) min $(( left % 60 )) s (what is left of ${BUDGET_MIN} min)"
.venv/bin/python train.py --config recipes/demo/demo.yaml trainer.max_time="$budget" "$@"
echo "== transcribing the test sets (sentences and voices unseen in training)"
for split in test unseen real; do
  .venv/bin/python transcribe.py --model exp/demo/model.pt --ref "exp/demo/$split.ref" \
    --report "exp/demo/${split}_wer.json" @"exp/demo/$split.list" > "exp/demo/$split.hyp"
  printf '%-7s %s\n' "$split" "$(tail -n 1 "exp/demo/$split.hyp")"
done
echo "demo finished in $(( ($(date +%s) - start) / 60 )) min; model: exp/demo/model.pt"
