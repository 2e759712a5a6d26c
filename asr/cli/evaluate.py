"""Evaluate a model on its recipe's test splits: a Markdown and a JSON table of WER.

    python -m asr.cli.evaluate --model exp/ls100/model.pt [--splits dev-clean test-other] [--device cuda]

The splits default to the recipe's ``corpus.test_splits`` (for LibriSpeech: dev-clean,
dev-other, test-clean, test-other) under its ``corpus.root``, both read from the model
file itself; ``--root`` points elsewhere. Manifests are built if missing. Decoding is
greedy CTC; ``--beam N`` adds a column for the beam search without LM and, with an LM
(``--lm``, or the model's ``decoding.json``), one for beam + LM, all from the same posteriors:

    python -m asr.cli.evaluate --model exp/ls100/model.pt --beam 8 --lm data/lm/4-gram.arpa.gz \
        --lexicon data/lm/librispeech-lexicon.txt --lm-weight 0.7 --word-score 0.5

Writes, in ``--out`` (default: ``<model dir>/eval-<model name>``): ``wer.md`` and
``wer.json`` (WER with substitutions, deletions and insertions per split, greedy; the other
columns under ``"columns"``) and ``<split>.hyp`` (Kaldi text: ``utt-id hypothesis``; the
beam columns in ``<split>.beam.hyp`` and ``<split>.beam-lm.hyp``).
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

GROUP = 256  # utterances read into memory at a time


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="model.pt or Lightning .ckpt")
    parser.add_argument("--splits", nargs="+", help="split folders under the corpus root (default: test_splits)")
    parser.add_argument("--root", type=Path, help="corpus root (default: the recipe's corpus.root)")
    parser.add_argument("--out", type=Path, help="output folder (default: <model dir>/eval-<model name>)")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--batch-seconds", type=float, default=300.0, help="padded audio seconds per batch")
    parser.add_argument("--beam", type=int, default=1, help="beam width of the beam columns (default: 1, greedy only)")
    parser.add_argument("--lm", help="n-gram LM of the beam + LM column (default: the model's decoding.json)")
    parser.add_argument("--lexicon", help="word list for --lm (default: the LM's words)")
    parser.add_argument("--lm-weight", type=float, help="LM weight (default: decoding.json, else 1)")
    parser.add_argument("--word-score", type=float, help="word score (default: decoding.json, else 0)")
    return parser.parse_args(argv)


def decoders(recognizer, args) -> dict:
    """Column name -> TranscribeOptions: greedy; beam without LM and beam + LM with --beam."""
    from asr.inference.options import DecodingOptions, TranscribeOptions

    columns = {"greedy": TranscribeOptions(greedy=True)}
    if args.beam > 1:
        columns["beam"] = TranscribeOptions(beam_width=args.beam, decoding=DecodingOptions(lm=""))
        lm = DecodingOptions(lm=args.lm, lexicon=args.lexicon, lm_weight=args.lm_weight, word_score=args.word_score)
        if recognizer.decoding_plan(TranscribeOptions(beam_width=args.beam, decoding=lm))[1].lm:  # given or the model's
            columns["beam-lm"] = TranscribeOptions(beam_width=args.beam, decoding=lm)
    for options in columns.values():
        recognizer.beam_search(options)  # load each LM now: a bad file stops before any audio
    return columns


def transcribe_split(recognizer, entries, batch_seconds: float, columns: dict) -> dict[str, dict[str, str]]:
    """Manifest entries -> {column: {utt id: hypothesis}}, reading audio in parallel threads;
    the model runs once, each column decodes the same log-probs."""
    from asr.audio.read import read_audio

    rate = recognizer.recipe.features.sample_rate
    hyps = {name: {} for name in columns}
    with ThreadPoolExecutor(4) as pool:
        for start in range(0, len(entries), GROUP):
            group = entries[start : start + GROUP]
            waves = list(pool.map(lambda e: read_audio(e.audio, rate), group))
            log_probs = recognizer.log_probs(waves, max_batch_seconds=batch_seconds)
            for name, options in columns.items():
                for entry, lp in zip(group, log_probs):
                    hyps[name][entry.id] = recognizer.decode_text(lp, options)
    return hyps


COLUMN_TITLES = {"greedy": "greedy CTC", "beam": "beam, no LM", "beam-lm": "beam + LM"}


def markdown_table(model: str, results: dict, extra: dict | None = None, described: str = "greedy CTC") -> str:
    """Greedy figures per split; ``extra`` {column: {split: WER}} adds a WER column each."""
    extra = extra or {}
    titles = "".join(f" {COLUMN_TITLES.get(c, c)} WER % |" for c in extra)
    lines = [
        f"WER of `{model}` ({described})",
        "",
        "| split | utterances | words | WER % | substitutions | deletions | insertions |" + titles,
        "|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(extra),
    ]
    for split, r in results.items():
        cells = "".join(f" {100 * extra[c][split].wer:.2f} |" for c in extra)
        lines.append(
            f"| {split} | {r.utterances} | {r.words} | {100 * r.wer:.2f} | "
            f"{r.substitutions} | {r.deletions} | {r.insertions} |" + cells
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    from asr.audio.read import AudioError
    from asr.inference.checkpoint import CheckpointError
    from asr.data.manifest import ManifestError
    from asr.inference.recognizer import load_model
    from asr.audio.atomic import atomic_write_text
    from asr.training.prepare import split_manifest
    from asr.text.wer import word_errors

    try:
        recognizer = load_model(args.model, args.device)
        columns = decoders(recognizer, args)
    except (CheckpointError, ValueError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    corpus = recognizer.recipe.corpus
    root = args.root or Path(corpus.root)
    splits = args.splits or list(corpus.test_splits)
    out = args.out or args.model.parent / f"eval-{args.model.stem}"
    scores = {name: {} for name in columns}  # column -> split -> WordErrors
    for split in splits:
        try:
            entries = split_manifest(root, split)
            hyps = transcribe_split(recognizer, entries, args.batch_seconds, columns)
        except (ManifestError, AudioError, ValueError) as err:
            print(f"error: {split}: {err}", file=sys.stderr)
            return 1
        for name in columns:
            scores[name][split] = word_errors([e.text for e in entries], [hyps[name][e.id] for e in entries])
            suffix = "" if name == "greedy" else f".{name}"
            text = "".join(f"{e.id} {hyps[name][e.id]}\n" for e in entries)
            atomic_write_text(out / f"{split}{suffix}.hyp", text)
            print(f"{split} {name}: {scores[name][split].summary()}", flush=True)
    results = scores.pop("greedy")
    described = "greedy CTC" + "".join(f"; {COLUMN_TITLES[c]}: {describe(recognizer, columns[c])}" for c in scores)
    report = {
        "model": str(args.model),
        "decoding": described,
        "results": {split: r.as_dict() for split, r in results.items()},
        "columns": {c: {split: r.as_dict() for split, r in by_split.items()} for c, by_split in scores.items()},
    }
    atomic_write_text(out / "wer.json", json.dumps(report, indent=2) + "\n")
    table = markdown_table(str(args.model), results, scores, described)
    atomic_write_text(out / "wer.md", table)
    print(table, end="")
    print(f"wrote {out / 'wer.md'} and {out / 'wer.json'}")
    return 0


def describe(recognizer, options) -> str:
    """What a beam column decoded with, for the table's title."""
    beam, d = recognizer.decoding_plan(options)
    lm = f", LM {Path(d.lm).name} weight {d.lm_weight} word score {d.word_score}" if d is not None and d.lm else ""
    return f"beam {beam}{lm}"


if __name__ == "__main__":
    sys.exit(main())
