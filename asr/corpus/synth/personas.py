"""Personas: more speakers out of the few natural voices, men among them.

The natural-sounding engines here have few voices, and all but Piper's are women's (hibari
``heart``, Pico ``en-US`` and ``en-GB``), so a corpus made of them holds almost no natural male
speech. A :class:`Persona` re-voices a woman's voice as another speaker: the pitch (F0) times
``pitch``, the vocal tract (formants) times ``formants``, the intonation's swing around the
speaker's median pitch times ``intonation``, and more breath noise. Men's voices sit about an
octave lower (F0 x 0.5-0.66) with formants ~15% lower; the presets below span that and a few
women's voices beside it.

A persona is spoken as voice ``<voice>~<persona>`` (``heart~m2``) of an engine wrapped in
:class:`PersonaEngine`, so each one is its own speaker in the corpus plan; the personas of
:data:`HELDOUT` are dev/test speakers only. Engines that synthesize from a parametric
representation apply all four fields themselves (``native_personas``: hibari changes its
F0 curve and spectral envelopes before the waveform is made, so nothing is resampled);
for the others pitch and formants go through their pitch control or :func:`voices.warp`, and
intonation and breath are left as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from asr.corpus.synth.base import Engine, Style

SEPARATOR = "~"
WARP_RANGE = (0.5, 2.0)  # what asr.corpus.synth.voices.warp accepts


@dataclass(frozen=True)
class Persona:
    """How a woman's voice is re-voiced; 1.0 (0 dB) everywhere is the voice itself."""

    pitch: float = 1.0  # F0 factor
    formants: float = 1.0  # spectral-envelope factor along frequency (vocal-tract length / formants)
    intonation: float = 1.0  # factor on log-F0 excursions around the utterance's median (parametric engines)
    breath_db: float = 0.0  # gain of the aperiodic (noise) part (parametric engines)


PERSONAS: dict[str, Persona] = {  # relative to a woman's voice near 200 Hz
    "f1": Persona(pitch=1.15, formants=1.04, intonation=1.2),
    "f2": Persona(pitch=0.85, formants=0.96, intonation=0.8),
    "f3": Persona(pitch=1.0, formants=1.0, intonation=1.4, breath_db=6.0),
    "m1": Persona(pitch=0.52, formants=0.84, intonation=0.9),  # ~104 Hz
    "m2": Persona(pitch=0.60, formants=0.87, intonation=1.1),
    "m3": Persona(pitch=0.66, formants=0.90, intonation=0.8),
    "m4": Persona(pitch=0.56, formants=0.82, intonation=1.3, breath_db=4.0),
    "m5": Persona(pitch=0.48, formants=0.88, intonation=0.7),  # ~96 Hz, flat
    "m9": Persona(pitch=0.58, formants=0.85),  # held out
    "f9": Persona(pitch=1.08, formants=1.02),  # held out
}
HELDOUT = ("m9", "f9")  # dev/test speakers only


def persona_voice(voice: str, persona: str) -> str:
    return f"{voice}{SEPARATOR}{persona}"


def split_voice(voice: str) -> tuple[str, Persona | None]:
    """``"heart~m2"`` -> ("heart", PERSONAS["m2"]); a plain voice -> (voice, None)."""
    base, sep, name = voice.partition(SEPARATOR)
    if not sep:
        return voice, None
    if name not in PERSONAS:
        raise ValueError(f"unknown persona {name!r} in voice {voice!r}; known: {', '.join(PERSONAS)}")
    return base, PERSONAS[name]


def pitch_curve(f0: np.ndarray, persona: Persona, pitch: float = 1.0, voiced_hz: float = 40.0) -> np.ndarray:
    """(T,) F0 in Hz (unvoiced frames below ``voiced_hz``) -> (T,): voiced frames times
    ``persona.pitch * pitch``, their log-excursions around the median times
    ``persona.intonation``; a voiced frame stays voiced (at least 1.05 x ``voiced_hz``)."""
    voiced = f0 >= voiced_hz
    if not voiced.any():
        return f0
    log_f0 = np.log(f0[voiced])
    median = np.median(log_f0)
    shaped = np.exp(median + persona.intonation * (log_f0 - median)) * (persona.pitch * pitch)
    out = f0.copy()
    out[voiced] = np.maximum(shaped, 1.05 * voiced_hz)
    return out


class PersonaEngine(Engine):
    """``inner`` with every voice also spoken as each persona: voices ``v`` and ``v~p``."""

    def __init__(self, inner: Engine):
        self.inner = inner
        self.name, self.licence, self.rtf = inner.name, inner.licence, inner.rtf

    def voices(self) -> list[str]:
        base = self.inner.voices()
        return base + [persona_voice(v, p) for v in base for p in PERSONAS]

    def heldout_voices(self) -> list[str]:
        held = self.inner.heldout_voices()
        return held + [persona_voice(v, p) for v in self.inner.voices() if v not in held for p in HELDOUT]

    def unavailable(self) -> str | None:
        return self.inner.unavailable()

    def speak(self, text: str, voice: str, style: Style):
        return self.inner.speak(text, voice, style)

    def synthesize(self, text: str, voice: str, style: Style = Style()) -> torch.Tensor:
        base, persona = split_voice(voice)
        if persona is None or self.inner.native_personas:
            return self.inner.synthesize(text, voice, style)
        low, high = WARP_RANGE
        pitch = min(high, max(low, style.pitch * persona.pitch))
        warp = min(high, max(low, style.warp * persona.formants))
        return self.inner.synthesize(text, base, replace(style, pitch=pitch, warp=warp))
