"""Lhotse manifests, read through Lhotse itself (``pip install -r requirements-corpora.txt``):
a cuts manifest, or a recordings manifest with its supervisions, as k2/icefall's recipes
write them (``*_cuts_*.jsonl.gz``, ``*_recordings_*`` + ``*_supervisions_*``).

Each supervision is one utterance: its id, text and speaker, and the span of its recording
it covers (cut out when imported unless it is the whole file). A recording's audio is its
first source: a file, or a command (``type: command``, run only when allowed); URLs and
in-memory audio are left out, named.
"""

from __future__ import annotations

from pathlib import Path

from asr.corpus.formats.rows import MISSING_FILE, FormatError, Problem, Row

WHOLE_FILE = 1e-3  # seconds: a supervision this close to its recording's span is the whole file


def _lhotse():
    try:
        import lhotse
    except ImportError:
        raise FormatError("the lhotse format needs Lhotse: pip install -r requirements-corpora.txt") from None
    return lhotse


def _pair(src: Path) -> tuple[Path, Path | None]:
    """The manifest(s) to read: a cuts file, or (recordings, supervisions)."""
    if src.is_file():
        name = src.name
        if "supervisions" in name:
            return src.with_name(name.replace("supervisions", "recordings")), src
        if "recordings" in name:
            return src, src.with_name(name.replace("recordings", "supervisions"))
        return src, None
    if src.is_dir():
        cuts = sorted(src.glob("*cuts*.jsonl*"))
        recordings, supervisions = sorted(src.glob("*recordings*.jsonl*")), sorted(src.glob("*supervisions*.jsonl*"))
        if len(cuts) == 1 and not recordings:
            return cuts[0], None
        if len(recordings) == 1 and len(supervisions) == 1:
            return recordings[0], supervisions[0]
        found = ", ".join(p.name for p in cuts + recordings + supervisions) or "no Lhotse manifests"
        raise FormatError(f"{src}: name one manifest file (found {found})")
    raise FormatError(f"{src}: no such file or folder")


def _row(sup, recording, offset: float, where: str) -> Row | Problem:
    """A supervision (start relative to ``offset`` into its recording) -> Row, or why not."""
    if recording is None or not recording.sources:
        return Problem(MISSING_FILE, where, f"no recording {sup.recording_id!r}")
    source = recording.sources[0]
    if source.type not in ("file", "command"):
        return Problem(MISSING_FILE, where, f"audio of type {source.type!r} is not read (only file and command)")
    start = offset + sup.start
    end = start + sup.duration
    whole = start < WHOLE_FILE and abs(end - recording.duration) < WHOLE_FILE
    return Row(sup.id, str(source.source), sup.text or "", sup.speaker or "", 0.0 if whole else start,
               None if whole else end, pipe=source.type == "command", where=where)


def read_lhotse(src: Path) -> tuple[list[Row], list[Problem]]:
    """A Lhotse cuts manifest, or recordings + supervisions -> rows and the problems found."""
    lhotse = _lhotse()
    first, supervisions_path = _pair(src)
    try:
        manifest = lhotse.load_manifest(first)
        supervisions = lhotse.load_manifest(supervisions_path) if supervisions_path else None
    except Exception as err:  # noqa: BLE001 - Lhotse raises many kinds for a file it cannot read
        said = " ".join(str(err).split())[:200]
        raise FormatError(f"{src}: not a Lhotse manifest Lhotse can read ({said})") from None
    found: list[Row | Problem] = []
    if isinstance(manifest, lhotse.CutSet):
        for cut in manifest:
            recording = getattr(cut, "recording", None)
            for sup in cut.supervisions:  # start is relative to the cut
                found.append(_row(sup, recording, cut.start, f"{first}: cut {cut.id}"))
    elif isinstance(manifest, lhotse.RecordingSet) and isinstance(supervisions, lhotse.SupervisionSet):
        recordings = {r.id: r for r in manifest}
        for sup in supervisions:
            found.append(_row(sup, recordings.get(sup.recording_id), 0.0, f"{supervisions_path}: {sup.id}"))
    else:
        raise FormatError(f"{src}: a cuts manifest, or recordings with their supervisions, is expected")
    return [r for r in found if isinstance(r, Row)], [p for p in found if isinstance(p, Problem)]
