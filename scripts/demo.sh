#!/usr/bin/env bash
# The main job on the embedded default: install, make the synthesized corpus, the test sets
# and a word 3-gram LM of the training text, train the demo recipe in what is left of a
# 30-minute budget, tune the LM weights on dev, then transcribe the three test sets and print
# their WER at the model's default decoding (beam + LM, as transcribe.py gives it with no
# options), greedy, and live (standard input's streaming: 640 ms chunks, two passes).
# Extra arguments are recipe overrides, e.g.: bash scripts/demo.sh trainer.max_epochs=2
# RECIPE (default recipes/demo/whisper.yaml: Whisper tiny.en's encoder under 2 new layers) picks
# the recipe; RECIPE=recipes/demo/demo.yaml trains the whole model from scratch.
# BUDGET_MIN (default 30) is the whole job's budget; RESERVE_S (default 420) is kept for
# the final validation, export, LM tuning and transcription after training. BEAM (default 32)
# is the beam width the LM weights are tuned at, which the model's decoding.json then keeps as
# its default.
# The corpus is sized for 2 idle cores: with fewer (taskset, or a busy machine at the start)
# proportionally fewer training sentences are synthesized (corpus.train_share x idle / 2; the test sets stay
# the same), so synthesis leaves training its part of the budget.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
BUDGET_MIN=${BUDGET_MIN:-30}
RESERVE_S=${RESERVE_S:-420}
RECIPE=${RECIPE:-recipes/demo/whisper.yaml}
BEAM=${BEAM:-32}
at() { printf '[%d:%02d] ' $(( ($(date +%s) - start) / 60 )) $(( ($(date +%s) - start) % 60 )); }
bash scripts/setup.sh
recipe=$(.venv/bin/python -c 'import sys; from asr.config import load_recipe
r = load_recipe(sys.argv[1], sys.argv[2:]); print(r.exp_dir, r.corpus.train_share)' "$RECIPE" "$@")
read -r EXP SHARE <<< "$recipe"
overrides=("$@")
if [[ " $* " != *" corpus.train_share="* ]]; then
  idle=$(.venv/bin/python -c "from asr.training.threads import busy_cores as b, choose_threads as c, usable_cores as u
print(c(min(u(), 2), b(1.0))[0])")
  if [ "$idle" -lt 2 ]; then
    echo "== $idle idle core of the 2 the corpus is sized for: $idle/2 of the training sentences"
    overrides+=("corpus.train_share=$(.venv/bin/python -c "print($SHARE * $idle / 2)")")
  fi
fi
sets=(); for override in "${overrides[@]}"; do sets+=(--set "$override"); done
echo "== $(at)synthesized corpus, test sets, tokenizer"
.venv/bin/python -m asr.cli.prepare --config "$RECIPE" "${overrides[@]}"
echo "== $(at)word 3-gram LM of the training text (no dev or test sentence in it)"
.venv/bin/python -m asr.cli.lm --recipe "$RECIPE" "${sets[@]}" --out $EXP/lm/words3
left=$(( BUDGET_MIN * 60 - ($(date +%s) - start) - RESERVE_S ))
[ "$left" -lt 120 ] && left=120
budget=$(printf '00:%02d:%02d:%02d' $(( left / 3600 )) $(( left / 60 % 60 )) $(( left % 60 )))  # DD:HH:MM:SS
echo "== $(at)training for at most $(( left / 60 )) min $(( left % 60 )) s (what is left of ${BUDGET_MIN} min)"
.venv/bin/python train.py --config "$RECIPE" trainer.max_time="$budget" "${overrides[@]}"
echo "== $(at)LM weight and word score, tuned on dev (beam $BEAM): $EXP/decoding.json"
.venv/bin/python -m asr.cli.tune_decoding --model $EXP/model.pt --manifest data/synth/dev.jsonl --beam "$BEAM" \
  --lm $EXP/lm/words3.arpa --lm-weights 0.5 0.7 1.0 --word-scores 0 0.5 1 1.5 > $EXP/tune_decoding.log 2>&1 \
  || { tail -n 3 $EXP/tune_decoding.log >&2; exit 1; }
grep "best:" $EXP/tune_decoding.log
echo "== $(at)transcribing the test sets (sentences and voices unseen in training)"
for split in test unseen real; do
  .venv/bin/python transcribe.py --model $EXP/model.pt --ref "$EXP/$split.ref" \
    --report "$EXP/${split}_wer.json" @"$EXP/$split.list" > "$EXP/$split.hyp" 2> "$EXP/$split.log" \
    || { tail -n 3 "$EXP/$split.log" >&2; exit 1; }
  .venv/bin/python transcribe.py --model $EXP/model.pt --greedy --ref "$EXP/$split.ref" \
    --report "$EXP/${split}_greedy_wer.json" @"$EXP/$split.list" > "$EXP/$split.greedy.hyp" 2> /dev/null
  # live: each file streamed in 100 ms blocks as standard input and the server stream it
  .venv/bin/python -m asr.bench.streaming_wer --model $EXP/model.pt --list "$EXP/$split.list" --ref "$EXP/$split.ref" \
    --offline-report "$EXP/${split}_wer.json" --report "$EXP/${split}_live_wer.json" --max-relative 1e9 \
    > "$EXP/$split.live.log" 2>&1 || { tail -n 3 "$EXP/$split.live.log" >&2; exit 1; }
  printf '%-7s beam %-3s + LM  %s\n' "$split" "$BEAM" "$(tail -n 1 "$EXP/$split.hyp")"
  printf '%-7s greedy        %s\n' "$split" "$(tail -n 1 "$EXP/$split.greedy.hyp")"
  printf '%-7s live          %s\n' "$split" "$(tail -n 1 "$EXP/$split.live.log" | sed 's/^live ([^)]*): //')"
done
echo "demo finished in $(( ($(date +%s) - start) / 60 )) min; model: $EXP/model.pt"
