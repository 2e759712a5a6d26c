"""What every reader hands on: rows as a layout lists them, and the problems found reading it.

A reader only parses its layout into :class:`Row` objects (nothing is opened but the listing
files); :mod:`asr.corpus.formats.build` then checks each row's text and audio. A row that
cannot be used becomes a :class:`Problem` of one of :data:`KINDS`, counted and listed, and the
import goes on without it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from asr.data.manifest import Entry

# Why a row is left out, in the order they are checked.
DUPLICATE = "duplicate id"  # the id was listed before (the first row with it is kept)
EMPTY_TEXT = "empty text"  # no transcript, or nothing left after the normalization
MISSING_FILE = "missing file"  # no audio listed for it, or the listed file does not exist
UNREADABLE = "unreadable audio"  # soundfile cannot read its header, or the segment is outside it
BAD_LINE = "bad line"  # a listing line that is not a row of the layout (wrong columns, bad JSON)
NOT_ALLOWED = "not allowed"  # a shell command in wav.scp without the explicit allow flag
KINDS = (DUPLICATE, EMPTY_TEXT, MISSING_FILE, UNREADABLE, BAD_LINE, NOT_ALLOWED)


class FormatError(ValueError):
    """A source that is not the layout asked for at all (no listing file, no usable column);
    one line naming it. Single bad rows are :class:`Problem` objects instead."""


@dataclass(frozen=True)
class Row:
    """One utterance as its layout lists it, before its text and audio are checked."""

    id: str
    audio: str  # a file path, or with pipe=True a shell command writing audio to stdout
    text: str  # as written; normalized when the row is built
    speaker: str = ""  # "" = not known
    start: float = 0.0  # seconds into the audio where the utterance starts (Kaldi segments, NeMo offset)
    end: float | None = None  # seconds into the audio where it ends; None = the end of the file
    pipe: bool = False  # audio is a command (Kaldi's "cmd |"); run only when the import allows it
    data: bytes | None = None  # the audio file's bytes, when the layout stores them (Hugging Face)
    where: str = ""  # file:line (or file and index) for messages


@dataclass(frozen=True)
class Problem:
    kind: str  # one of KINDS
    where: str  # file:line, or the utterance id
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.where}: {self.kind}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class Imported:
    """A source read into manifest entries, with the rows left out and why."""

    entries: list[Entry]  # sorted by id; text normalized, duration from the audio header
    speakers: dict[str, str] = field(default_factory=dict)  # id -> speaker, for the entries whose speaker is known
    problems: list[Problem] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Problems per kind, in the order of :data:`KINDS` (kinds with none left out)."""
        found = Counter(p.kind for p in self.problems)
        return {kind: found[kind] for kind in KINDS if found[kind]}


def read_listing(path: Path) -> str:
    """A listing file's text (UTF-8, a byte-order mark dropped), or one FormatError naming it."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise FormatError(f"{path}: cannot read ({err.strerror})") from None
    except UnicodeDecodeError as err:
        raise FormatError(f"{path}: not UTF-8 text (byte {err.object[err.start]:#04x} at {err.start})") from None


def first_seen(rows: list[Row]) -> tuple[list[Row], list[Problem]]:
    """Rows with an id seen before are problems; the first row with each id is kept."""
    kept, problems, seen = [], [], {}
    for row in rows:
        if row.id in seen:
            problems.append(Problem(DUPLICATE, row.where or row.id, f"{row.id!r} first at {seen[row.id]}"))
        else:
            seen[row.id] = row.where or row.id
            kept.append(row)
    return kept, problems
