"""Speed perturbation and augmentation of a padded batch on its device (asr.data.augment.device):
each transform does what the loader's does, with the same drawn parameters, row by row."""

from __future__ import annotations

import math
import random

import pytest
import torch

from asr.config import AugmentConfig
from asr.data.augment import Augment, speech_power
from asr.data.augment.device import DeviceAugment
from asr.data.augment.speed import speed_length, speed_perturb
from asr.data.batch import pad_1d
from test_augment import energy_above, speak

SR = 16000
KEY = "0/7/0"


@pytest.fixture(scope="module")
def utterances(tmp_path_factory) -> list[torch.Tensor]:
    """Three espeak-ng utterances of different lengths (the batch is padded to the longest)."""
    folder = tmp_path_factory.mktemp("device")
    texts = ("The quick brown fox jumps over the lazy dog.", "Seven ships sailed at dawn.", "Call me back tomorrow.")
    return [speak(folder, text) for text in texts]


def batched(utterances):
    return pad_1d(utterances, torch.float32)  # (B, N), (B,)


def rows(waves: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
    return [waves[i, : int(n)] for i, n in enumerate(lengths)]


def snr_db(clean: torch.Tensor, noisy: torch.Tensor) -> float:
    return 10 * math.log10(speech_power(clean) / float((noisy - clean).double().square().mean()))


def test_speed_factor_changes_lengths_as_stated_and_matches_the_loader(utterances):
    waves, lengths = batched(utterances)
    augment = DeviceAugment(AugmentConfig(), speed_perturb=(0.9, 1.0, 1.1))
    factors = {d.factor for seed in range(4) for d in augment.draw(lengths.tolist(), f"k{seed}")}
    assert factors == {0.9, 1.0, 1.1}  # every factor is drawn
    for seed in range(4):
        draws = augment.draw(lengths.tolist(), f"k{seed}")
        out, new = augment(waves, lengths, f"k{seed}")
        assert new.tolist() == [speed_length(int(n), d.factor, SR) for n, d in zip(lengths, draws)]
        assert out.shape[1] == max(new.tolist())
        for d, wave, row, n in zip(draws, utterances, out, new):
            assert abs(int(n) - wave.numel() / d.factor) <= 1  # faster speech: fewer samples
            assert torch.allclose(row[: int(n)], speed_perturb(wave, d.factor, SR), atol=1e-5)  # the loader's result
            assert not bool(row[int(n) :].any())  # padding stays zero


@pytest.mark.parametrize("kind", ["coloured", "babble", "music"])
def test_noise_hits_the_drawn_snr_within_half_a_db(utterances, kind):
    waves, lengths = batched(utterances)
    augment = DeviceAugment(AugmentConfig(noise_prob=1.0, snr_db=(0.0, 30.0), noise_kinds=(kind,)))
    for key in ("a", "b"):
        draws = augment.draw(lengths.tolist(), key)
        out, new = augment(waves, lengths, key)
        assert torch.equal(new, lengths)
        for d, clean, noisy in zip(draws, utterances, rows(out, new)):
            assert d.noise[1] == kind
            assert abs(snr_db(clean, noisy) - d.noise[0]) < 0.5


def test_telephone_removes_energy_above_4khz(utterances):
    waves, lengths = batched(utterances)
    out, new = DeviceAugment(AugmentConfig(telephone_prob=1.0, wideband_share=0.0))(waves, lengths, KEY)
    for clean, phoned in zip(utterances, rows(out, new)):
        assert energy_above(phoned, 4000) < 0.01 * energy_above(clean, 4000)
        assert energy_above(phoned, 300) > 0.1 * energy_above(clean, 300)  # the band itself survives
    assert not bool(out[1, int(new[1]) :].any())


ALL = AugmentConfig(room_prob=0.7, room_kind="noise", room_bank=4, telephone_prob=0.5, eq_prob=0.7,
                    gain_prob=0.7, clip_prob=0.5)  # fmt: skip


def test_same_key_same_output_other_key_other_output(utterances):
    waves, lengths = batched(utterances)
    config = AugmentConfig(**{**vars(ALL), "noise_prob": 1.0})
    first = DeviceAugment(config, (0.9, 1.1), seed=5)(waves, lengths, KEY)
    again = DeviceAugment(config, (0.9, 1.1), seed=5)(waves, lengths, KEY)  # a fresh instance: a resumed run
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    other = DeviceAugment(config, (0.9, 1.1), seed=5)(waves, lengths, "0/8/0")
    assert other[0].shape != first[0].shape or not torch.equal(other[0], first[0])
    assert bool(first[0].isfinite().all()) and first[0].dtype == torch.float32


def test_rows_match_the_loader_transforms_with_the_same_draws(utterances):
    """Without speed perturbation a row's rng makes exactly the loader's draws, so rooms, EQ,
    telephone, gain and clipping give the loader's output up to FFT sizes and mu-law rounding."""
    waves, lengths = batched(utterances)
    device = DeviceAugment(ALL, seed=3)
    loader = Augment(ALL, seed=3)
    for key in ("x", "y", "z"):
        out, new = device(waves, lengths, key)
        for row, (wave, got) in enumerate(zip(utterances, rows(out, new))):
            expected = loader(wave, random.Random(f"3/{key}/{row}"))
            assert got.shape == expected.shape
            error = float((got - expected).square().mean() / expected.square().mean().clamp_min(1e-20))
            assert error < 1e-3, (key, row, device.draw(lengths.tolist(), key)[row])  # within 30 dB


def test_parameters_follow_the_configured_distribution(utterances):
    """Probabilities and ranges: over many rows, each transform fires about as often as configured."""
    augment = DeviceAugment(AugmentConfig(gain_prob=0.3, gain_db=(-6.0, 6.0), clip_prob=0.5), (0.9, 1.0, 1.1))
    draws = [d for key in range(100) for d in augment.draw([SR] * 8, str(key))]
    gains = [d.gain for d in draws if d.gain is not None]
    assert abs(len(gains) / len(draws) - 0.3) < 0.05 and abs(sum(d.clip is not None for d in draws) / 800 - 0.5) < 0.06
    assert all(10 ** (-6 / 20) <= g <= 10 ** (6 / 20) for g in gains)
    assert abs(sum(d.factor == 0.9 for d in draws) / 800 - 1 / 3) < 0.05


def test_tempo_and_pitch_are_refused_with_the_key_named():
    with pytest.raises(ValueError, match="augment.tempo_prob"):
        DeviceAugment(AugmentConfig(tempo_prob=0.5))
    assert not DeviceAugment(AugmentConfig(), (1.0,)).enabled and DeviceAugment(AugmentConfig(), (0.9,)).enabled
