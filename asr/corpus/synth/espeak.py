"""espeak-ng (formant synthesis) and MBROLA voices (diphone synthesis) spoken through it.

espeak-ng runs as a separate program (``--stdout`` WAV), so its GPL-3 code never links
with ours. A voice is an accent with a variant (``en-us+f3``); dev and test are spoken only
by variants never heard in training. MBROLA voices (``mb-us1`` ...) need the ``mbrola``
program and its voice files (Debian contrib/non-free: ``mbrola``, ``mbrola-us1`` ...);
their licence forbids redistribution, so they are only ever used where installed.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.corpus.synth.base import Engine, Style, SynthesisError

ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
TRAIN_VARIANTS = (
    "m1", "m2", "m3", "m5", "m6", "m7", "f1", "f2", "f4", "klatt", "klatt3", "Andy", "Annie",
    "adam", "aunty", "benjamin", "boris", "david", "edward", "grandpa", "iven", "john", "linda", "max",
)  # fmt: skip
HELDOUT_VARIANTS = ("m4", "m8", "f3", "f5", "klatt2", "Alex", "belinda", "caleb", "michel", "paul")
BASE_WPM = 165  # words per minute at style.rate 1 (the middle of the old 135..195 range)
BASE_PITCH = 50  # espeak-ng's -p scale is 0..99; style.pitch 1 = 50, each 0.01 of the factor = 1 step
MBROLA_VOICES = ("mb-us1", "mb-us2", "mb-us3", "mb-en1")
MBROLA_DIRS = (Path("/usr/share/mbrola"), Path("/usr/lib/x86_64-linux-gnu/espeak-ng-data/mbrola"))
MBROLA_HINT = "apt-get install mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1 (Debian contrib/non-free)"


def accent_voices(variants: tuple[str, ...]) -> list[str]:
    """Every accent with every variant -> ['en-us+m1', 'en-gb+m1', ...]."""
    return [f"{accent}+{variant}" for variant in variants for accent in ACCENTS]


def _espeak(binary: str, text: str, voice: str, style: Style, engine: str) -> tuple[np.ndarray, int]:
    wpm = round(BASE_WPM * style.rate)
    pitch = min(99, max(0, round(BASE_PITCH + 100 * (style.pitch - 1.0))))
    cmd = [binary, "-v", voice, "-s", str(wpm), "-p", str(pitch), "--stdout", text]
    done = subprocess.run(cmd, capture_output=True)
    if done.returncode != 0 or not done.stdout:
        raise SynthesisError(f"{engine} failed for voice {voice!r}: {done.stderr.decode(errors='replace').strip()}")
    samples, rate = sf.read(io.BytesIO(done.stdout), dtype="float32")
    return samples, rate


class EspeakEngine(Engine):
    name = "espeak"
    rtf = 0.004
    licence = "GPL-3.0-or-later (espeak-ng, run as a separate program; Debian main)"
    native_pitch = True

    def voices(self) -> list[str]:
        return accent_voices(TRAIN_VARIANTS + HELDOUT_VARIANTS)

    def heldout_voices(self) -> list[str]:
        return accent_voices(HELDOUT_VARIANTS)

    def unavailable(self) -> str | None:
        return None if shutil.which("espeak-ng") else "espeak-ng is not installed (apt-get install espeak-ng)"

    def speak(self, text: str, voice: str, style: Style) -> tuple[np.ndarray, int]:
        binary = shutil.which("espeak-ng")
        if binary is None:
            raise SynthesisError(f"{self.name}: {self.unavailable()}")
        return _espeak(binary, text, voice, style, self.name)


def _mbrola_installed(voice: str) -> bool:
    database = voice.removeprefix("mb-")  # mb-us1 -> us1/us1
    return any((folder / database / database).is_file() or (folder / database).is_file() for folder in MBROLA_DIRS)


class MbrolaEngine(Engine):
    name = "mbrola"
    licence = "MBROLA voices: non-commercial, no redistribution (Debian non-free); mbrola program AGPL-3.0"
    native_pitch = True

    def voices(self) -> list[str]:
        return [voice for voice in MBROLA_VOICES if _mbrola_installed(voice)]

    def unavailable(self) -> str | None:
        if not shutil.which("espeak-ng"):
            return "espeak-ng is not installed (apt-get install espeak-ng)"
        if not shutil.which("mbrola"):
            return f"the mbrola program is not installed ({MBROLA_HINT})"
        if not self.voices():
            return f"no MBROLA English voice is installed ({MBROLA_HINT})"
        return None

    def speak(self, text: str, voice: str, style: Style) -> tuple[np.ndarray, int]:
        binary = shutil.which("espeak-ng")
        if binary is None:
            raise SynthesisError(f"{self.name}: {self.unavailable()}")
        return _espeak(binary, text, voice, style, self.name)
