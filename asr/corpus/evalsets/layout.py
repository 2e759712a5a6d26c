"""LibriSpeech's layout for the test sets, the ``.done`` stamp, and the transcripts that
training text must exclude.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np

from asr.audio import write_flac
from asr.audio.atomic import atomic_write, atomic_write_text
from asr.text import normalize_text

UTTERANCES_PER_CHAPTER = 100


def settings_key(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def is_done(folder: Path, settings: dict) -> bool:
    """True when ``folder`` was built to the end with these settings."""
    stamp = folder / ".done"
    if not stamp.is_file():
        return False
    try:
        return json.loads(stamp.read_text(encoding="utf-8")).get("key") == settings_key(settings)
    except json.JSONDecodeError:
        return False


def start(folder: Path) -> None:
    """Empty ``folder`` for a fresh build (a build with other settings, or an unfinished one),
    and drop its manifest (``<folder>.jsonl``, :func:`asr.training.prepare.split_manifest`),
    which would name the old build's sentences."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder.parent / f"{folder.name}.jsonl").unlink(missing_ok=True)
    folder.mkdir(parents=True)


def finish(folder: Path, settings: dict, report: dict) -> None:
    atomic_write_text(folder / ".done", json.dumps({"key": settings_key(settings), **report}, indent=1) + "\n")


class SplitWriter:
    """Writes utterances of one split: ``<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.counts: dict[int, int] = defaultdict(int)
        self.lines: dict[tuple[int, int], list[str]] = defaultdict(list)

    def add(self, speaker: int, wave: np.ndarray, text: str) -> str:
        """(N,) float 16 kHz samples -> the utterance id written."""
        n = self.counts[speaker]
        self.counts[speaker] += 1
        chapter, index = divmod(n, UTTERANCES_PER_CHAPTER)
        utt_id = f"{speaker}-{chapter}-{index:04d}"
        path = self.folder / str(speaker) / str(chapter) / f"{utt_id}.flac"
        atomic_write(path, lambda tmp: write_flac(tmp, wave))
        self.lines[(speaker, chapter)].append(f"{utt_id} {normalize_text(text)}")
        return utt_id

    def close(self) -> None:
        for (speaker, chapter), lines in sorted(self.lines.items()):
            trans = self.folder / str(speaker) / str(chapter) / f"{speaker}-{chapter}.trans.txt"
            atomic_write_text(trans, "\n".join(lines) + "\n")


def evalset_transcripts(root: Path) -> set[str]:
    """Normalized transcripts of every ``*.trans.txt`` under ``root`` (a test set or ``data/``)."""
    from asr.text.kaldi import read_id_lines

    texts = {normalize_text(text) for trans in sorted(Path(root).rglob("*.trans.txt")) for text in read_id_lines(trans).values()}
    return texts - {""}
