"""NeMo manifests: JSON lines of ``{"audio_filepath", "text", "duration", "offset"?}``.

A line without ``offset`` is the whole file, its duration read from the header (the
manifest's own ``duration`` is not trusted); with ``offset``, the utterance is ``duration``
seconds from there, cut out when imported. NeMo has no utterance id: it is the audio file's
name without its suffix, with the offset in milliseconds appended when there is one. Relative
paths are from the manifest's folder. A ``speaker`` (or ``speaker_id``) field is kept.
"""

from __future__ import annotations

import json
from pathlib import Path

from asr.corpus.formats.rows import BAD_LINE, Problem, Row, read_listing


def _row(fields, src: Path, where: str) -> Row:
    """One decoded line -> a Row; ValueError / TypeError say what is wrong with it."""
    if not isinstance(fields, dict):
        raise TypeError(f"a {type(fields).__name__}, not an object")
    audio, text = fields.get("audio_filepath"), fields.get("text", "")
    if not isinstance(audio, str) or not isinstance(text, str):
        raise TypeError("audio_filepath and text must be strings")
    offset = fields.get("offset")
    utt = Path(audio).stem
    start, end = 0.0, None
    if offset is not None:
        duration = fields.get("duration")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (offset, duration)):
            raise TypeError("offset and duration must be numbers of seconds")
        start, end = float(offset), float(offset) + float(duration)
        utt = f"{utt}-{round(start * 1000):08d}"
    speaker = fields.get("speaker", fields.get("speaker_id", ""))
    return Row(utt, str(src.parent / audio) if audio else "", text, str(speaker or ""), start, end, where=where)


def read_nemo(src: Path) -> tuple[list[Row], list[Problem]]:
    """A NeMo JSON-lines manifest -> rows and the lines that are not entries."""
    rows, problems = [], []
    for number, line in enumerate(read_listing(src).split("\n"), 1):
        if not line.strip():
            continue
        where = f"{src}:{number}"
        try:
            rows.append(_row(json.loads(line), src, where))
        except (json.JSONDecodeError, TypeError, ValueError) as err:
            problems.append(Problem(BAD_LINE, where, str(err)))
    return rows, problems
