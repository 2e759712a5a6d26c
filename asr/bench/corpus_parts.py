"""A synthesized training split cut into parts by engine and by formant warp, so that a recipe
can weigh each part through ``corpus.mix`` (what each engine and the warps add: the corpus
variants of :mod:`asr.bench.ablation`).

    python -m asr.bench.corpus_parts --recipe recipes/demo/demo.yaml --out data/synth-parts

Writes ``<out>/<engine>_<plain|warp>.jsonl`` (the training manifest's lines of that part)
and an empty folder of the same name beside each (``corpus.mix`` takes folders); the audio
is not copied. Speakers are told apart by their ids, numbered as the corpus plan numbers
them for the engines installed here (:func:`asr.corpus.synth.plan.speaker_table`).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

PARTS_ROOT = "data/synth-parts"


def part_name(engine: str, warp: float) -> str:
    return f"{engine}_{'plain' if warp == 1.0 else 'warp'}"


def split_parts(manifest: Path, table: dict[int, tuple[str, str, float]], out: Path) -> dict[str, tuple[int, float]]:
    """Training manifest + {speaker: (engine, voice, warp)} -> part manifests under ``out``;
    returns {part: (utterances, hours)}."""
    from asr.data.manifest import read_manifest, write_manifest

    parts = defaultdict(list)
    for entry in read_manifest(manifest):
        speaker = int(entry.id.split("-")[0])
        if speaker not in table:
            raise ValueError(f"{manifest}: speaker {speaker} of {entry.id} is not in the corpus plan of the engines installed here")
        engine, _, warp = table[speaker]
        parts[part_name(engine, warp)].append(entry)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, entries in sorted(parts.items()):
        write_manifest(out / f"{name}.jsonl", entries)
        (out / name).mkdir(exist_ok=True)
        counts[name] = (len(entries), sum(e.duration for e in entries) / 3600)
    return counts


def mix(weights: dict[str, float], parts: tuple[str, ...], root: str = PARTS_ROOT) -> tuple[str, ...]:
    """Recipe overrides that train on the parts instead of the train split, each part at its
    weight (1 unless named: an engine name weighs both its parts, ``warp``/``plain`` all of one kind)."""

    def weight(part: str) -> float:
        engine, kind = part.rsplit("_", 1)
        return weights.get(part, weights.get(engine, weights.get(kind, 1.0)))

    items = ",".join(f"{root}/{part}:{weight(part):g}" for part in parts)
    return ("corpus.train_splits=[]", f"corpus.mix=[{items}]")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, default=Path("recipes/demo/demo.yaml"))
    parser.add_argument("--out", type=Path, default=Path(PARTS_ROOT))
    args = parser.parse_args(argv)
    from asr.config import load_recipe
    from asr.corpus.synth.base import load_engines
    from asr.corpus.synth.plan import speaker_table

    corpus = load_recipe(args.recipe).corpus
    manifest = Path(corpus.root) / "train.jsonl"
    if not manifest.exists():
        print(f"error: {manifest}: no training manifest (make the corpus first: python -m asr.cli.prepare --config {args.recipe})")
        return 2
    counts = split_parts(manifest, speaker_table("train", load_engines(corpus.engines, personas=corpus.personas)), args.out)
    for name, (utterances, hours) in counts.items():
        print(f"{name:<14} {utterances:>6} utts {hours:>7.2f} h -> {args.out / name}.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
