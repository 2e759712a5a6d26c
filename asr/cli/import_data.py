"""Import a corpus in a layout people have into manifests a recipe trains on.

    python -m asr.cli.import_data FORMAT SRC --out DIR [--dev 0.05] [--test 0.05] [--model exp/demo/model.pt]

FORMAT is one of kaldi, nemo, commonvoice, ljspeech, folder, csv, lhotse, hf (the last two
need ``pip install -r requirements-corpora.txt``). Writes ``DIR/{train,dev,test}.jsonl``,
``DIR/utt2spk`` and ``DIR/problems.txt``, and prints the hours, utterances and speakers of
each split, the rows left out and why, and (given a model or tokenizer) the words its
tokenizer cannot spell. Train on the result with ``corpus.kind=manifest corpus.root=DIR``.
Dev and test are held out by speaker where every speaker is known, else by a seeded hash of
the id (:mod:`asr.corpus.formats.split`). Exit status: 0 imported, 1 nothing usable, 2 the
source is not the layout named.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

SHOWN = 10  # problems and unspellable words printed; problems.txt has every one


def parse_args(argv):
    from asr.corpus.formats.readers import FORMATS

    formats = "\n".join(f"  {name:12s} {what}" for name, (_, what) in FORMATS.items())
    parser = argparse.ArgumentParser(description=__doc__ + "\nformats:\n" + formats,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("format", choices=list(FORMATS), metavar="FORMAT", help="the layout of SRC (see above)")
    parser.add_argument("src", type=Path, metavar="SRC", help="the corpus: a folder or a listing file")
    parser.add_argument("--out", type=Path, required=True, help="folder for the manifests (and any audio cut out)")
    parser.add_argument("--dev", type=float, default=0.05, help="dev size: utterances, or a share below 1 (0.05)")
    parser.add_argument("--test", type=float, default=0.05, help="test size: utterances, or a share below 1 (0.05)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the dev/test draw (0)")
    parser.add_argument("--model", type=Path, default=None,
                        help="model.pt, a training checkpoint or a tokenizer.model: list the words it cannot spell")
    parser.add_argument("--allow-pipes", action="store_true",
                        help="kaldi, lhotse: run the shell commands the audio list names (they run anything)")
    parser.add_argument("--table", default="validated", help="commonvoice: the <table>.tsv to read (validated)")
    parser.add_argument("--split", default="", help="hf: the split of a DatasetDict folder")
    parser.add_argument("--path-column", default="", help="csv (hf: audio column): default a usual name")
    parser.add_argument("--text-column", default="", help="csv, hf: default a usual name (text, sentence, ...)")
    parser.add_argument("--speaker-column", default="", help="csv, hf: default a usual name when present")
    parser.add_argument("--speaker-from-folder", action="store_true",
                        help="folder: the first sub-folder names the speaker")
    parser.add_argument("--workers", type=int, default=8, help="threads reading audio headers (8)")
    return parser.parse_args(argv)


def load_tokenizer(path: Path):
    """A tokenizer from model.pt, a training checkpoint or a sentencepiece model file."""
    from asr.text.tokenizer import Tokenizer

    if path.suffix in (".pt", ".ckpt"):
        from asr.inference.checkpoint import read_checkpoint

        data = read_checkpoint(path)
        return Tokenizer(data.get("asr", data)["tokenizer"])
    return Tokenizer(path.read_bytes())


def unspellable(tokenizer, texts) -> Counter:
    """Words whose tokens do not spell them back (a letter the tokenizer has no piece for)."""
    words = Counter(word for text in texts for word in text.split())
    return Counter({w: n for w, n in words.items() if tokenizer.decode(tokenizer.encode(w)) != w})


def _line(name: str, summary) -> str:
    speakers = f", {summary.speakers} speakers" if summary.speakers else ", speakers not known"
    length = f"{summary.hours:.2f} h" if summary.hours >= 1 else f"{summary.hours * 60:.1f} min"
    return f"{name}: {summary.utterances:,} utterances, {length}{speakers}"


def main(argv=None) -> int:
    args = parse_args(argv)
    from asr.corpus.formats.output import summarize, write_import
    from asr.corpus.formats.readers import ImportOptions, import_source
    from asr.corpus.formats.rows import FormatError
    from asr.corpus.formats.split import split_entries

    options = ImportOptions(args.allow_pipes, args.table, args.split, args.path_column, args.text_column,
                            args.speaker_column, args.speaker_from_folder, args.workers, progress=sys.stderr.isatty())
    tokenizer = None
    started = time.time()
    try:
        if args.dev < 0 or args.test < 0:
            raise ValueError("--dev and --test are utterance counts or shares, >= 0")
        if args.model is not None:
            tokenizer = load_tokenizer(args.model)
        imported = import_source(args.format, args.src, options, args.out)
    except (FormatError, ValueError, OSError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    splits = split_entries(imported.entries, imported.speakers, args.dev, args.test, args.seed)
    write_import(args.out, splits, imported.speakers, imported.problems)
    counts = ", ".join(f"{n:,} {kind}" for kind, n in imported.counts().items())
    print(f"{args.format} {args.src}: {_line('imported', summarize(imported.entries, imported.speakers))} "
          f"in {time.time() - started:.1f} s; {len(imported.problems):,} rows left out"
          + (f" ({counts})" if counts else ""))
    for name in ("train", "dev", "test"):
        print("  " + _line(name, summarize(getattr(splits, name), imported.speakers)))
    print(f"dev and test drawn by {splits.by} (seed {args.seed})" + (
        f"; {splits.shared_text:,} training utterances left out: their text is a dev or test text"
        if splits.shared_text else ""))
    if imported.problems:
        print(f"left out ({min(SHOWN, len(imported.problems))} of {len(imported.problems):,} shown; "
              f"all in {args.out / 'problems.txt'}):")
        for problem in imported.problems[:SHOWN]:
            print(f"  {problem}")
    if tokenizer is not None:
        words = unspellable(tokenizer, (e.text for e in imported.entries))
        shown = ", ".join(f"{w} ({n})" for w, n in words.most_common(SHOWN))
        print(f"words the tokenizer of {args.model} cannot spell: {len(words):,}" + (f": {shown}" if words else ""))
    if not imported.entries:
        print("error: no usable utterance", file=sys.stderr)
        return 1
    print(f"wrote {args.out}/{{train,dev,test}}.jsonl; train on it with corpus.kind=manifest corpus.root={args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
