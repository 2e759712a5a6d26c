"""Personas: new speakers, men among them, out of the women's voices (asr.corpus.synth.personas).

A persona must move the pitch and the formants the way it says while keeping the words (the
duration stays), hibari must apply it in its own parameters, the other engines through
their pitch control and the formant warp, and the plan must keep held-out personas out of
training.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asr.config import CorpusConfig
from asr.corpus.synth import Style, load_engines
from asr.corpus.synth.personas import HELDOUT, PERSONAS, Persona, PersonaEngine, pitch_curve, split_voice
from asr.corpus.synth.plan import corpus_plan
from engines import engine_or_skip, low_centroid

SENTENCE = "The old man walked slowly down to the river, where the boats were waiting."
SENTENCES = [
    "She sold the house and moved to the coast",
    "We will meet again after the harvest",
    "The children ran across the field to the gate",
    "Bring me the letter you wrote last night",
    "He opened the window and the cold air came in",
    "They were singing in the kitchen",
    "Nobody knew where the old road led",
    "The train was late again this morning",
]


def _f0(wave: torch.Tensor, rate: int = 16000) -> float:
    """Median F0 (Hz) of the voiced 40 ms frames, by YIN's first dip of the cumulative mean
    normalized difference under 0.2 (60-400 Hz): the first dip, so no octave errors."""
    frame, lo, hi = int(0.04 * rate), rate // 400, rate // 60
    x = wave.numpy().astype(np.float64)
    loud = 0.1 * np.abs(x).max()
    found = []
    for start in range(0, len(x) - frame - hi, frame // 2):
        seg = x[start : start + frame + hi]
        if np.abs(seg[:frame]).max() < loud:
            continue
        diff = np.array([np.sum((seg[:frame] - seg[lag : lag + frame]) ** 2) for lag in range(1, hi + 1)])
        cmnd = diff * np.arange(1, hi + 1) / np.maximum(np.cumsum(diff), 1e-12)
        dips = np.nonzero(cmnd[lo - 1 :] < 0.2)[0]
        if len(dips):
            lag = lo + dips[0]
            while lag < hi and cmnd[lag] < cmnd[lag - 1]:  # down to the bottom of that dip
                lag += 1
            found.append(rate / lag)
    return float(np.median(found))


def test_voice_names_and_pitch_curve():
    assert split_voice("heart~m2") == ("heart", PERSONAS["m2"])
    assert split_voice("en-US") == ("en-US", None)
    with pytest.raises(ValueError, match="unknown persona 'zz'"):
        split_voice("heart~zz")
    f0 = np.array([0.0, 200.0, 100.0, 400.0, 0.0], np.float32)  # median of the voiced frames: 200 Hz
    out = pitch_curve(f0, Persona(pitch=0.5, intonation=2.0))
    assert out[0] == 0 and out[4] == 0  # unvoiced frames stay unvoiced
    assert out[1] == pytest.approx(100.0, rel=1e-4)  # the median moves by the pitch factor
    assert out[2] == pytest.approx(42.0)  # an octave below, doubled to two (25 Hz), kept voiced at 42 Hz
    assert out[3] == pytest.approx(400.0, rel=1e-4)  # an octave above, doubled, halved again


def test_hibari_speaks_personas_in_its_own_parameters():
    engine = PersonaEngine(engine_or_skip("hibari"))
    voice = engine.voices()[0]
    assert f"{voice}~m1" in engine.voices() and set(engine.heldout_voices()) == {f"{voice}~{p}" for p in HELDOUT}
    plain = engine.synthesize(SENTENCE, voice, Style(seed=1))
    man = engine.synthesize(SENTENCE, f"{voice}~m1", Style(seed=1))
    assert man.numel() == plain.numel()  # the same words at the same pace
    ratio = _f0(man) / _f0(plain)
    assert 0.42 < ratio < 0.62  # persona m1: pitch x 0.52
    assert low_centroid(man) < 0.93 * low_centroid(plain)  # formants x 0.84
    warped = engine.synthesize(SENTENCE, voice, Style(seed=1, warp=1.12, pitch=1.2))  # native warp and pitch
    assert warped.numel() == plain.numel() and low_centroid(warped) > 1.03 * low_centroid(plain)
    assert 1.1 < _f0(warped) / _f0(plain) < 1.3
    assert torch.equal(engine.synthesize(SENTENCE, f"{voice}~m1", Style(seed=1)), man)  # seeded


def test_pico_persona_goes_through_pitch_control_and_warp():
    engine = PersonaEngine(engine_or_skip("pico"))
    plain = engine.synthesize(SENTENCE, "en-US", Style())
    man = engine.synthesize(SENTENCE, "en-US~m2", Style())
    assert _f0(man) < 0.75 * _f0(plain)  # m2: pitch x 0.6
    assert low_centroid(man) < 0.97 * low_centroid(plain)
    assert abs(man.numel() - plain.numel()) < 0.15 * plain.numel()


def test_plan_keeps_heldout_personas_out_of_training():
    config = CorpusConfig(engines=("espeak", "pico"), personas=("pico",), warp_prob=0.5, train_voices=3)
    engines = load_engines(config.engines, personas=config.personas)
    sentences = {"train": SENTENCES[:6], "dev": SENTENCES[6:7], "test": SENTENCES[7:]}
    plan = corpus_plan(config, sentences, engines)
    voices = {split: {u.voice for u in utts if u.engine == "pico"} for split, utts in plan.items()}
    assert any("~" in v for v in voices["train"])  # personas are trained on ...
    assert not any(v.split("~")[-1] in HELDOUT for v in voices["train"])  # ... but not the held-out ones
    for split in ("dev", "test"):
        assert all(v.split("~")[-1] in HELDOUT for v in voices[split])
    with pytest.raises(ValueError, match="corpus.personas names hibari, not in corpus.engines"):
        load_engines(["espeak"], personas=["hibari"])
