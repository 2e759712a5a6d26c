"""A folder of audio files, each with a same-named transcript beside it: ``a.wav`` + ``a.txt``
(or ``a.lab``, the label files of HTK and the Montreal Forced Aligner).

Sub-folders are searched too. The id is the path under the folder without its suffix, ``/``
written as ``-`` (``spk1/a.wav`` -> ``spk1-a``). With ``speaker_from_folder`` the first
sub-folder names the speaker (``spk1``); otherwise speakers are not known. An audio file with
no transcript is a row with empty text, a transcript with no audio one with a missing file.
"""

from __future__ import annotations

import os
from pathlib import Path

from asr.corpus.formats.rows import FormatError, Problem, Row

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".au", ".sph")
TEXT_SUFFIXES = (".txt", ".lab")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError:
        return ""


def read_folder(src: Path, speaker_from_folder: bool = False) -> tuple[list[Row], list[Problem]]:
    """Audio files and their transcripts under ``src`` -> rows (one per distinct stem)."""
    if not src.is_dir():
        raise FormatError(f"{src}: not a folder")
    audio: dict[str, Path] = {}
    texts: dict[str, Path] = {}
    again: list[Path] = []  # a second audio file with the same stem (a.wav and a.flac): a duplicate id
    for folder, subfolders, names in os.walk(src):
        subfolders.sort()  # the same first file of a stem on every file system
        for name in sorted(names):
            path = Path(folder) / name
            stem, suffix = os.path.splitext(os.path.relpath(path, src))
            if suffix.lower() in AUDIO_SUFFIXES:
                if stem in audio:
                    again.append(path)
                audio.setdefault(stem, path)
            elif suffix.lower() in TEXT_SUFFIXES:
                texts.setdefault(stem, path)
    if not audio and not texts:
        raise FormatError(f"{src}: no audio files ({', '.join(AUDIO_SUFFIXES)}) and no transcripts")
    rows = []
    for stem in sorted(audio.keys() | texts.keys()):
        parts = Path(stem).parts
        speaker = parts[0] if speaker_from_folder and len(parts) > 1 else ""
        transcript = texts.get(stem)
        where = str(transcript or audio[stem])
        text = _read_text(transcript) if transcript else ""
        rows.append(Row("-".join(parts), str(audio.get(stem, "")), text, speaker, where=where))
    for path in sorted(again):
        stem = os.path.splitext(os.path.relpath(path, src))[0]
        rows.append(Row("-".join(Path(stem).parts), str(path), "", where=str(path)))  # its text: not read
    return rows, []
