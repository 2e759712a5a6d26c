"""From raw text to sentences a reader would speak, in their original case and punctuation.

``clean_sentences(text)`` drops markup, stage notes ("(Applause.)", "[laughter]"),
attributions ("-- Mark Twain"), sentences with URLs or e-mail addresses; spells numbers out;
splits into sentences; and keeps those of 3..20 plain words that ``normalize_text`` keeps
whole (A-Z and the apostrophe: a sentence left with digits or non-Latin letters is dropped).
``why_dropped`` names the rule that rejects a sentence, for the per-source tables.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator

from asr.corpus.text_sources.numbers import spell_numbers
from asr.text import normalize_text

MIN_WORDS, MAX_WORDS = 3, 20
MAX_WORD_LETTERS = 18  # longer "words" are identifiers, URLs or run-together text

_TAG = re.compile(r"<[^>]*>")
_ANNOTATION = re.compile(r"<(note|title)\b.*?</\1>", re.DOTALL)  # footnotes and headings (OSIS)
_NOTE = re.compile(r"\[[^\]]*\]|\([^)]*\)|\{[^}]*\}")  # stage notes, asides, verse and reference marks
_ATTRIBUTION = re.compile(r"(?:^|\s)(?:--|\u2014|\u2015|~)\s*[A-Z][^\n]*$", re.MULTILINE)
_URL_OR_MAIL = re.compile(r"https?://|www\.|\b\S+@\S+\.\w+|\.(?:com|org|net|edu|gov)\b", re.IGNORECASE)
_SPEAKER = re.compile(r"^\s*[A-Z][A-Za-z .]{0,20}:\s+(?=[A-Z])", re.MULTILINE)  # "Q: ", "MR. SMITH: "
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\u201d\u2019]*\s+(?=[\"'\u201c\u2018]?[A-Za-z])")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?])")
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*'?")
_ALLOWED = re.compile(r"[A-Za-z' .,;:!?\"-]+")
_ABBREVIATIONS = {"Mr.": "Mister", "Mrs.": "Missus", "Dr.": "Doctor", "Messrs.": "Messieurs", "Mt.": "Mount"}
_ABBREVIATION = re.compile(r"\b(?:" + "|".join(re.escape(a[:-1]) for a in _ABBREVIATIONS) + r")\.")
_PUNCT = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": " - ", "\u2014": ", ",
    "\u2026": "...", "\u00a0": " ", "`": "'", "\t": " ",
})
SINGLE_CAPITALS = {"I", "A", "O"}


def _fold(text: str) -> str:
    """Curly quotes and dashes to ASCII; accents off Latin letters (café -> cafe)."""
    text = unicodedata.normalize("NFKC", text).translate(_PUNCT)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def strip_markup(text: str) -> str:
    """Tags, entities, stage notes, attributions and speaker labels out; "--" to a comma."""
    text = _TAG.sub(" ", _ANNOTATION.sub(" ", html.unescape(text)))
    text = _ATTRIBUTION.sub("", _fold(text))
    text = _NOTE.sub(" ", text)
    text = _SPEAKER.sub("", text)
    text = text.replace("--", ", ").replace("*", " ").replace("_", " ")
    return _ABBREVIATION.sub(lambda m: _ABBREVIATIONS[m.group(0)], text)


def split_into_sentences(text: str) -> list[str]:
    """Sentence-final punctuation followed by space and a letter ends a sentence. ``(S,)``"""
    flat = _SPACE_BEFORE_PUNCT.sub(r"\1", " ".join(text.split()))
    return [s.strip(" ,;:-") for s in _SENTENCE_END.split(flat) if s.strip(" ,;:-")]


def why_dropped(sentence: str) -> str | None:
    """The rule that rejects ``sentence`` (already cleaned), or None if it is kept."""
    if _URL_OR_MAIL.search(sentence):
        return "url/email"
    if any(ch.isdigit() for ch in sentence):
        return "digits"
    if not _ALLOWED.fullmatch(sentence):
        return "symbols/non-latin"
    words = _WORD.findall(sentence)
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return "length"
    for word in words:
        letters = word.replace("'", "")
        if len(letters) > MAX_WORD_LETTERS:
            return "odd word"
        if letters.isupper() and word not in SINGLE_CAPITALS:
            return "acronym/caps"
        if any(ch.isupper() for ch in letters[1:]) and not letters.isupper():
            return "odd word"  # camelCase, McThing
        if not re.search(r"[aeiouyAEIOUY]", letters) and len(letters) > 1:
            return "odd word"  # "hmm", "brb", "xyz"
    if len(normalize_text(sentence).split()) != len(words):
        return "normalization"
    return None


def clean_sentences(text: str, dropped: Counter | None = None) -> Iterator[str]:
    """The speakable sentences of one raw ``text``; rejects are counted in ``dropped`` by rule."""
    sentences = split_into_sentences(strip_markup(text))
    for sentence in sentences:
        if _URL_OR_MAIL.search(sentence):
            reason = "url/email"
        else:
            sentence = spell_numbers(sentence)
            reason = why_dropped(sentence)
        if reason is None:
            yield sentence
        elif dropped is not None:
            dropped[reason] += 1


def unique_sorted(sentences: Iterable[str], dropped: Counter | None = None) -> list[str]:
    """One sentence per normalized form (the smallest spelling wins), sorted."""
    best: dict[str, str] = {}
    for sentence in sentences:
        key = normalize_text(sentence)
        if key in best:
            if dropped is not None:
                dropped["duplicate"] += 1
            if sentence < best[key]:
                best[key] = sentence
        else:
            best[key] = sentence
    return sorted(best.values())
