"""The evaluation-only test sets: LibriSpeech layout that the manifest scanner reads,
normalized transcripts, 16 kHz mono audio whose length fits its words, skipped sources
reported in one line, and a seeded, idempotent unseen-engine build (CMU Flite).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.corpus.evalsets import build_real, build_unseen, evalset_transcripts
from asr.corpus.evalsets.fetch import package_dir
from asr.corpus.evalsets.sources import Clip, Source
from asr.corpus.evalsets.unseen import plan, speakable
from asr.data.manifest import scan_librispeech
from asr.text import normalize_text

needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed (apt-get install flite)")
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")

SENTENCES = ["The kettle was still warm when we came home.", "She left her umbrella on the bus again.",
             "Bring a coat, it may rain tonight."]


def check_split(folder):
    """Every utterance: scanned, normalized, 16 kHz mono finite, 1-5 words per second."""
    entries, problems = scan_librispeech(folder, workers=1)
    assert entries and problems == []
    for entry in entries:
        speaker, chapter, _ = entry.id.split("-")
        trans = Path(entry.audio).parent / f"{speaker}-{chapter}.trans.txt"
        written = dict(line.split(" ", 1) for line in trans.read_text().splitlines())[entry.id]
        assert written == normalize_text(written) != ""  # written already normalized
        wave, rate = sf.read(entry.audio, dtype="float32")
        assert rate == 16000 and wave.ndim == 1 and np.isfinite(wave).all() and np.abs(wave).max() > 0.01
        assert 1.0 <= len(entry.text.split()) / entry.duration <= 5.0, (entry.id, entry.duration, entry.text)
    return entries


@needs_espeak
def test_real_build_reads_a_package_and_skips_a_missing_one(tmp_path, capsys):
    # A package already in the cache (espeak-ng stands in for the speaker), and one no registry has.
    cache, spoken = tmp_path / "cache", "Front left, then rear right."
    present = Source("local", "pypi", "local-pkg", "1.0", "test", clips=(Clip("pkg/a.wav", 8000, spoken),))
    folder = package_dir(cache, present)
    (folder / "pkg").mkdir(parents=True)
    subprocess.run(["espeak-ng", "-w", str(folder / "pkg/a.wav"), spoken], check=True)
    (folder / ".fetched").write_text("1.0\n")
    missing = Source("gone", "debian", "no-such-package-asr-evalsets", "", "none", clips=(Clip("x.wav", 8001, "x"),))

    out = build_real(tmp_path / "data", cache, sources=(present, missing))
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if "gone" in line and "skip" in line] and len([l for l in lines if "gone" in l]) == 2
    assert not (out / ".done").exists()  # a skipped source is retried next time
    entries = check_split(out)
    assert [(e.id, e.text) for e in entries] == [("8000-0-0000", "FRONT LEFT THEN REAR RIGHT")]
    assert evalset_transcripts(tmp_path / "data") == {"FRONT LEFT THEN REAR RIGHT"}

    build_real(tmp_path / "data", cache, sources=(present,))
    assert (out / ".done").is_file()
    build_real(tmp_path / "data", cache, sources=(present,))
    assert capsys.readouterr().out.splitlines()[-1].endswith("is built")


def test_plan_is_seeded_and_uses_every_voice():
    assert plan(SENTENCES, seed=3, n=10) == plan(SENTENCES, seed=3, n=10)
    assert plan(SENTENCES, seed=3, n=10) != plan(SENTENCES, seed=4, n=10)
    assert {voice for _, voice, _ in plan(SENTENCES, seed=0, n=5)} == {"kal", "kal16", "awb", "rms", "slt"}
    assert speakable(["It costs 5 dollars.", "Five dollars, then."]) == ["Five dollars, then."]


@needs_flite
def test_unseen_build_is_seeded_and_idempotent(tmp_path, capsys):
    out = build_unseen(tmp_path / "a", SENTENCES, seed=1, n=5)
    entries = check_split(out)
    assert len(entries) == 5 and len({e.id.split("-")[0] for e in entries}) == 5  # one speaker per voice
    assert {e.text for e in entries} <= {normalize_text(s) for s in SENTENCES}
    stamp = (out / ".done").stat().st_mtime_ns
    capsys.readouterr()
    build_unseen(tmp_path / "a", SENTENCES, seed=1, n=5)
    assert "is built" in capsys.readouterr().out and (out / ".done").stat().st_mtime_ns == stamp

    again = build_unseen(tmp_path / "b", SENTENCES, seed=1, n=5)
    for entry in entries:  # same seed, same sentences: the same utterances, sample for sample
        twin = again / entry.audio.split("/test/", 1)[1]
        assert np.array_equal(sf.read(entry.audio)[0], sf.read(twin)[0])
    assert evalset_transcripts(out) == evalset_transcripts(again)


def test_fetch_from_the_registry_into_a_relative_cache(tmp_path, monkeypatch):
    """The main job passes a relative cache (data/packages) while apt-get and dpkg-deb run in
    other folders: the package must still arrive whole (it did not, once)."""
    from asr.corpus.evalsets.fetch import fetch, needed_members
    from asr.corpus.evalsets.sources import REAL_SOURCES

    source = next(s for s in REAL_SOURCES if s.package == "alsa-utils")  # the smallest Debian one
    monkeypatch.chdir(tmp_path)
    folder, version = fetch(Path("cache"), source)
    assert version and folder.is_absolute()
    assert all((folder / member).is_file() for member in needed_members(source))


def test_a_tool_whose_working_folder_is_gone_is_named_as_such(tmp_path):
    from asr.corpus.debian import PackageError, run_tool

    with pytest.raises(PackageError, match="working folder .*gone"):
        run_tool([sys.executable, "-c", "pass"], tmp_path / "removed", "pip download x")
    assert run_tool([sys.executable, "-c", "print('ok')"], tmp_path, "a check").strip() == "ok"


@needs_espeak
def test_a_rebuild_with_other_sentences_drops_the_old_manifest(tmp_path, capsys):
    """Seen in a main job with more training sentences: the held-out pool changed, the unseen
    set was rebuilt, and its manifest still named the old sentences (WER 118%)."""
    from asr.training.prepare import split_manifest

    out = build_unseen(tmp_path / "u", SENTENCES, seed=1, n=3)
    assert {e.text for e in split_manifest(out.parent, out.name)} <= {normalize_text(s) for s in SENTENCES}
    others = ["Seven ships sailed out at dawn today.", "Please call me back tomorrow morning.", "The green door was open."]
    build_unseen(tmp_path / "u", others, seed=1, n=3)
    rebuilt = split_manifest(out.parent, out.name)
    assert {e.text for e in rebuilt} <= {normalize_text(s) for s in others} and len(rebuilt) == 3
    assert {e.text for e in rebuilt} == {e.text for e in check_split(out)}  # the manifest reads the new build
