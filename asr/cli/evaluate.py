"""Evaluate a model on its recipe's test splits: a Markdown and a JSON table of WER.

    python -m asr.cli.evaluate --model exp/ls100/model.pt [--splits dev-clean test-other] [--device cuda]

The splits default to the recipe's ``corpus.test_splits`` (for LibriSpeech: dev-clean,
dev-other, test-clean, test-other) under its ``corpus.root``, both read from the model
file itself; ``--root`` points elsewhere. Manifests are built if missing. Decoding is
greedy CTC. Writes, in ``--out`` (default: ``<model dir>/eval-<model name>``):
``wer.md`` and ``wer.json`` (WER with substitutions, deletions and insertions per split)
and ``<split>.hyp`` (Kaldi text: ``utt-id hypothesis``).
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
    return parser.parse_args(argv)


def transcribe_split(recognizer, entries, batch_seconds: float) -> dict[str, str]:
    """Manifest entries -> {utt id: hypothesis}, reading audio in parallel threads."""
    from asr.audio.read import read_audio

    rate = recognizer.recipe.features.sample_rate
    hyps = {}
    with ThreadPoolExecutor(4) as pool:
        for start in range(0, len(entries), GROUP):
            group = entries[start : start + GROUP]
            waves = list(pool.map(lambda e: read_audio(e.audio, rate), group))
            for entry, text in zip(group, recognizer.transcribe_waves(waves, batch_seconds)):
                hyps[entry.id] = text
    return hyps


def markdown_table(model: str, results: dict) -> str:
    lines = [
        f"WER of `{model}` (greedy CTC)",
        "",
        "| split | utterances | words | WER % | substitutions | deletions | insertions |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for split, r in results.items():
        lines.append(
            f"| {split} | {r.utterances} | {r.words} | {100 * r.wer:.2f} | "
            f"{r.substitutions} | {r.deletions} | {r.insertions} |"
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
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    corpus = recognizer.recipe.corpus
    root = args.root or Path(corpus.root)
    splits = args.splits or list(corpus.test_splits)
    out = args.out or args.model.parent / f"eval-{args.model.stem}"
    results = {}
    for split in splits:
        try:
            entries = split_manifest(root, split)
            hyps = transcribe_split(recognizer, entries, args.batch_seconds)
            results[split] = word_errors([e.text for e in entries], [hyps[e.id] for e in entries])
        except (ManifestError, AudioError, ValueError) as err:
            print(f"error: {split}: {err}", file=sys.stderr)
            return 1
        atomic_write_text(out / f"{split}.hyp", "".join(f"{e.id} {hyps[e.id]}\n" for e in entries))
        print(f"{split}: {results[split].summary()}", flush=True)
    figures = {split: r.as_dict() for split, r in results.items()}
    report = {"model": str(args.model), "decoding": "greedy CTC", "results": figures}
    atomic_write_text(out / "wer.json", json.dumps(report, indent=2) + "\n")
    table = markdown_table(str(args.model), results)
    atomic_write_text(out / "wer.md", table)
    print(table, end="")
    print(f"wrote {out / 'wer.md'} and {out / 'wer.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
