"""Language models for the beam search: KenLM files (ARPA or binary, read by flashlight-text),
the words they know, and hotword biasing as a wrapper around any of them.

Files are read here only because the beam search is built from them: an LM path and a lexicon
path. A file that is missing or not a language model is one :class:`LMError` naming it.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from flashlight.lib.text.decoder import LM, LMState
from flashlight.lib.text.decoder.kenlm import KenLM
from flashlight.lib.text.dictionary import Dictionary

SPECIAL_WORDS = ("<s>", "</s>", "<unk>")


class LMError(ValueError):
    """A language model or lexicon that cannot be used; the message names the file."""


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8")


def arpa_words(path: str | Path) -> list[str]:
    """The 1-grams of an ARPA file (plain or .gz), without ``<s> </s> <unk>``. ``(W,)``"""
    path = Path(path)
    words, inside = [], False
    try:
        with _open_text(path) as lines:
            for line in lines:
                line = line.strip()
                if line == "\\1-grams:":
                    inside = True
                elif inside and (line.startswith("\\") or not line):
                    break
                elif inside:
                    fields = line.split("\t")
                    if len(fields) >= 2 and fields[1] not in SPECIAL_WORDS:
                        words.append(fields[1])
    except (OSError, UnicodeDecodeError, EOFError) as err:
        raise LMError(f"{path}: cannot read its words: {err}") from None
    if not inside:
        raise LMError(f"{path}: not an ARPA file (no \\1-grams: section); give a lexicon or {path}.words")
    return words


def read_word_list(path: str | Path) -> list[str]:
    """First column of each non-empty line (a word list, or a lexicon with pronunciations). ``(W,)``"""
    path = Path(path)
    try:
        with _open_text(path) as lines:
            words = [line.split()[0] for line in lines if line.strip()]
    except (OSError, UnicodeDecodeError, EOFError) as err:
        raise LMError(f"{path}: cannot read the lexicon: {err}") from None
    return list(dict.fromkeys(w for w in words if w not in SPECIAL_WORDS))


def lm_vocabulary(lm: str | Path) -> list[str]:
    """The words of LM file ``lm``: its ``<lm>.words`` list (written by ``asr.cli.lm``) if
    present, else the 1-grams of an ARPA file."""
    lm = Path(lm)
    sidecar = lm.with_name(lm.name + ".words")
    if sidecar.exists():
        return read_word_list(sidecar)
    if not lm.exists():
        raise LMError(f"{lm}: no such language model file")
    return arpa_words(lm)


def load_kenlm(path: str | Path, vocabulary: Dictionary) -> KenLM:
    """Open an ARPA or KenLM binary file for the decoder; ``vocabulary`` holds the units it scores."""
    path = Path(path)
    if not path.is_file():
        raise LMError(f"{path}: no such language model file")
    try:
        with _quiet_stderr():
            return KenLM(str(path), vocabulary)
    except Exception as err:  # kenlm's FormatLoadException and friends arrive as RuntimeError
        lines = str(err).strip().splitlines()  # kenlm: "<source location> threw X." then the reason
        reason = (lines[1] if len(lines) > 1 else lines[0] if lines else type(err).__name__).strip()[:120]
        raise LMError(f"{path}: not a KenLM language model (ARPA or binary): {reason}") from None


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 for the block: KenLM prints its progress there while it reads
    an ARPA file (a hint to build a binary, a row of ``*``), which would drown the results
    of every beam run. Its errors still arrive as exceptions."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


class HotwordLM(LM):
    """``inner`` plus a bonus for each unit that continues a hotword phrase.

    Units are what the decoder scores: word ids (lexicon decoding) or token ids (lexicon-free).
    Following a phrase earns ``bonus[unit position]`` per unit as it goes, so the search keeps
    a hotword alive before it is complete; a phrase left unfinished gives its pending bonus
    back (at the next unit or at the end). Scores are divided by ``scale`` because the decoder
    multiplies every LM score by its LM weight. States are the history of units, one
    :class:`LMState` child per unit, so a state maps to one (inner state, phrase position).
    """

    def __init__(self, inner: LM, phrases: Sequence[Sequence[int]], bonuses: Sequence[Sequence[float]], scale: float):
        LM.__init__(self)
        if scale <= 0:
            raise ValueError("hotwords need a positive LM weight")
        self.inner = inner
        self.scale = scale
        self.children: list[dict[int, int]] = [{}]  # phrase trie: node -> {unit: child node}
        self.gain: list[float] = [0.0]  # bonus for entering the node
        self.ends: list[bool] = [False]  # a phrase ends at the node
        for phrase, bonus in zip(phrases, bonuses):
            node = 0
            for unit, gain in zip(phrase, bonus):
                if unit not in self.children[node]:
                    self.children[node][unit] = len(self.children)
                    self.children.append({})
                    self.gain.append(gain)
                    self.ends.append(False)
                node = self.children[node][unit]
            self.ends[node] = True
        self.states: dict[LMState, tuple[LMState, int, float, float]] = {}

    def _advance(self, node: int, pending: float, unit: int) -> tuple[float, int, float]:
        """-> (bonus now, new node, bonus still pending on an unfinished phrase)."""
        bonus = 0.0
        nxt = self.children[node].get(unit)
        if nxt is None and node != 0:  # the phrase broke off: give its bonus back, try a new one
            bonus, pending = -pending, 0.0
            nxt = self.children[0].get(unit)
        if nxt is None:
            return bonus, 0, 0.0
        bonus += self.gain[nxt]
        pending += self.gain[nxt]
        if self.ends[nxt]:
            pending = 0.0  # a whole phrase: the bonus is kept
            if not self.children[nxt]:
                nxt = 0
        return bonus, nxt, pending

    def start(self, start_with_nothing: bool) -> LMState:
        root = LMState()
        self.states = {root: (self.inner.start(start_with_nothing), 0, 0.0, 0.0)}
        return root

    def score(self, state: LMState, unit: int) -> tuple[LMState, float]:
        child = state.child(unit)
        if child not in self.states:
            inner_state, node, pending, _ = self.states[state]
            inner_next, inner_score = self.inner.score(inner_state, unit)
            bonus, node, pending = self._advance(node, pending, unit)
            self.states[child] = (inner_next, node, pending, inner_score + bonus / self.scale)
        return child, self.states[child][3]

    def finish(self, state: LMState) -> tuple[LMState, float]:
        inner_state, _, pending, _ = self.states[state]
        _, inner_score = self.inner.finish(inner_state)
        return state.child(-1), inner_score - pending / self.scale
