"""Word error rate with jiwer, after the one normalization in :mod:`asr.text.normalize` on both sides."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping

import jiwer

from asr.text.normalize import normalize_text


@dataclass(frozen=True)
class WERResult:
    wer: float  # (S + D + I) / N
    substitutions: int
    deletions: int
    insertions: int
    words: int  # N, reference words
    utterances: int

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"WER {100 * self.wer:.2f}% ({self.substitutions} sub, {self.deletions} del, "
            f"{self.insertions} ins / {self.words} words, {self.utterances} utterances)"
        )


def word_errors(references: list[str], hypotheses: list[str]) -> WERResult:
    """Corpus-level WER of paired lists (raw text; normalized here)."""
    refs = [normalize_text(r) for r in references]
    hyps = [normalize_text(h) for h in hypotheses]
    pairs = [(r, h) for r, h in zip(refs, hyps) if r]
    if not pairs:
        raise ValueError("no non-empty reference to score")
    out = jiwer.process_words([r for r, _ in pairs], [h for _, h in pairs])
    words = out.hits + out.substitutions + out.deletions
    # Empty references add their hypothesis words as insertions.
    extra = sum(len(h.split()) for r, h in zip(refs, hyps) if not r)
    errors = out.substitutions + out.deletions + out.insertions + extra
    return WERResult(errors / words, out.substitutions, out.deletions, out.insertions + extra, words, len(refs))


def read_kaldi_text(path: str | Path) -> dict[str, str]:
    """Kaldi ``text`` file: ``utt-id transcript`` per line (split at the first space or tab)
    -> {id: transcript}; :class:`asr.text.kaldi.IdLinesError` names a duplicate id or bad bytes."""
    from asr.text.kaldi import read_id_lines

    return read_id_lines(path)


def score(references: Mapping[str, str], hypotheses: Mapping[str, str]) -> WERResult:
    """Score the utterances in ``hypotheses`` that have a reference; a missing hypothesis
    (a file that failed) counts as empty, so every reference word is a deletion."""
    ids = [i for i in hypotheses if i in references]
    return word_errors([references[i] for i in ids], [hypotheses[i] for i in ids])
