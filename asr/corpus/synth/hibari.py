"""hibari (PyPI ``hibari-tts``, Apache-2.0): a 7.9 MB ONNX model distilled from one Kokoro-82M
voice. Only voices already on disk are offered (``heart`` is inside the wheel); hibari
would download the others, so they are never asked for.

Its network predicts, per 12.5 ms frame, an F0 curve and spectral envelopes (harmonic,
noise and free-phase branches, 601 bins to 12 kHz) that a small DSP step turns into a
waveform; this engine changes them in between, so pitch, formant warps and personas
(:mod:`.personas`: ``heart~m2``) cost nothing and resample nothing: F0 times the pitch
factor (intonation shaped around its median), every envelope stretched along frequency by
the warp, the noise branch raised by the persona's breath. Native rate control."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import torch

from asr.corpus.synth.base import Engine, Style, SynthesisError
from asr.corpus.synth.personas import Persona, pitch_curve, split_voice
from asr.corpus.synth.voices import stretch_frequency


class HibariEngine(Engine):
    name = "hibari"
    rtf = 0.008
    licence = "Apache-2.0 (hibari-tts code and model; distilled from Kokoro-82M, Apache-2.0)"
    native_pitch = True
    native_warp = True
    native_personas = True

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
        base, persona = split_voice(voice)
        persona = persona or Persona()
        if base not in self._models:
            if base not in self.voices():
                raise SynthesisError(f"hibari voice {base!r} is not on disk; offered: {self.voices()}")
            from hibari import Hibari

            self._models[base] = Hibari(voice=base, threads=1)
        model = self._models[base]
        from hibari import dsp

        rng = np.random.default_rng(style.seed)
        formants = style.warp * persona.formants
        breath = persona.breath_db / 20 * np.log(10)  # dB -> natural-log magnitude
        parts = []
        for phonemes in model.phonemize(text):
            ids = model.ids(phonemes)
            if len(ids) < 3:
                continue
            inputs = {"ids": np.asarray([ids], np.int64), "speed": np.asarray([style.rate], np.float32)}
            harmonic, theta, noise, free, phi, f0 = (out[0] for out in model.sess.run(None, inputs))
            harmonic, theta, noise, free, phi = (
                stretch_frequency(torch.from_numpy(x), formants).numpy() for x in (harmonic, theta, noise, free, phi)
            )
            f0 = pitch_curve(f0, persona, style.pitch)
            parts.append(dsp.synth(harmonic, theta, noise + breath, free, phi, f0, rng))
        if not parts:
            raise SynthesisError(f"hibari made no phonemes for voice {voice!r}: {text!r}")
        return np.concatenate(parts), model.sample_rate
