"""Train / dev / test / held-out splits of sentences, disjoint on the normalized form."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from asr.text import normalize_text

SPLITS = ("train", "dev", "test", "heldout")


def split_sentences(
    by_source: Mapping[str, Sequence[str]], dev: int, test: int, seed: int, heldout: int | None = None
) -> dict[str, list[str]]:
    """Split each source's sentences into ``dev``, ``test`` and ``heldout`` (default: ``test``)
    sentences per source, the rest ``train``. A normalized form is in one split only (the first
    source in sorted name order keeps it); the held-out pool is never trained on, for test sets
    spoken by engines unseen in training. Same inputs and seed, same splits. Lists are sorted."""
    heldout = test if heldout is None else heldout
    out: dict[str, list[str]] = {split: [] for split in SPLITS}
    seen: set[str] = set()
    for name in sorted(by_source):
        unique = {}
        for sentence in sorted(by_source[name]):
            key = normalize_text(sentence)
            if key and key not in seen and key not in unique:
                unique[key] = sentence
        seen.update(unique)
        pool = sorted(unique.values())
        random.Random(f"{seed}:{name}").shuffle(pool)
        sizes = {"heldout": heldout, "test": test, "dev": dev}
        start = 0
        for split, size in sizes.items():
            out[split] += pool[start : start + size]
            start += size
        out["train"] += pool[start:]
    return {split: sorted(sentences) for split, sentences in out.items()}
