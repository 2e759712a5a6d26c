#!/usr/bin/env bash
# The main job on the embedded default: install, synthesize the espeak-ng corpus, train the
# demo recipe, transcribe its test split and print the WER.
# Extra arguments are recipe overrides, e.g.: bash scripts/demo.sh trainer.max_epochs=2
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/setup.sh
.venv/bin/python train.py --config recipes/demo/demo.yaml "$@"
echo "== transcribing the test split (sentences and voices unseen in training)"
.venv/bin/python transcribe.py --model exp/demo/model.pt --ref exp/demo/test.ref \
  --report exp/demo/test_wer.json @exp/demo/test.list > exp/demo/test.hyp
tail -n 1 exp/demo/test.hyp
echo "demo finished in $(( ($(date +%s) - start) / 60 )) min; model: exp/demo/model.pt, references: exp/demo/test.ref"
