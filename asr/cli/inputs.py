"""What ``transcribe.py`` is asked to read: files, folders, ``@LIST`` files, JSON-lines and
``*.scp`` manifests and standard input, each to (id, path) with one error line per input that
names nothing usable; ids are unique (a repeated one is named and skipped)."""

from __future__ import annotations

import json
from pathlib import Path

AUDIO_SUFFIXES = {".flac", ".wav", ".ogg", ".mp3", ".aiff", ".aif", ".au", ".opus", ".sph"}
STDIN = "-"
STDIN_ID = "stdin"


def expand_inputs(items: list[str]) -> tuple[list[tuple[str, Path | None]], list[str]]:
    """-> ((id, path) per input in order, path None for standard input; error lines for
    inputs that name nothing usable)."""
    inputs: list[tuple[str, Path | None]] = []
    errors: list[str] = []
    for item in items:
        if item == STDIN:
            inputs.append((STDIN_ID, None))
        elif item.startswith("@"):
            try:
                lines = Path(item[1:]).read_text().splitlines()
            except OSError as err:
                errors.append(f"{item[1:]}: cannot read list ({err.strerror})")
                continue
            inputs.extend((Path(line.strip()).stem, Path(line.strip())) for line in lines if line.strip())
        elif item.endswith((".jsonl", ".scp")) and Path(item).is_file():
            inputs.extend(manifest_inputs(Path(item), errors))
        elif Path(item).is_dir():
            found = sorted(p for p in Path(item).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
            if not found:
                errors.append(f"{item}: folder holds no audio files")
            inputs.extend((p.stem, p) for p in found)
        else:
            inputs.append((Path(item).stem, Path(item)))
    return unique_ids(inputs, errors), errors


def unique_ids(inputs: list[tuple[str, Path | None]], errors: list[str]) -> list[tuple[str, Path | None]]:
    """Drop an input whose id (a file's name without its extension) an earlier one has, with
    one line in ``errors`` naming both: their results would overwrite each other in
    ``--output-dir`` and ``--ref`` could score only one."""
    first: dict[str, Path | None] = {}
    kept = []
    for utt_id, path in inputs:
        if utt_id in first:
            errors.append(f"{path}: id {utt_id!r} is also {first[utt_id] or 'standard input'}'s; skipped (rename one)")
            continue
        first[utt_id] = path
        kept.append((utt_id, path))
    return kept


def manifest_inputs(path: Path, errors: list[str]) -> list[tuple[str, Path]]:
    """A JSON-lines manifest (or a Kaldi ``wav.scp``-style ``id path`` file, ``*.scp``) ->
    (id, audio path) per line; a line that names no audio, an id seen before, bytes that
    are not UTF-8 or a file that cannot be read add one line to ``errors`` each."""
    from asr.text.kaldi import IdLinesError, decode_lines, parse_id_lines

    try:
        lines = decode_lines(path.read_bytes(), str(path))
        if path.suffix == ".scp":
            found = [(i, audio) for i, audio in parse_id_lines(lines, str(path)).items()]
        else:
            found = json_inputs(path, lines, errors)
    except OSError as err:
        errors.append(f"{path}: cannot read manifest ({err.strerror})")
        return []
    except IdLinesError as err:
        errors.append(str(err))
        return []
    inputs, seen = [], set()
    for utt_id, audio in found:
        if not audio:
            errors.append(f"{path}: {utt_id}: no audio path")
        elif utt_id in seen:
            errors.append(f"{path}: utterance id {utt_id!r} appears more than once; transcribed once")
        else:
            seen.add(utt_id)
            inputs.append((utt_id, Path(audio)))
    return inputs


def json_inputs(path: Path, lines: list[str], errors: list[str]) -> list[tuple[str, str]]:
    found = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            audio = entry["audio"]
            if not isinstance(audio, str):
                raise TypeError(audio)
        except (json.JSONDecodeError, KeyError, TypeError, IndexError):
            errors.append(f'{path}:{number}: not a manifest line with an "audio" field')
            continue
        found.append((str(entry.get("id") or Path(audio).stem), audio))
    return found
