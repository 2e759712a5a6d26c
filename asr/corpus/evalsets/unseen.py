"""The unseen-engine test set: CMU Flite, a synthesizer never used in training, reads
sentences the caller gives, with every one of its general-purpose English voices and a
varied speaking rate, into ``<out_root>/unseen/test`` (LibriSpeech layout).

Flite (Debian ``flite``, BSD-style CMU licence; voices free for any use) builds its voices
in: ``kal`` (diphone, 8 kHz), ``kal16`` (diphone, 16 kHz; the same talker), and the
clustergen voices ``awb`` (Scottish male), ``rms`` (US male) and ``slt`` (US female), all
recorded by CMU (ARCTIC). ``awb_time`` speaks only clock times and is not used.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import asr.corpus.evalsets.clips as C
from asr.corpus.evalsets.layout import SplitWriter, finish, is_done, start
from asr.text import normalize_text

VOICES = ("kal", "kal16", "awb", "rms", "slt")
UNSEEN_SPEAKER_BASE = 8500  # one id per voice: 8500 + index in VOICES
STRETCH = (0.8, 1.25)  # duration_stretch range: > 1 speaks slower
INSTALL_HINT = "flite is not installed: run 'apt-get install flite'"
_SPOKEN_SYMBOLS = re.compile(r"[0-9%$&@#+=/\\*<>^~_|]")  # flite reads these aloud; the transcript would not


class FliteError(RuntimeError):
    """flite missing or failing; the message says which and what to do."""


def flite_version() -> str:
    if shutil.which("flite") is None:
        raise FliteError(INSTALL_HINT)
    out = subprocess.run(["flite", "--version"], capture_output=True, text=True).stdout
    match = re.search(r"version: (\S+)", out)
    return match.group(1) if match else "unknown"


def speakable(sentences: list[str]) -> list[str]:
    """The sentences whose spoken words are their normalized transcript (no digits or symbols)."""
    return [s for s in sentences if normalize_text(s) and not _SPOKEN_SYMBOLS.search(s)]


def plan(sentences: list[str], seed: int, n: int) -> list[tuple[str, str, float]]:
    """-> n (sentence, voice, duration stretch), voices in turn, sentences shuffled (repeated
    only when n exceeds them)."""
    rng = random.Random(seed)
    order = list(sentences)
    rng.shuffle(order)
    return [(order[i % len(order)], VOICES[i % len(VOICES)], round(rng.uniform(*STRETCH), 3)) for i in range(n)]


def synthesize(text: str, voice: str, stretch: float, workdir: Path):
    """-> (N,) float32 samples at 16 kHz."""
    out = workdir / "out.wav"
    command = ["flite", "-voice", voice, "--setf", f"duration_stretch={stretch}", "-t", text, "-o", str(out)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 or not out.is_file():
        raise FliteError(f"flite -voice {voice} failed: {(done.stderr or done.stdout).strip()[:200]}")
    return C.load(out)


def build_unseen(out_root: Path, sentences: list[str], seed: int, n: int) -> Path:
    """Write ``n`` Flite utterances of ``sentences`` to ``<out_root>/unseen/test``; -> that folder.

    Deterministic for (sentences, seed, n); returns at once when already built with them.
    """
    folder = Path(out_root) / "unseen" / "test"
    version = flite_version()
    usable = speakable(sentences)
    print(f"unseen: flite {version}, voices {', '.join(VOICES)}; {len(usable)} of {len(sentences)} sentences speakable"
          + ("" if len(usable) == len(sentences) else " (digits or symbols left out)"))
    if not usable:
        raise FliteError("unseen: no speakable sentence given")
    settings = {"engine": f"flite {version}", "voices": VOICES, "sentences": usable, "seed": seed, "n": n,
                "stretch": STRETCH}
    if is_done(folder, settings):
        print(f"unseen: {folder} is built")
        return folder
    start(folder)
    writer, seconds = SplitWriter(folder), 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for text, voice, stretch in plan(usable, seed, n):
            wave = C.trim(synthesize(text, voice, stretch, Path(tmp)))
            writer.add(UNSEEN_SPEAKER_BASE + VOICES.index(voice), wave, text)
            seconds += len(wave) / C.RATE
    writer.close()
    finish(folder, settings, {"utterances": n, "minutes": round(seconds / 60, 2)})
    print(f"unseen: {n} utterances, {seconds / 60:.2f} min of audio")
    return folder
