"""Hugging Face ``datasets`` folders (``Dataset.save_to_disk``), read through ``datasets``
itself (``pip install -r requirements-corpora.txt``).

The audio column is the one of type ``Audio`` (or the one named); it is read undecoded: the
stored file bytes are written out when imported, else its path is used. The text, id and
speaker columns are the named ones, or found under a usual name (``text``, ``sentence``,
``transcription``...; ``id``...; ``speaker_id``, ``client_id``...). A ``DatasetDict`` folder
needs the split named.
"""

from __future__ import annotations

from pathlib import Path

from asr.corpus.formats.rows import MISSING_FILE, FormatError, Problem, Row
from asr.corpus.formats.tables import ID_COLUMNS, SPEAKER_COLUMNS, TEXT_COLUMNS


def _datasets():
    try:
        import datasets
    except ImportError:
        raise FormatError("the hf format needs datasets: pip install -r requirements-corpora.txt") from None
    return datasets


def _pick(columns: list[str], given: str, usual: tuple[str, ...], what: str, src: Path, required=True) -> str | None:
    if given:
        if given not in columns:
            raise FormatError(f"{src}: no column {given!r}; the columns are {', '.join(columns)}")
        return given
    found = next((c for c in columns if c.lower() in usual), None)
    if found is None and required:
        raise FormatError(f"{src}: no {what} column (one of {', '.join(usual)}); the columns are {', '.join(columns)}")
    return found


def read_hf(src: Path, split: str = "", audio_column: str = "", text_column: str = "",
            speaker_column: str = "") -> tuple[list[Row], list[Problem]]:
    """A ``save_to_disk`` folder -> rows (audio as stored bytes or paths) and rows with neither."""
    datasets = _datasets()
    try:
        data = datasets.load_from_disk(str(src))
    except (FileNotFoundError, ValueError, OSError) as err:
        raise FormatError(f"{src}: not a datasets folder ({' '.join(str(err).split())[:200]})") from None
    if isinstance(data, datasets.DatasetDict):
        if split not in data:
            raise FormatError(f"{src}: a DatasetDict: name a split ({', '.join(data)})")
        data = data[split]
    columns = list(data.column_names)
    audio_col = audio_column or next((c for c, f in data.features.items() if isinstance(f, datasets.Audio)), None)
    if audio_col not in columns:
        raise FormatError(f"{src}: no Audio column (name one); the columns are {', '.join(columns)}")
    text_col = _pick(columns, text_column, TEXT_COLUMNS, "text", src)
    speaker_col = _pick(columns, speaker_column, SPEAKER_COLUMNS, "speaker", src, required=bool(speaker_column))
    id_col = _pick(columns, "", ID_COLUMNS, "id", src, required=False)
    if isinstance(data.features[audio_col], datasets.Audio):
        data = data.cast_column(audio_col, datasets.Audio(decode=False))  # the stored bytes, not samples
    rows, problems = [], []
    for index, item in enumerate(data):
        audio = item[audio_col] if isinstance(item[audio_col], dict) else {"path": item[audio_col]}
        path, stored = audio.get("path") or "", audio.get("bytes")
        utt = str(item[id_col]) if id_col else (Path(path).stem if path else f"{index:08d}")
        where = f"{src}[{index}] {utt}"
        if not stored and not path:
            problems.append(Problem(MISSING_FILE, where, "neither audio bytes nor a path"))
            continue
        speaker = str(item[speaker_col] or "") if speaker_col else ""
        text = item[text_col] if isinstance(item[text_col], str) else ""
        rows.append(Row(utt, path if not stored else "", text, speaker, data=bytes(stored) if stored else None,
                        where=where))
    return rows, problems
