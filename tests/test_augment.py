"""Acoustic augmentation (asr.data.augment): each transform does what it claims, on real speech."""

from __future__ import annotations

import math
import random
import subprocess

import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

from asr.config import AugmentConfig
from asr.data.augment import (
    AddNoise, Augment, ChannelEQ, Clip, Gain, Pitch, Reverb, Telephone, Tempo,
    active_mask, mu_law_decode, mu_law_encode, pool_source, schroeder_rt60, speech_power,
)

SR = 16000
ALL_ON = AugmentConfig(
    room_prob=1.0, room_bank=4, noise_prob=1.0, telephone_prob=1.0, eq_prob=1.0,
    gain_prob=1.0, clip_prob=1.0, tempo_prob=1.0, pitch_prob=1.0,
)


def speak(tmp_path, text: str) -> torch.Tensor:
    path = tmp_path / "say.wav"
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True)
    data, rate = sf.read(path, dtype="float32")
    return AF.resample(torch.from_numpy(data), rate, SR)


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> torch.Tensor:
    return speak(tmp_path_factory.mktemp("espeak"), "The quick brown fox jumps over the lazy dog near the river bank.")


@pytest.fixture(scope="module")
def others(tmp_path_factory) -> list[torch.Tensor]:
    folder = tmp_path_factory.mktemp("others")
    return [speak(folder, t) for t in ("Seven ships sailed at dawn.", "Please call me back tomorrow morning.")]


def energy_above(wave: torch.Tensor, hz: float) -> float:
    spectrum = torch.fft.rfft(wave.double()).abs().square()
    freqs = torch.fft.rfftfreq(wave.numel(), 1 / SR)
    return float(spectrum[freqs > hz].sum())


def peak_hz(wave: torch.Tensor) -> float:
    spectrum = torch.fft.rfft(wave.double() * torch.hann_window(wave.numel(), dtype=torch.float64)).abs()
    return float(torch.fft.rfftfreq(wave.numel(), 1 / SR)[spectrum.argmax()])


def test_telephone_removes_energy_above_4khz(speech):
    white = torch.randn(SR, generator=torch.Generator().manual_seed(0)) * 0.1
    for wave in (speech, white):
        out = Telephone(1.0, wideband_share=0.0)(wave, random.Random(0))
        assert out.shape == wave.shape
        assert energy_above(out, 4000) < 0.01 * energy_above(wave, 4000)
        assert energy_above(out, 300) > 0.1 * energy_above(wave, 300)  # the band itself survives
    wide = Telephone(1.0, wideband_share=1.0)(white, random.Random(0))
    assert energy_above(wide, 7500) < 0.01 * energy_above(white, 7500)
    assert energy_above(wide, 4000) > 0.5 * energy_above(white, 4000) * (3000 / 4000)  # 4-7 kHz kept


def test_mu_law_round_trip_is_8_bit_companding():
    x = torch.linspace(-1, 1, 10001)
    codes = mu_law_encode(x)
    assert int(codes.min()) == 0 and int(codes.max()) == 255
    # companding: the step is small near 0 and large near full scale
    error = (mu_law_decode(codes) - x).abs()
    # half a step: 2/255 in the compressed domain times dx/dy = ln(1 + 255) (1 + 255|x|) / 255
    assert float(error[x.abs() < 0.002].max()) < 2e-4
    assert 0.01 < float(error[x.abs() > 0.9].max()) < 0.025


@pytest.mark.parametrize("kind", ["coloured", "babble", "music"])
@pytest.mark.parametrize("snr", [0.0, 12.0, 30.0])
def test_noise_hits_the_drawn_snr(speech, others, kind, snr):
    noisy = AddNoise(1.0, snr_db=(snr, snr), kinds=(kind,), others=pool_source(others))(speech, random.Random(7))
    added = noisy - speech
    assert added.abs().sum() > 0
    measured = 10 * math.log10(speech_power(speech) / float(added.double().square().mean()))
    assert abs(measured - snr) < 0.5


def test_snr_counts_only_active_speech(speech):
    padded = torch.cat([torch.zeros(3 * SR), speech, torch.zeros(3 * SR)])  # silence must not lower the speech level
    assert abs(speech_power(padded) / speech_power(speech) - 1) < 0.05
    assert not bool(active_mask(padded)[: SR].any())


@pytest.mark.parametrize("kind", ["pra", "noise"])
def test_room_impulse_responses_have_the_target_rt60(kind):
    errors = sorted(abs(schroeder_rt60(rir) / room.rt60 - 1) for room, rir in Reverb(1.0, kind, bank=12).bank)
    assert errors[len(errors) // 2] < 0.1  # median
    # the image method's early part (50 ms) can steepen the fit in big, dead rooms
    assert errors[-1] < (0.25 if kind == "noise" else 0.35)


def test_room_rt60_spans_the_range_and_reverb_keeps_level_and_length(speech):
    reverb = Reverb(1.0, "noise", bank=12, rt60=(0.3, 0.9))
    targets = [room.rt60 for room, _ in reverb.bank]
    assert min(targets) >= 0.3 and max(targets) <= 0.9 and max(targets) - min(targets) > 0.2
    wet = reverb(speech, random.Random(0))
    assert wet.shape == speech.shape and not torch.equal(wet, speech)
    assert abs(float(wet.square().mean() / speech.square().mean()) - 1) < 1e-3


def test_gain_and_clipping_bound_the_peak(speech):
    peak = float(speech.abs().max())
    for seed in range(5):
        louder = Gain(1.0, (-20.0, 10.0))(speech, random.Random(seed))
        assert peak * 10 ** (-20 / 20) * 0.999 <= float(louder.abs().max()) <= peak * 10 ** (10 / 20) * 1.001
        clipped = Clip(1.0, (0.3, 0.5))(speech, random.Random(seed))
        assert peak * 0.3 * 0.999 <= float(clipped.abs().max()) <= peak * 0.5 * 1.001


def test_eq_changes_the_spectrum_but_not_the_length(speech):
    out = ChannelEQ(1.0, bands=(3, 3), gain_db=12.0)(speech, random.Random(1))
    assert out.shape == speech.shape and float((out - speech).abs().max()) > 1e-3


def test_tempo_keeps_pitch_and_pitch_keeps_length():
    t = torch.arange(2 * SR) / SR
    tone = 0.3 * torch.sin(2 * math.pi * 440 * t)
    faster = Tempo(1.0, (1.25, 1.25))(tone, random.Random(0))
    assert abs(faster.numel() - tone.numel() / 1.25) <= 1 and abs(peak_hz(faster) - 440) < 5
    higher = Pitch(1.0, (12.0, 12.0))(tone, random.Random(0))
    assert higher.numel() == tone.numel() and abs(peak_hz(higher) - 880) < 10


def test_same_seed_same_output_other_seed_other_output(speech, others):
    augment = Augment(ALL_ON, others=pool_source(others))
    first, again = augment(speech, random.Random(42)), Augment(ALL_ON, others=pool_source(others))(speech, random.Random(42))
    assert torch.equal(first, again)  # bit-identical, even from a fresh Augment (a new worker)
    other = augment(speech, random.Random(43))
    assert first.shape != other.shape or not torch.equal(first, other)
    for out in (first, other):
        assert out.dtype == torch.float32 and out.dim() == 1 and bool(out.isfinite().all())
        assert abs(out.numel() - speech.numel()) < 0.2 * speech.numel()  # only tempo changes the length
    via_generator = augment(speech, torch.Generator().manual_seed(5))
    assert torch.equal(via_generator, augment(speech, torch.Generator().manual_seed(5)))


def test_probability_zero_is_the_identity(speech, others):
    assert not Augment(AugmentConfig()).enabled and Augment(ALL_ON).enabled
    assert torch.equal(Augment(AugmentConfig(), others=pool_source(others))(speech, random.Random(0)), speech)
    for transform in (Reverb(0.0), AddNoise(0.0, others=pool_source(others)), Telephone(0.0), ChannelEQ(0.0), Gain(0.0), Clip(0.0), Tempo(0.0), Pitch(0.0)):
        assert torch.equal(transform(speech, random.Random(0)), speech), type(transform).__name__


def test_unknown_kinds_are_named():
    with pytest.raises(ValueError, match="room_kind.*'cave'"):
        Reverb(1.0, "cave")
    with pytest.raises(ValueError, match="noise_kinds.*'rain'"):
        AddNoise(1.0, kinds=("rain",))
