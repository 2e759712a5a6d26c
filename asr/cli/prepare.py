"""Download and prepare the data a recipe needs, once, before training.

    python -m asr.cli.prepare --config recipes/librispeech/train_100h.yaml [section.key=value ...]

For ``corpus.kind: librispeech`` this fetches every subset named in the recipe's train, dev
and test splits that is not under ``corpus.root`` yet (resumable, md5-checked), then writes
one manifest per subset (``<corpus.root>/<subset>.jsonl``), the BPE model
(``<exp_dir>/tokenizer.model``) and the feature statistics (``<exp_dir>/feature_stats.pt``).
Each product is made only when missing, so running it again costs seconds. Run it once
before a multi-GPU or multi-node job; training then finds everything ready.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asr.cli import recipe_or_report


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True, help="recipe YAML")
    parser.add_argument(
        "--download-only", action="store_true", help="fetch and extract the corpus, skip manifests and statistics"
    )
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides")
    return parser.parse_args(argv)


def _hours(entries) -> float:
    return sum(e.duration for e in entries) / 3600


def main(argv=None) -> int:
    args = parse_args(argv)
    recipe = recipe_or_report(args.config, args.overrides)
    if recipe is None:
        return 2

    from asr.corpus.librispeech import DownloadError, fetch_corpus
    from asr.data.manifest import ManifestError
    from asr.training.prepare import prepare

    try:
        if args.download_only:
            if recipe.corpus.kind != "librispeech":
                print("error: --download-only needs corpus.kind=librispeech", file=sys.stderr)
                return 2
            for subset, folder in fetch_corpus(recipe.corpus).items():
                print(f"{subset}: {folder}")
            return 0
        data = prepare(recipe)
    except (DownloadError, ManifestError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"train {', '.join(recipe.corpus.train_splits)}: {len(data.train)} utterances, {_hours(data.train):.2f} h")
    print(f"dev {', '.join(recipe.corpus.dev_splits)}: {len(data.dev)} utterances, {_hours(data.dev):.2f} h")
    for split, entries in data.test.items():
        print(f"test {split}: {len(entries)} utterances, {_hours(entries):.2f} h")
    print(f"tokenizer: {data.tokenizer.vocab_size} classes (blank included) in {recipe.exp_path / 'tokenizer.model'}")
    print(f"feature statistics: {recipe.exp_path / 'feature_stats.pt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
