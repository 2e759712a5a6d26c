"""Layouts that are one table: a CSV/TSV with a header, LJSpeech's ``metadata.csv`` and a
Common Voice release's ``*.tsv``.

* CSV/TSV (``.tsv`` or ``.tab``: tab-separated, else comma): a header row names the columns;
  the path and text columns are given, or found under a usual name (:data:`PATH_COLUMNS`,
  :data:`TEXT_COLUMNS`); an id column and a speaker column are used when present, else the
  id is the audio file's name without its suffix. Relative paths are from the table's folder.
* LJSpeech: ``metadata.csv`` of ``id|text|normalized text`` (no header, no quoting) beside
  ``wavs/<id>.wav``; the normalized text is used where given. One voice: no speaker.
* Common Voice (one language's folder): ``validated.tsv`` (or ``train``, ``dev``, ``test``,
  ...) with ``client_id``, ``path`` and ``sentence`` columns, audio in ``clips/*.mp3``; the
  speaker is the ``client_id``. MP3 needs libsndfile 1.1 or later under soundfile.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import soundfile as sf

from asr.corpus.formats.rows import BAD_LINE, FormatError, Problem, Row, read_listing

PATH_COLUMNS = ("path", "audio", "audio_path", "audio_filepath", "file", "filename", "file_name", "wav")
TEXT_COLUMNS = ("text", "transcript", "transcription", "sentence", "normalized_text")
ID_COLUMNS = ("id", "utt_id", "utterance_id")
SPEAKER_COLUMNS = ("speaker", "speaker_id", "client_id", "spk")


def _open_rows(path: Path, delimiter: str, quoting: int) -> list[tuple[int, list[str]]]:
    """The table's rows as (line number, cells), or a FormatError naming the file. Quoted
    cells may hold newlines; other characters (U+2028 too) stay inside their cell."""
    text = read_listing(path)
    csv.field_size_limit(sys.maxsize)  # a transcript may be long; csv's default limit is 128 KiB
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    return [(reader.line_num, cells) for cells in reader]  # line_num: the line the row ended on


def _column(header: list[str], given: str, usual: tuple[str, ...], what: str, path: Path, required=True) -> int | None:
    names = [name.strip().lower() for name in header]
    for name in (given.lower(),) if given else usual:
        if name in names:
            return names.index(name)
    if required:
        wanted = repr(given) if given else f"one of {', '.join(usual)}"
        raise FormatError(f"{path}: no {what} column ({wanted}); the header has {', '.join(header)}")
    return None


def read_table(src: Path, path_column: str = "", text_column: str = "", speaker_column: str = "",
               delimiter: str = "") -> tuple[list[Row], list[Problem]]:
    """A CSV/TSV file with a header row -> rows and the lines that are not rows."""
    delimiter = delimiter or ("\t" if src.suffix.lower() in (".tsv", ".tab") else ",")
    table = _open_rows(src, delimiter, csv.QUOTE_MINIMAL)
    if not table:
        raise FormatError(f"{src}: empty table (a header row naming the path and text columns is expected)")
    header = table[0][1]
    at_path = _column(header, path_column, PATH_COLUMNS, "audio path", src)
    at_text = _column(header, text_column, TEXT_COLUMNS, "text", src)
    at_speaker = _column(header, speaker_column, SPEAKER_COLUMNS, "speaker", src, required=bool(speaker_column))
    at_id = _column(header, "", ID_COLUMNS, "id", src, required=False)
    rows, problems = [], []
    for number, cells in table[1:]:
        where = f"{src}:{number}"
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            problems.append(Problem(BAD_LINE, where, f"{len(cells)} columns, the header has {len(header)}"))
            continue
        audio = cells[at_path].strip()
        utt = cells[at_id].strip() if at_id is not None else Path(audio).stem
        speaker = cells[at_speaker].strip() if at_speaker is not None else ""
        rows.append(Row(utt or f"line{number}", str(src.parent / audio) if audio else "", cells[at_text], speaker,
                        where=where))
    return rows, problems


def read_ljspeech(src: Path) -> tuple[list[Row], list[Problem]]:
    """An LJSpeech-style folder (``metadata.csv`` + ``wavs/``) -> rows and bad lines."""
    metadata = src / "metadata.csv"
    if not metadata.is_file():
        raise FormatError(f"{src}: no metadata.csv: not an LJSpeech-style folder")
    rows, problems = [], []
    for number, cells in _open_rows(metadata, "|", csv.QUOTE_NONE):
        where = f"{metadata}:{number}"
        if not cells or not "".join(cells).strip():
            continue
        if len(cells) not in (2, 3) or not cells[0].strip():
            problems.append(Problem(BAD_LINE, where, "not id|text or id|text|normalized text"))
            continue
        utt = cells[0].strip()
        text = cells[2] if len(cells) == 3 and cells[2].strip() else cells[1]
        rows.append(Row(utt, str(src / "wavs" / f"{utt}.wav"), text, where=where))
    return rows, problems


def read_commonvoice(src: Path, split: str = "validated") -> tuple[list[Row], list[Problem]]:
    """One language's Common Voice folder -> the rows of ``<split>.tsv`` and its bad lines."""
    listing = src / f"{split}.tsv"
    if not listing.is_file():
        found = ", ".join(sorted(p.stem for p in src.glob("*.tsv"))) or "none"
        raise FormatError(f"{src}: no {split}.tsv: not a Common Voice language folder (tables here: {found})")
    if "MP3" not in sf.available_formats():
        raise FormatError(f"soundfile's libsndfile {sf.__libsndfile_version__} cannot read MP3 (1.1.0 or later "
                          "can): upgrade soundfile, or convert clips/ to FLAC and import the table as csv")
    table = _open_rows(listing, "\t", csv.QUOTE_NONE)
    if not table:
        raise FormatError(f"{listing}: empty")
    header = table[0][1]
    at_path = _column(header, "path", (), "path", listing)
    at_text = _column(header, "sentence", (), "sentence", listing)
    at_speaker = _column(header, "client_id", (), "client_id", listing, required=False)
    rows, problems = [], []
    for number, cells in table[1:]:
        where = f"{listing}:{number}"
        if len(cells) < len(header):
            problems.append(Problem(BAD_LINE, where, f"{len(cells)} columns, the header has {len(header)}"))
            continue
        clip = cells[at_path].strip()
        speaker = cells[at_speaker].strip() if at_speaker is not None else ""
        rows.append(Row(Path(clip).stem, str(src / "clips" / clip) if clip else "", cells[at_text], speaker,
                        where=where))
    return rows, problems
