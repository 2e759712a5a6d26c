"""Kaldi and ESPnet data directories: ``wav.scp``, ``text``, and optionally ``segments`` and
``utt2spk``.

* ``wav.scp``: ``<id> <path>`` (a recording when ``segments`` exists, else an utterance).
  A value ending in ``|`` is a shell command whose stdout is the audio (``sox a.sph -t wav - |``);
  it runs only when the import allows it, since it runs whatever the file says. Archive
  offsets (``foo.ark:123``) are not read. Relative paths are taken from the current folder
  (Kaldi's recipes run from their own folder), else from the data directory.
* ``segments``: ``<utt-id> <recording-id> <start> <end>`` in seconds (``end`` -1: to the end).
* ``text``: ``<utt-id> <transcript>``; ``utt2spk``: ``<utt-id> <speaker>``.

Lines are split by :func:`asr.text.kaldi.split_id_line`, the project's one parser of them; an
id listed twice is a duplicate row here (the first kept), not an error for the whole folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from asr.corpus.formats.rows import BAD_LINE, DUPLICATE, EMPTY_TEXT, MISSING_FILE, FormatError, Problem, Row
from asr.text.kaldi import IdLinesError, decode_lines, split_id_line

_ARCHIVE = re.compile(r"\.ark:\d+$")


def id_lines(path: Path) -> tuple[dict[str, tuple[str, str]], list[Problem]]:
    """An ``id value`` file -> ({id: (value, "file:line")}, duplicate-id problems)."""
    try:
        lines = decode_lines(path.read_bytes(), str(path))
    except IdLinesError as err:
        raise FormatError(str(err)) from None
    except OSError as err:
        raise FormatError(f"{path}: cannot read ({err.strerror})") from None
    values: dict[str, tuple[str, str]] = {}
    problems = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        key, value = split_id_line(line)
        where = f"{path}:{number}"
        if key in values:
            problems.append(Problem(DUPLICATE, where, f"{key!r} first at {values[key][1]}"))
        else:
            values[key] = (value, where)
    return values, problems


def _audio(value: str, folder: Path) -> tuple[str, bool] | None:
    """A wav.scp value -> (path or command, is a command), or None for an archive offset."""
    if value.endswith("|"):
        return value[:-1].strip(), True
    if _ARCHIVE.search(value):
        return None
    if os.path.isabs(value) or os.path.exists(value):
        return os.path.abspath(value), False
    return str(folder / value), False


def read_kaldi(src: Path) -> tuple[list[Row], list[Problem]]:
    """A data directory -> rows (one per ``text`` line) and the problems found in its files."""
    for name in ("wav.scp", "text"):
        if not (src / name).is_file():
            raise FormatError(f"{src}: no {name}: not a Kaldi/ESPnet data directory")
    wavs, problems = id_lines(src / "wav.scp")
    texts, more = id_lines(src / "text")
    problems += more
    speakers, more = id_lines(src / "utt2spk") if (src / "utt2spk").is_file() else ({}, [])
    problems += more
    segments: dict[str, tuple[str, float, float | None]] | None = None
    segment_lines: dict[str, str] = {}
    bad: set[str] = set()  # utterances whose segments line cannot be read
    if (src / "segments").is_file():
        segments = {}
        found, more = id_lines(src / "segments")
        segment_lines = {utt: where for utt, (_, where) in found.items()}
        problems += more
        for utt, (value, where) in found.items():
            parts = value.split()
            try:
                start, end = float(parts[1]), float(parts[2])
                if len(parts) != 3:
                    raise ValueError
            except (ValueError, IndexError):
                problems.append(Problem(BAD_LINE, where, f"'{utt} {value}' is not <utt> <recording> <start> <end>"))
                bad.add(utt)  # named once, as a bad line
                continue
            segments[utt] = (parts[0], start, None if end < 0 else end)
    rows = []
    for utt, (text, where) in texts.items():
        if utt in bad:
            continue  # its segments line is bad: named already
        recording, start, end = segments[utt] if segments is not None and utt in segments else (utt, 0.0, None)
        if segments is not None and utt not in segments or recording not in wavs:
            problems.append(Problem(MISSING_FILE, where, f"{utt!r} has no audio in wav.scp"
                                    + (" or segments" if segments is not None else "")))
            continue
        audio = _audio(wavs[recording][0], src)
        if audio is None:
            problems.append(Problem(BAD_LINE, wavs[recording][1], "archive offsets (.ark:N) are not read"))
            continue
        speaker = speakers.get(utt, ("", ""))[0]
        rows.append(Row(utt, audio[0], text, speaker, start, end, pipe=audio[1], where=where))
    listed = segment_lines if segments is not None else {utt: where for utt, (_, where) in wavs.items()}
    for utt in sorted(listed.keys() - texts.keys() - bad):
        problems.append(Problem(EMPTY_TEXT, listed[utt], f"{utt!r} has no line in text"))
    return rows, problems
