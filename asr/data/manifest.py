"""Manifests: JSON lines of ``{"id", "audio", "duration", "text"}``, one per utterance.

``scan_librispeech`` builds one from any folder in LibriSpeech's layout (the downloaded
corpus or the synthesized one): transcripts from ``*.trans.txt``, durations from the
audio headers, read in parallel threads.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import soundfile as sf
from tqdm import tqdm

from asr.audio.atomic import atomic_write_text
from asr.text.kaldi import IdLinesError, read_id_lines
from asr.text.normalize import normalize_text


@dataclass(frozen=True)
class Entry:
    id: str
    audio: str
    duration: float  # seconds
    text: str  # normalized (asr.text.normalize)


class ManifestError(ValueError):
    """A manifest or corpus folder that cannot be read; the message names it."""


def _duration(path: Path) -> float:
    info = sf.info(str(path))
    return info.frames / info.samplerate


def scan_librispeech(folder: str | Path, workers: int = 8) -> tuple[list[Entry], list[str]]:
    """-> (entries sorted by id, problems: one line per utterance left out and why)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ManifestError(f"{folder}: corpus folder not found")
    items, problems = [], []
    for trans in sorted(folder.glob("*/*/*.trans.txt")):
        try:  # id, any whitespace (a tab too), transcript
            transcripts = read_id_lines(trans)
        except (IdLinesError, OSError) as err:
            raise ManifestError(str(err) if isinstance(err, IdLinesError) else f"{trans}: {err.strerror}") from None
        for utt_id, text in transcripts.items():
            items.append((utt_id, trans.parent / f"{utt_id}.flac", normalize_text(text)))

    def probe(item):
        utt_id, audio, text = item
        try:
            return Entry(utt_id, str(audio), round(_duration(audio), 4), text), None
        except (sf.LibsndfileError, RuntimeError, OSError) as err:
            return None, f"{utt_id}: unreadable audio {audio} ({err})"

    entries = []
    with ThreadPoolExecutor(workers) as pool:
        for entry, problem in tqdm(pool.map(probe, items), total=len(items), desc=f"scan {folder.name}", unit="utt"):
            if problem:
                problems.append(problem)
            elif not entry.text:
                problems.append(f"{entry.id}: empty transcript")
            else:
                entries.append(entry)
    if not items:
        raise ManifestError(f"{folder}: no *.trans.txt files in LibriSpeech layout (speaker/chapter/)")
    return entries, problems


def write_manifest(path: str | Path, entries: list[Entry]) -> Path:
    return atomic_write_text(path, "".join(json.dumps(asdict(e)) + "\n" for e in entries))


def read_manifest(path: str | Path) -> list[Entry]:
    """A manifest -> its entries; :class:`ManifestError` naming the file and line for what
    cannot be read: bytes that are not UTF-8, a line that is not an entry, an id seen before."""
    path = Path(path)
    entries = []
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except OSError as err:
        raise ManifestError(f"{path}: cannot read manifest ({err.strerror})") from None
    except UnicodeDecodeError as err:
        raise ManifestError(f"{path}: not UTF-8 text (byte {err.object[err.start]:#04x} at {err.start})") from None
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = _entry(json.loads(line))
        except (json.JSONDecodeError, TypeError, ValueError) as err:
            raise ManifestError(f"{path}:{number}: not a manifest line ({err})") from None
        if entry.id in seen:
            raise ManifestError(f"{path}:{number}: utterance id {entry.id!r} already on line {seen[entry.id]}")
        seen[entry.id] = number
        entries.append(entry)
    return entries


def _entry(fields) -> Entry:
    """A decoded JSON line -> Entry, its fields checked (TypeError / ValueError say which)."""
    if not isinstance(fields, dict):
        raise TypeError(f"a {type(fields).__name__}, not an object")
    entry = Entry(**fields)
    for name in ("id", "audio", "text"):
        if not isinstance(getattr(entry, name), str):
            raise TypeError(f"{name} is not a string")
    if not entry.id or not entry.audio:
        raise ValueError("empty id or audio")
    duration = entry.duration
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not 0 <= duration < float("inf"):
        raise ValueError(f"duration {duration!r} is not a number of seconds")
    return entry
