"""The one text normalization used everywhere: transcripts on disk, tokenizer training,
references and hypotheses before WER.

Rule (LibriSpeech's own convention): upper-case; every character other than A-Z and the
apostrophe becomes a space; apostrophes that do not sit between two letters are dropped;
runs of spaces collapse to one. ``"Don't stop, 'Bob'!"`` -> ``"DON'T STOP BOB"``.
Digits are not spelled out: the corpora we train on contain none.
"""

from __future__ import annotations

import re

_NOT_LETTER = re.compile(r"[^A-Z']+")
_LOOSE_APOSTROPHE = re.compile(r"(?<![A-Z])'|'(?![A-Z])")


def normalize_text(text: str) -> str:
    text = _NOT_LETTER.sub(" ", text.upper())
    text = _LOOSE_APOSTROPHE.sub(" ", text)
    return " ".join(text.split())
