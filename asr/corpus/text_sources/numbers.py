"""Numbers, money, percentages and ordinals spelled out as a reader says them.

``"In 1999 we paid $5 for 3% of the 2nd lot & more"`` ->
``"In nineteen ninety nine we paid five dollars for three percent of the second lot and more"``.
Uses ``inflect`` (MIT) for the words; years are read in pairs here because inflect reads
``1999`` as a cardinal ("one thousand, nine hundred and ninety-nine").
"""

from __future__ import annotations

import re
from functools import lru_cache

_SCALE = r"(?:hundred|thousand|million|billion|trillion)"
_MONEY = re.compile(rf"\$\s?(\d[\d,]*)(?:\.(\d\d))?(?:\s+({_SCALE}))?\b")
_PERCENT = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s?(?:%|per ?cent\b)")
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_DECADE = re.compile(r"\b(1[1-9]|20)(\d0)'?s\b")
MAX_DIGITS = 12  # up to hundreds of billions; longer numbers are identifiers, not speech
_NUMBER = re.compile(r"\b\d{1,3}(?:,\d{3})+(?:\.\d+)?\b|\b\d+(?:\.\d+)?\b")


@lru_cache(maxsize=1)
def _engine():
    import inflect

    return inflect.engine()


def _words(text: str) -> str:
    """inflect's words without its commas, hyphens and "and" between hundreds and units."""
    spoken = _engine().number_to_words(text, andword="")
    return " ".join(spoken.replace(",", " ").replace("-", " ").split())


def year_words(year: int) -> str:
    """``1999`` -> "nineteen ninety nine", ``1905`` -> "nineteen oh five", ``2007`` -> "two thousand seven"."""
    high, low = divmod(year, 100)
    if 2000 <= year <= 2009 or low == 0 and high % 10 == 0:
        return _words(str(year))
    if low == 0:
        return f"{_words(str(high))} hundred"
    tail = _words(str(low)) if low >= 10 else f"oh {_words(str(low))}"
    return f"{_words(str(high))} {tail}"


def _is_year(token: str) -> bool:
    return len(token) == 4 and token.isdigit() and 1100 <= int(token) <= 2099


def _cardinal(token: str) -> str:
    plain = token.replace(",", "")
    if len(plain.partition(".")[0]) > MAX_DIGITS:
        return token  # left as digits: the sentence is dropped
    return year_words(int(plain)) if _is_year(token) else _words(plain)


def _plural(words: str) -> str:
    head, _, last = words.rpartition(" ")
    last = last[:-1] + "ies" if last.endswith("y") else last + "s"
    return f"{head} {last}".strip()


def _money(match: re.Match) -> str:
    whole, cents, scale = match.group(1).replace(",", ""), match.group(2), match.group(3)
    if len(whole) > MAX_DIGITS:
        return match.group(0)
    if scale:
        return f"{_words(whole)} {scale} dollars"
    spoken = f"{_words(whole)} {'dollar' if whole == '1' else 'dollars'}"
    if cents and int(cents):
        spoken += f" and {_words(str(int(cents)))} {'cent' if cents == '01' else 'cents'}"
    return spoken


def spell_numbers(text: str) -> str:
    """Every digit sequence in ``text`` as words; "&" becomes "and". Text without digits is unchanged."""
    text = text.replace("&", " and ")
    if not any(ch.isdigit() for ch in text):
        return " ".join(text.split())
    text = _MONEY.sub(_money, text)
    text = _PERCENT.sub(lambda m: f"{_cardinal(m.group(1))} percent", text)
    text = _ORDINAL.sub(lambda m: _words(_engine().ordinal(int(m.group(1)))), text)
    text = _DECADE.sub(lambda m: _plural(year_words(int(m.group(1) + m.group(2)))), text)
    text = _NUMBER.sub(lambda m: _cardinal(m.group(0)), text)
    return " ".join(text.split())
