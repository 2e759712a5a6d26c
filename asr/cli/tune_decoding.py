"""Grid-search the LM weight and word score of the beam search on a dev set, and write the
best pair beside the model as its decoding defaults (``decoding.json``).

    python -m asr.cli.tune_decoding --model exp/demo/model.pt --manifest data/synth/dev.jsonl \\
        --lm exp/demo/lm/pool3.bin [--beam 8] [--lm-weights 0.3 0.5 0.7 1.0] [--word-scores -1 0 0.5 1 2]

The acoustic model runs once; every pair decodes the same posteriors. ``load_model`` then
takes the written LM, weight and score as defaults (``transcribe.py --beam N`` uses them, and
``asr.cli.evaluate``'s beam + LM column). ``--out`` writes elsewhere.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from pathlib import Path


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="model.pt or Lightning .ckpt")
    parser.add_argument("--manifest", type=Path, required=True, help="dev set: JSON-lines manifest (audio, text)")
    parser.add_argument("--lm", type=Path, required=True, help="KenLM ARPA or binary file")
    parser.add_argument("--lexicon", type=Path, help="word list (default: the LM's words)")
    parser.add_argument("--beam", type=int, default=8, help="beam width to tune at (default: 8)")
    parser.add_argument("--lm-weights", type=float, nargs="+", default=[0.3, 0.5, 0.7, 1.0, 1.5])
    parser.add_argument("--word-scores", type=float, nargs="+", default=[-1.0, 0.0, 0.5, 1.0, 2.0])
    parser.add_argument("--out", type=Path, help="decoding config to write (default: decoding.json beside the model)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch")
    return parser.parse_args(argv)


def dev_posteriors(recognizer, manifest: Path) -> tuple[list, list[str]]:
    """-> (T', V) log-probs per utterance, reference texts."""
    from asr.audio.read import read_audio
    from asr.data.manifest import read_manifest

    entries = read_manifest(manifest)
    waves = [read_audio(e.audio, recognizer.sample_rate) for e in entries]
    return recognizer.log_probs(waves), [e.text for e in entries]


def grid_search(recognizer, log_probs, refs, args) -> list[dict]:
    """-> one row (lm_weight, word_score, wer) per pair, best first."""
    from asr.inference.options import DecodingOptions, TranscribeOptions
    from asr.text.wer import word_errors

    rows = []
    for weight, score in itertools.product(args.lm_weights, args.word_scores):
        decoding = DecodingOptions(lm=str(args.lm), lexicon=args.lexicon and str(args.lexicon),
                                   lm_weight=weight, word_score=score)  # fmt: skip
        options = TranscribeOptions(beam_width=args.beam, decoding=decoding)
        hyps = [recognizer.decode_text(lp, options) for lp in log_probs]
        wer = word_errors(refs, hyps).wer
        rows.append({"lm_weight": weight, "word_score": score, "wer": round(wer, 4)})
        print(f"lm_weight {weight:g} word_score {score:g}: WER {100 * wer:.2f}%", flush=True)
    return sorted(rows, key=lambda r: r["wer"])


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from asr.audio.atomic import atomic_write_text
    from asr.audio.read import AudioError
    from asr.data.manifest import ManifestError
    from asr.decoding.lm import LMError
    from asr.inference.checkpoint import CheckpointError
    from asr.inference.recognizer import load_model
    from asr.text.wer import word_errors

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        recognizer = load_model(args.model)
        log_probs, refs = dev_posteriors(recognizer, args.manifest)
        greedy = word_errors(refs, [recognizer.decode_text(lp) for lp in log_probs]).wer
        rows = grid_search(recognizer, log_probs, refs, args)
    except (CheckpointError, ManifestError, AudioError, LMError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    out = args.out or args.model.parent / "decoding.json"
    best = rows[0]
    config = {
        "lm": os.path.relpath(args.lm.resolve(), out.parent.resolve()),
        "lexicon": args.lexicon and os.path.relpath(args.lexicon.resolve(), out.parent.resolve()),
        "beam_width": args.beam,  # the default decoding's width: the one the weights were tuned at
        "lm_weight": best["lm_weight"],
        "word_score": best["word_score"],
        "measured": {"dev": str(args.manifest), "beam": args.beam, "greedy_wer": round(greedy, 4), "grid": rows},
    }
    atomic_write_text(out, json.dumps(config, indent=2) + "\n")
    print(f"greedy WER {100 * greedy:.2f}%; best: lm_weight {best['lm_weight']:g} word_score "
          f"{best['word_score']:g} WER {100 * best['wer']:.2f}% (beam {args.beam}); wrote {out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
