"""Train / dev / test splits that do not leak.

* By speaker when every utterance's speaker is known and there are at least
  :data:`MIN_SPEAKERS`: whole speakers go to test, then dev, in a seeded order, until each
  has the size asked for (it may pass it by one speaker's utterances), so no voice is both
  trained on and scored.
* Otherwise by a seeded hash of the id: the same id lands in the same split on every run,
  whatever order the rows came in.
* Then a training utterance whose text (normalized, as every entry's is) is also the text of a
  dev or test utterance is left out of training, counted: a sentence heard in training would
  flatter the score.

A size is a number of utterances (``200``) or, below 1, a share of them (``0.05``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from asr.data.manifest import Entry

MIN_SPEAKERS = 3  # fewer known speakers cannot give train, dev and test a voice each


@dataclass(frozen=True)
class Splits:
    train: list[Entry]
    dev: list[Entry]
    test: list[Entry]
    by: str  # "speaker" or "id hash": how dev and test were drawn
    shared_text: int  # training utterances left out: their text is a dev or test text


def size_of(size: float, total: int) -> int:
    """``200`` -> 200 utterances; ``0.05`` -> 5% of ``total`` (rounded); never more than ``total``."""
    if size < 0:
        raise ValueError(f"a split size is an utterance count or a share in [0, 1), got {size}")
    return min(total, int(size) if size >= 1 else round(size * total))


def _rank(key: str, seed: int) -> str:
    return hashlib.sha1(f"{seed}:{key}".encode()).hexdigest()


def split_entries(entries: list[Entry], speakers: dict[str, str], dev: float, test: float, seed: int = 0) -> Splits:
    """Entries -> :class:`Splits` with about ``dev`` and ``test`` utterances held out."""
    n_dev, n_test = size_of(dev, len(entries)), size_of(test, len(entries))
    known = {speakers.get(e.id, "") for e in entries}
    by_speaker = "" not in known and len(known) >= MIN_SPEAKERS
    if by_speaker:
        groups: dict[str, list[Entry]] = {}
        for entry in entries:
            groups.setdefault(speakers[entry.id], []).append(entry)
        order = [groups[s] for s in sorted(groups, key=lambda s: _rank(s, seed))]
    else:
        order = [[e] for e in sorted(entries, key=lambda e: _rank(e.id, seed))]
    held: dict[str, list[Entry]] = {"test": [], "dev": []}
    rest: list[Entry] = []
    for group in order:
        name = "test" if len(held["test"]) < n_test else "dev" if len(held["dev"]) < n_dev else None
        if name is not None and not (by_speaker and order[-1] is group and not rest):
            held[name] += group  # (by speaker, the last group always trains: training keeps a voice)
        else:
            rest += group
    heard = {e.text for e in held["dev"] + held["test"]}
    train = [e for e in rest if e.text not in heard]
    ordered = (sorted(part, key=lambda e: e.id) for part in (train, held["dev"], held["test"]))
    return Splits(*ordered, by="speaker" if by_speaker else "id hash", shared_text=len(rest) - len(train))
