#!/usr/bin/env bash
# The README's pictures, from a trained run: what the model does with one test utterance
# (transcript figure, one attention map) and the run's training curves.
#
#   bash scripts/make_pictures.sh [EXP_DIR] [OUT_DIR]      # defaults: exp/demo docs/pictures
#   AUDIO=my.wav LAYER=5 HEAD=mean bash scripts/make_pictures.sh exp/demo /tmp/pictures
#
# The utterance is the second line of EXP_DIR/test.list unless AUDIO names one.
set -euo pipefail
cd "$(dirname "$0")/.."
exp=${1:-exp/demo}
out=${2:-docs/pictures}
audio=${AUDIO:-$(sed -n 2p "$exp/test.list")}
layer=${LAYER:-3}
head=${HEAD:-0}
log=$(ls -d "$exp"/logs/version_* | sort -V | tail -n 1)/metrics.csv
plot() { echo "+ python -m asr.cli.plot $*"; .venv/bin/python -m asr.cli.plot "$@"; }

mkdir -p "$out"
plot transcript --model "$exp/model.pt" "$audio" --out "$out/transcript.png"
plot attention --model "$exp/model.pt" "$audio" --layer "$layer" --head "$head" --out "$out"
name=$(basename "${audio%.*}")
[ "$head" = mean ] && suffix=mean || suffix=head$head
mv "$out/$name.layer$layer.$suffix.png" "$out/attention.png"
plot curves "$log" --out "$out/curves.png" --title "$(basename "$exp")"
echo "pictures of $audio in $out/: transcript.png attention.png curves.png"
