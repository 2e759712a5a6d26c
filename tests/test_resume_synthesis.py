"""Corpus synthesis killed part-way (SIGKILL of the whole process group, at a random
moment) and started again ends with the very corpus an uninterrupted run makes: the same
files with the same bytes. Files finished before the kill are kept (the second run makes
only the rest), no half-written file is taken for a finished one, and no manifest or
``.done`` stamp exists until a run completes. espeak-ng only, a tiny corpus.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from asr.config import CorpusConfig

ROOT = Path(__file__).parents[1]
TRAIN, DEV, TEST = 8, 1, 1
KILL_TIMEOUT = 120  # seconds to wait for the first files before giving up


def corpus_config(root: Path) -> CorpusConfig:
    return CorpusConfig(root=str(root), train_sentences=TRAIN, dev_sentences=DEV, test_sentences=TEST,
                        train_voices=1, workers=1)  # fmt: skip


def checksums(root: Path) -> dict[str, str]:
    """Every corpus file (audio, transcripts, stamps) -> sha256; temporary files are not corpus files."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".tmp"))
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def finished(root: Path) -> list[Path]:
    return sorted((root / "train").rglob("*.flac"))


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    """A corpus made in one uninterrupted run."""
    from asr.corpus.synthetic import generate_espeak

    root = tmp_path_factory.mktemp("whole")
    generate_espeak(corpus_config(root))
    return root


@pytest.fixture(scope="module")
def uninterrupted(whole) -> dict[str, str]:
    return checksums(whole)


def test_synthesis_killed_at_a_random_point_resumes_to_the_same_corpus(uninterrupted, tmp_path, capsys):
    from asr.data.manifest import scan_librispeech
    from asr.corpus.synthetic import generate_espeak

    root = tmp_path / "corpus"
    assert len([k for k in uninterrupted if k.endswith(".flac")]) == TRAIN + DEV + TEST
    kill_after = random.Random().randint(1, TRAIN // 2)  # finished training files before the kill
    script = ("import json, sys; from asr.config import CorpusConfig; from asr.corpus.synthetic import generate_espeak; "
              "generate_espeak(CorpusConfig(**json.loads(sys.argv[1])))")  # fmt: skip
    config = json.dumps({**asdict(corpus_config(root)), "root": str(root)})
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.Popen([sys.executable, "-c", script, config], cwd=ROOT, env=env, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + KILL_TIMEOUT
        while len(finished(root)) < kill_after and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert run.poll() is None, f"synthesis ended before the kill: {run.stderr.read().decode()[-2000:]}"
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # the synthesis workers too, as a crash or the OOM killer would
        run.wait()
    kept = {p.name for p in finished(root)}
    assert kill_after <= len(kept) < TRAIN, kill_after
    assert not (root / "train" / ".done").exists() and not (root / "train.jsonl").exists()
    before = {name: digest for name, digest in checksums(root).items() if name.endswith(".flac")}
    assert all(uninterrupted[name] == digest for name, digest in before.items())  # what it kept is whole

    capsys.readouterr()
    generate_espeak(corpus_config(root))
    assert f"synth train: {TRAIN} utterances ({len(kept)} already on disk)" in capsys.readouterr().out
    assert checksums(root) == uninterrupted
    assert not list(root.rglob("*.tmp"))  # leftovers of the killed writes are gone
    entries, problems = scan_librispeech(root / "train")
    assert len(entries) == TRAIN and not problems


def test_a_half_written_file_under_a_temporary_name_is_made_again(whole, uninterrupted, tmp_path, capsys):
    """What a write killed mid-way leaves (its temporary file, beside a missing target) is
    never taken for the finished file."""
    from asr.corpus.synthetic import generate_espeak

    root = tmp_path / "corpus"
    shutil.copytree(whole, root)
    victim = finished(root)[0]
    data = victim.read_bytes()
    victim.unlink()
    (root / "train" / ".done").unlink()
    (victim.parent / f".{victim.name}.4242.0badcafe.tmp").write_bytes(data[: len(data) // 2])
    capsys.readouterr()
    generate_espeak(corpus_config(root))
    assert f"({TRAIN - 1} already on disk)" in capsys.readouterr().out
    assert checksums(root) == uninterrupted
