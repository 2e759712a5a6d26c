#!/usr/bin/env bash
# Walk-through: adapt the main job's model to one voice it does badly on, with 5, 10 and 20
# minutes of that voice, and measure what it gained (the voice's held-out sentences) and what it
# forgot (the main job's three test sets), with the CPU time each run took.
#   bash recipes/finetune/run.sh                 # after bash scripts/demo.sh (exp/demo/model.pt)
#   MINUTES="10" bash recipes/finetune/run.sh    # one size only
# VOICE (default awb, flite's Scottish male) is a flite voice; BASE the model to start from.
# Your own recordings take the same path: python -m asr.cli.import_data FORMAT SRC --out DIR,
# then train.py --config recipes/finetune/voice.yaml with corpus.* pointing at DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
VOICE=${VOICE:-awb}
MINUTES=${MINUTES:-"5 10 20"}
BASE=${BASE:-exp/demo/model.pt}
DATA=data/voice-$VOICE
POOL=600  # training sentences spoken once (about 35 min of speech): every size is a prefix of them
[ -f "$BASE" ] || { echo "error: $BASE not found: run bash scripts/demo.sh first (or set BASE)" >&2; exit 2; }

texts() { sed -E 's/.*"text": "([^"]*)".*/\1/'; }  # manifest lines -> normalized transcripts (no quote in them)
say() {  # say FOLDER PREFIX < sentences: the voice reads each into FOLDER/PREFIX-NNNNN.wav beside its .txt
  mkdir -p "$1"
  local n=0 id text
  while read -r text; do
    n=$((n + 1)); id=$(printf '%s-%05d' "$2" "$n")
    [ -f "$1/$id.txt" ] && continue
    flite -voice "$VOICE" -t "${text,,}" -o "$1/$id.wav"
    echo "$text" > "$1/$id.txt"
  done
}

echo "== the voice: flite $VOICE reading 30 dev and 100 test sentences of the main job (never trained on)"
head -n 30 data/synth/dev.jsonl | texts | say "$DATA/heldout-audio" dev
head -n 100 data/synth/test.jsonl | texts | say "$DATA/heldout-audio" test
.venv/bin/python -m asr.cli.import_data folder "$DATA/heldout-audio" --out "$DATA/heldout" --dev 30 --test 100 \
  --model "$BASE"
echo "== the voice reading $POOL training sentences (other voices speak them in the main corpus)"
shuf -n "$POOL" --random-source=<(yes) data/synth/train.jsonl | texts | say "$DATA/pool" train
.venv/bin/python -m asr.cli.import_data folder "$DATA/pool" --out "$DATA/pool-manifest" --dev 0 --test 0
for m in $MINUTES; do  # the first m minutes of the pool
  awk -v seconds=$((m * 60)) '{ match($0, /"duration": [0-9.]+/); total += substr($0, RSTART + 12, RLENGTH - 12) }
    { print } total >= seconds { exit }' "$DATA/pool-manifest/train.jsonl" > "$DATA/${m}min.jsonl"
  echo "$DATA/${m}min.jsonl: $(wc -l < "$DATA/${m}min.jsonl") utterances"
done

splits=("voice-$VOICE/heldout/test" synth/test unseen/test real/test)
TIMEFORMAT="%R s wall, %U s user + %S s system"
echo "== before: $BASE"
.venv/bin/python -m asr.cli.evaluate --model "$BASE" --root data --splits "${splits[@]}" \
  --out "exp/finetune-$VOICE/before" | grep "^|"
for m in $MINUTES; do
  exp=exp/finetune-$VOICE-${m}min
  echo "== fine-tuning on $m min of $VOICE: $exp (log: $exp/train.log)"
  mkdir -p "$exp"
  { time .venv/bin/python train.py --config recipes/finetune/voice.yaml "exp_dir=$exp" "model.init=$BASE" \
      "corpus.root=$DATA/heldout" "corpus.train_splits=[$DATA/${m}min.jsonl]" > "$exp/train.log" 2>&1 ; } \
      2> "$exp/time.txt"
  grep -E "^model.init|^model:|^exported" "$exp/train.log"; echo "train.py: $(cat "$exp/time.txt")"
  .venv/bin/python -m asr.cli.evaluate --model "$exp/model.pt" --root data --splits "${splits[@]}" \
    --out "$exp/after" | grep "^|"
done
