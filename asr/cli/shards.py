"""Decode a manifest's audio once into int16 PCM shards that training reads by memory map.

    python -m asr.cli.shards --manifest data/LibriSpeech/train-clean-100.jsonl \\
        --out data/shards/train-clean-100 [--sample-rate 16000] [--shard-mib 256]

Then list the folder in the recipe: ``data.shards: [data/shards/train-clean-100, ...]``;
utterances found in a shard index are read from it, the others are decoded as before.
Audio that cannot be read is left out of the shards, one line each (training then meets
the file as usual and leaves the utterance out). Format: :mod:`asr.data.shards`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, required=True, help="manifest (JSON lines) whose audio to decode")
    parser.add_argument("--out", type=Path, required=True, help="folder for the shards and index.json")
    parser.add_argument("--sample-rate", type=int, default=16000, help="the front end's rate (features.sample_rate)")
    parser.add_argument("--shard-mib", type=float, default=256.0, help="size of one shard (default 256 MiB)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from asr.audio.read import AudioError, read_audio
    from asr.data.manifest import ManifestError, read_manifest
    from asr.data.shards import ShardError, write_shards

    try:
        entries = read_manifest(args.manifest)
    except ManifestError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    left_out = []

    def decoded():
        for entry in entries:
            try:
                yield entry.id, read_audio(entry.audio, args.sample_rate)
            except AudioError as err:
                left_out.append(entry.id)
                print(f"warning: {entry.id} left out: {err}", file=sys.stderr)

    try:
        index = write_shards(decoded(), args.out, args.sample_rate, args.shard_mib)
    except (ShardError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    hours = sum(s["samples"] for s in index["shards"]) / args.sample_rate / 3600
    print(f"{args.out}: {len(index['utterances'])} utterances, {hours:.2f} h in {len(index['shards'])} shards"
          + (f"; {len(left_out)} left out (unreadable)" if left_out else ""))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
