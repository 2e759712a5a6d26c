"""Decoding speed and WER: greedy against the beam search with and without an n-gram LM.

    python -m asr.bench.decoding --model exp/demo/model.pt --list exp/demo/test.list \\
        --ref exp/demo/test.ref --lm exp/demo/lm/pool3.bin [--beams 8 32] [--threads 2]

The acoustic model runs once over the utterances (padded batches, full context); each
decoder then decodes the same log-probs. RTF = seconds / seconds of audio: the model's,
each decoder's, and their sum (end to end without reading audio). ``--lm-weight`` and
``--word-score`` default to the model's ``decoding.json``. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="model.pt or Lightning .ckpt")
    parser.add_argument("--list", type=Path, required=True, help="audio paths, one per line (id = file stem)")
    parser.add_argument("--ref", type=Path, required=True, help="references, Kaldi text format")
    parser.add_argument("--lm", help="KenLM file for the beam + LM rows (default: the model's decoding.json)")
    parser.add_argument("--lexicon", help="word list for --lm (default: the LM's words)")
    parser.add_argument("--lm-weight", type=float, help="LM weight (default: decoding.json, else 1)")
    parser.add_argument("--word-score", type=float, help="word score (default: decoding.json, else 0)")
    parser.add_argument("--beams", type=int, nargs="+", default=[8, 32], help="beam widths (default: 8 32)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N utterances (default: all)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch (default: 2)")
    return parser.parse_args(argv)


def rows_to_measure(recognizer, args) -> list[tuple[str, object]]:
    """(row name, TranscribeOptions) for greedy, each beam without LM and each with the LM."""
    from asr.inference.options import DecodingOptions, TranscribeOptions

    lm = DecodingOptions(lm=args.lm, lexicon=args.lexicon, lm_weight=args.lm_weight, word_score=args.word_score)
    has_lm = recognizer.decoding_plan(TranscribeOptions(beam_width=2, decoding=lm))[1].lm  # given, or the model's
    rows = [("greedy", TranscribeOptions(greedy=True))]
    for beam in args.beams:
        rows.append((f"beam {beam}", TranscribeOptions(beam_width=beam, decoding=DecodingOptions(lm=""))))
        if has_lm:
            rows.append((f"beam {beam} + LM", TranscribeOptions(beam_width=beam, decoding=lm)))
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from asr.audio.read import read_audio
    from asr.inference.recognizer import load_model
    from asr.text.wer import read_kaldi_text, word_errors

    torch.set_num_threads(args.threads)
    recognizer = load_model(args.model)
    refs = read_kaldi_text(args.ref)
    paths = [Path(line.strip()) for line in args.list.read_text().splitlines() if line.strip()]
    paths = paths[: args.limit] if args.limit else paths
    waves = [read_audio(p, recognizer.sample_rate) for p in paths]
    audio_s = sum(w.numel() for w in waves) / recognizer.sample_rate
    started = time.perf_counter()
    log_probs = recognizer.log_probs(waves)
    model_rtf = (time.perf_counter() - started) / audio_s
    truth = [refs[p.stem] for p in paths]
    lines = [
        f"{len(paths)} utterances, {audio_s:.0f} s of audio, {args.threads} threads; model RTF {model_rtf:.4f}",
        "",
        "| decoder | WER % | decoding RTF | end-to-end RTF |",
        "|---|---:|---:|---:|",
    ]
    for name, options in rows_to_measure(recognizer, args):
        recognizer.beam_search(options)  # the LM loads outside the timing
        started = time.perf_counter()
        hyps = [recognizer.decode_text(lp, options) for lp in log_probs]
        rtf = (time.perf_counter() - started) / audio_s
        wer = word_errors(truth, hyps).wer
        lines.append(f"| {name} | {100 * wer:.2f} | {rtf:.4f} | {model_rtf + rtf:.4f} |")
        print(lines[-1], file=sys.stderr, flush=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
