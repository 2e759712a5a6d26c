"""Rows -> manifest entries: the one place where text and audio are checked.

Each row's text goes through the project's one normalization (:func:`asr.text.normalize_text`);
its duration comes from the audio header (``soundfile.info``), never from decoding, read in
parallel threads. Three kinds of row need audio written under ``<out>/audio/``: a segment of
a longer file (Kaldi ``segments``, NeMo ``offset``, Lhotse supervisions) is cut out, a
``wav.scp`` command's output is kept (each command run once, and only when allowed), and
audio stored as bytes (Hugging Face) is written out. Every row that cannot be used is a
:class:`~asr.corpus.formats.rows.Problem`; nothing here raises for one row.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import soundfile as sf
from tqdm import tqdm

from asr.corpus.formats.rows import (EMPTY_TEXT, MISSING_FILE, NOT_ALLOWED, UNREADABLE, FormatError, Imported,
                                     Problem, Row, first_seen)
from asr.data.manifest import Entry
from asr.text.normalize import normalize_text

AUDIO_DIR = "audio"  # under the output folder: cut segments, command outputs, stored bytes
PIPE_TIMEOUT = 600  # seconds one wav.scp command may run
SEGMENT_SLACK = 0.02  # seconds a segment's end may pass the file's end (rounding in segments files)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_SUFFIX = {"WAV": ".wav", "WAVEX": ".wav", "FLAC": ".flac", "OGG": ".ogg", "MP3": ".mp3", "NIST": ".sph"}


def file_name(utt_id: str) -> str:
    """An id as a file name: characters other than letters, digits, ``.``, ``_`` and ``-``
    become ``_``, and a changed name gets a short hash of the id so two ids never collide."""
    safe = _UNSAFE.sub("_", utt_id)
    return safe if safe == utt_id else f"{safe}-{hashlib.sha1(utt_id.encode()).hexdigest()[:8]}"


def build(rows: list[Row], problems: list[Problem] = (), out: str | Path | None = None, allow_pipes: bool = False,
          workers: int = 8, progress: bool = False) -> Imported:
    """Check every row -> :class:`Imported` (entries sorted by id). ``out`` is needed only when
    some rows must have audio written (segments, commands, stored bytes)."""
    rows, duplicates = first_seen(rows)
    problems = [*problems, *duplicates]
    todo: list[tuple[Row, str]] = []
    for row in rows:
        text = normalize_text(row.text)
        if not text:
            problems.append(Problem(EMPTY_TEXT, row.where or row.id, repr(row.text) if row.text.strip() else ""))
        elif row.pipe and not allow_pipes:
            problems.append(Problem(NOT_ALLOWED, row.where or row.id, "a shell command: allow it with --allow-pipes"))
        else:
            todo.append((row, text))
    writes = any(_cut(r) or r.pipe or r.data is not None for r, _ in todo)
    if writes and out is None:
        raise FormatError("some utterances need their audio written (segments, commands or stored audio): give --out")
    audio_dir = Path(out or ".") / AUDIO_DIR
    if writes:
        audio_dir.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        todo = _run_commands(todo, audio_dir, pool, problems)
        results = pool.map(lambda item: _probe(*item, audio_dir), todo)
        entries, speakers = [], {}
        for (row, _), result in tqdm(zip(todo, results), total=len(todo), desc="audio headers", unit="utt",
                                     disable=not progress):
            if isinstance(result, Problem):
                problems.append(result)
                continue
            entries.append(result)
            if row.speaker:
                speakers[row.id] = row.speaker
    entries.sort(key=lambda e: e.id)
    return Imported(entries, speakers, problems)


def _cut(row: Row) -> bool:
    return row.start > 0 or row.end is not None


def _run_commands(todo, audio_dir: Path, pool, problems: list[Problem]) -> list[tuple[Row, str]]:
    """Run each distinct ``wav.scp`` command once (segments of one recording share it) ->
    the rows with their audio pointing at the kept output; failures become problems."""
    commands = sorted({row.audio for row, _ in todo if row.pipe})
    if not commands:
        return todo
    names = {command: f"cmd-{hashlib.sha1(command.encode()).hexdigest()[:16]}" for command in commands}
    done = dict(zip(commands, pool.map(lambda c: _run_command(c, audio_dir / names[c]), commands)))
    kept = []
    for row, text in todo:
        if not row.pipe:
            kept.append((row, text))
        elif isinstance(done[row.audio], Path):
            kept.append((replace(row, audio=str(done[row.audio]), pipe=False), text))
        else:
            problems.append(Problem(UNREADABLE, row.where or row.id, done[row.audio]))
    return kept


def _run_command(command: str, stem: Path) -> Path | str:
    """A shell command writing audio to stdout -> the file keeping its output, or why not."""
    try:
        run = subprocess.run(command, shell=True, capture_output=True, timeout=PIPE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return f"command {command!r} ran over {PIPE_TIMEOUT} s"
    if run.returncode != 0:
        said = run.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"command {command!r} exited {run.returncode}" + (f": {said[-1]}" if said else "")
    return _keep_bytes(run.stdout, stem, f"output of {command!r}")


def _keep_bytes(data: bytes, stem: Path, what: str) -> Path | str:
    """Audio file bytes -> the file they are written to (suffix from their format), or why not."""
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        return f"{what} is not audio soundfile reads ({getattr(err, 'error_string', err)})"
    path = stem.with_suffix(_SUFFIX.get(info.format, ".audio"))
    path.write_bytes(data)
    return path


def _probe(row: Row, text: str, audio_dir: Path) -> Entry | Problem:
    """One row -> its entry (duration from the header), or the problem that leaves it out."""
    where = row.where or row.id
    path = row.audio
    if row.data is not None:
        kept = _keep_bytes(row.data, audio_dir / file_name(row.id), "stored audio")
        if isinstance(kept, str):
            return Problem(UNREADABLE, where, kept)
        path = str(kept)
    elif not path or not os.path.isfile(path):
        return Problem(MISSING_FILE, where, path or "no audio listed")
    try:
        info = sf.info(path)
        duration = info.frames / info.samplerate
        if info.frames <= 0:
            return Problem(UNREADABLE, where, f"{path}: no samples")
        if _cut(row):
            path, duration = _write_segment(row, path, info.samplerate, duration, audio_dir)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as err:
        return Problem(UNREADABLE, where, f"{path}: {' '.join(str(err).split())}")
    return Entry(row.id, os.path.abspath(path), round(duration, 4), text)


def _write_segment(row: Row, path: str, rate: int, duration: float, audio_dir: Path) -> tuple[str, float]:
    """Cut ``row.start .. row.end`` out of ``path`` into ``audio_dir`` -> (new path, seconds).
    A segment outside the file is a ValueError saying so."""
    end = duration if row.end is None else row.end
    if not 0 <= row.start < end or end > duration + SEGMENT_SLACK:
        raise ValueError(f"segment {row.start:g}-{end:g} s is outside the file's {duration:.3f} s")
    samples, _ = sf.read(path, start=round(row.start * rate), stop=min(round(end * rate), round(duration * rate)),
                         dtype="float32", always_2d=True)
    target = audio_dir / f"{file_name(row.id)}.flac"
    sf.write(target, samples, rate, subtype="PCM_16")  # FLAC: lossless, half the size of WAV
    return str(target), samples.shape[0] / rate
