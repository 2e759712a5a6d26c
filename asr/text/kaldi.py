"""Kaldi-style ``id value`` files: ``text`` (``utt-id transcript``), ``wav.scp`` (``utt-id
path``), LibriSpeech ``*.trans.txt``. The one parser of such lines in the project.

The id ends at the first run of whitespace, spaces or tabs alike (Kaldi's own tools and many
others write a tab there); the value is the rest of the line, stripped, and may be empty (an
utterance with no transcript). Empty lines are skipped, a UTF-8 byte-order mark and Windows
line ends are accepted. Bytes that are not UTF-8 and ids that appear twice are one
:class:`IdLinesError` naming the file and the lines.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Mapping

MAX_SHOWN = 5  # ids named in one message
_SPACES = " \t\r\n\v\f"
_WHITESPACE = re.compile(f"[{re.escape(_SPACES)}]+")


class IdLinesError(ValueError):
    """An ``id value`` file that cannot be used; the message names the file and the lines."""


def split_id_line(line: str) -> tuple[str, str]:
    """``"utt-1<TAB>HELLO  WORLD"`` -> ``("utt-1", "HELLO  WORLD")``; the value may be ``""``.
    Whitespace is what Kaldi's C tools take for it (space, tab, CR, LF, VT, FF), not every
    Unicode space: a transcript keeps its U+0085 or U+2028."""
    parts = _WHITESPACE.split(line.strip(_SPACES), maxsplit=1)
    return parts[0], parts[1] if len(parts) > 1 else ""


def parse_id_lines(lines: Iterable[str], source: str) -> dict[str, str]:
    """Lines -> {id: value} in file order; :class:`IdLinesError` naming every duplicated id
    (up to :data:`MAX_SHOWN`) with its line numbers. ``source`` names the file in messages."""
    values: dict[str, str] = {}
    where: dict[str, list[int]] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip(_SPACES):
            continue
        utt_id, value = split_id_line(line)
        where.setdefault(utt_id, []).append(number)
        values.setdefault(utt_id, value)
    twice = {i: numbers for i, numbers in where.items() if len(numbers) > 1}
    if twice:
        shown = ", ".join(f"{i!r} (lines {', '.join(map(str, n))})" for i, n in list(twice.items())[:MAX_SHOWN])
        more = f" and {len(twice) - MAX_SHOWN} more" if len(twice) > MAX_SHOWN else ""
        raise IdLinesError(f"{source}: {len(twice)} utterance ids appear more than once: {shown}{more}")
    return values


def decode_lines(data: bytes, source: str) -> list[str]:
    """File bytes -> its lines (``\\n`` or ``\\r\\n`` ends only: a transcript may hold other
    characters that ``str.splitlines`` would cut at); :class:`IdLinesError` naming the first
    line that is not UTF-8."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise IdLinesError(f"{source}:{line}: not UTF-8 text (byte {data[err.start]:#04x})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def read_id_lines(path: str | Path) -> dict[str, str]:
    """A Kaldi ``text`` or ``wav.scp``-style file -> {id: value}; :class:`IdLinesError`
    (or ``OSError`` when it cannot be read) naming it."""
    return parse_id_lines(decode_lines(Path(path).read_bytes(), str(path)), str(path))


def unmatched(references: Mapping[str, str], hypotheses: Iterable[str]) -> list[str]:
    """Warning lines for ids on one side only: references with no audio (not scored) and
    audio with no reference (not scored), each counted and listed (up to :data:`MAX_SHOWN`)."""
    hyps = list(hypotheses)
    seen = set(hyps)
    no_audio = [i for i in references if i not in seen]
    no_ref = [i for i in hyps if i not in references]
    lines = []
    for ids, what in ((no_audio, "references have no audio"), (no_ref, "inputs have no reference")):
        if ids:
            more = " ..." if len(ids) > MAX_SHOWN else ""
            lines.append(f"warning: {len(ids)} {what}, not scored: {', '.join(ids[:MAX_SHOWN])}{more}")
    return lines
