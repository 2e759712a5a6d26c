"""hibari (PyPI ``hibari-tts``, Apache-2.0): a 7.9 MB ONNX model distilled from one Kokoro-82M
voice. Only voices already on disk are offered (``heart`` is inside the wheel); hibari
would download the others, so they are never asked for. Native rate control; pitch by
:func:`asr.data.synth.voices.warp`."""

from __future__ import annotations

import importlib.util
import os

import numpy as np

from asr.data.synth.base import Engine, Style, SynthesisError


class HibariEngine(Engine):
    name = "hibari"
    rtf = 0.008
    licence = "Apache-2.0 (hibari-tts code and model; distilled from Kokoro-82M, Apache-2.0)"

    def __init__(self) -> None:
        self._models: dict[str, object] = {}

    def voices(self) -> list[str]:
        if importlib.util.find_spec("hibari") is None:
            return []
        from hibari.voices import VOICES, voice_path

        found = []
        for name in VOICES:
            try:
                voice_path(name, download_missing=False)
            except FileNotFoundError:
                continue
            found.append(name)
        return found

    def unavailable(self) -> str | None:
        for package in ("hibari", "onnxruntime"):
            if importlib.util.find_spec(package) is None:
                return f"{package} is not installed (pip install -r requirements-synth.txt)"
        return None if self.voices() else "no hibari voice is on disk"

    def speak(self, text: str, voice: str, style: Style) -> tuple[np.ndarray, int]:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: nothing here may reach a hub
        if voice not in self._models:
            if voice not in self.voices():
                raise SynthesisError(f"hibari voice {voice!r} is not on disk; offered: {self.voices()}")
            from hibari import Hibari

            self._models[voice] = Hibari(voice=voice, threads=1)
        model = self._models[voice]
        return model(text, speed=style.rate, seed=style.seed), model.sample_rate
