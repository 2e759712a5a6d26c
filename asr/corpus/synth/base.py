"""The engine interface: a :class:`Style` per utterance, an :class:`Engine` per synthesizer
(the registry that loads those this machine can run: :mod:`asr.corpus.synth.registry`).

An engine only has to turn text into samples at its own rate (:meth:`Engine.speak`);
:meth:`Engine.synthesize` makes every engine's output alike: 16 kHz mono float32, the
style's warp and (where the engine has no pitch control of its own) pitch applied, peak
normalized to 0.9.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch

PEAK = 0.9  # every utterance is scaled to this peak, so engines are equally loud
SAMPLE_RATE = 16000


class SynthesisError(RuntimeError):
    """An engine failed on an utterance; the message names the engine, voice and text."""


@dataclass(frozen=True)
class Style:
    """How one utterance is spoken. 1.0 everywhere is the engine's own default voice."""

    rate: float = 1.0  # speaking-rate factor (2 = twice as fast), through the engine's own rate control
    pitch: float = 1.0  # pitch factor; the engine's control where it has one, else :func:`voices.warp`
    warp: float = 1.0  # vocal-tract-length factor: formants x warp (>1 = shorter tract, "smaller" speaker)
    seed: int = 0  # per-utterance noise seed (Piper's and hibari's sampling noise, Piper's noise scales)


class Engine(ABC):
    """One synthesizer. Subclasses set ``name``, ``licence`` and implement the four methods."""

    name: str = ""
    licence: str = ""  # the licence of the engine and of the voices it uses, one line
    native_pitch: bool = False  # True: speak() applies style.pitch itself
    native_warp: bool = False  # True: speak() applies style.warp itself
    native_personas: bool = False  # True: speak() takes "voice~persona" and applies it (asr.corpus.synth.personas)
    rtf: float = 0.01  # CPU seconds per audio second on one core (asr.corpus.synth.rtf): costliest work goes first

    @abstractmethod
    def voices(self) -> list[str]:
        """Every voice this engine can speak with here (installed, no download)."""

    def heldout_voices(self) -> list[str]:
        """Voices kept for dev/test only (a subset of :meth:`voices`); [] = hold out warps instead."""
        return []

    @abstractmethod
    def unavailable(self) -> str | None:
        """Why this engine cannot run here (offline), in one line, or None when it can."""

    @abstractmethod
    def speak(self, text: str, voice: str, style: Style) -> tuple[np.ndarray, int]:
        """Text -> ((N,) float samples, sample rate), with style.rate (and pitch if native) applied."""

    def synthesize(self, text: str, voice: str, style: Style = Style()) -> torch.Tensor:
        """Text -> (N,) float32 at 16 kHz, mono, warped as the style says, peak 0.9."""
        from asr.audio import to_mono_16k
        from asr.corpus.synth.voices import warp

        samples, rate = self.speak(text, voice, style)
        wave = to_mono_16k(np.asarray(samples, dtype=np.float32), rate)
        pitch = 1.0 if self.native_pitch else style.pitch
        formants = 1.0 if self.native_warp else style.warp
        if formants != 1.0 or pitch != 1.0:
            wave = warp(wave, SAMPLE_RATE, formants, pitch)
        peak = float(wave.abs().max()) if wave.numel() else 0.0
        if peak < 1e-4:
            raise SynthesisError(f"{self.name} made silence for voice {voice!r}: {text!r}")
        return (wave * (PEAK / peak)).to(torch.float32)
