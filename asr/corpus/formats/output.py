"""An import's files, in the folder that ``corpus.kind: manifest`` reads:

* ``train.jsonl``, ``dev.jsonl``, ``test.jsonl``: the project's manifests (id, audio, duration,
  normalized text), one per split, each possibly empty;
* ``utt2spk``: ``<id> <speaker>`` for the utterances whose speaker is known (Kaldi's format;
  the manifest has no speaker field);
* ``problems.txt``: one line per row left out, and why.

Every file is written whole or not at all (:mod:`asr.audio.atomic`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from asr.audio.atomic import atomic_write_text
from asr.corpus.formats.rows import Problem
from asr.corpus.formats.split import Splits
from asr.data.manifest import Entry, write_manifest

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Summary:
    utterances: int
    hours: float
    speakers: int  # distinct known speakers (0: none known)


def summarize(entries: list[Entry], speakers: dict[str, str]) -> Summary:
    known = {speakers[e.id] for e in entries if e.id in speakers}
    return Summary(len(entries), sum(e.duration for e in entries) / 3600, len(known))


def write_import(out: str | Path, splits: Splits, speakers: dict[str, str], problems: list[Problem]) -> dict[str, Path]:
    """-> {split: manifest path} after writing every file of the import under ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = {name: write_manifest(out / f"{name}.jsonl", getattr(splits, name)) for name in SPLITS}
    kept = sorted(e.id for name in SPLITS for e in getattr(splits, name) if e.id in speakers)
    atomic_write_text(out / "utt2spk", "".join(f"{i} {'_'.join(speakers[i].split())}\n" for i in kept))
    atomic_write_text(out / "problems.txt", "".join(f"{p}\n" for p in problems))
    return written
