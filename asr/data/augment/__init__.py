"""On-the-fly acoustic variety for training waveforms, reproducible from a seed.

:class:`Augment` composes the transforms from an :class:`asr.config.AugmentConfig`; it is
called in the loader worker on each training waveform (N,) float32 16 kHz with a
``random.Random`` seeded per utterance, and every random draw comes from that generator,
so the same seed gives bit-identical output. Order: tempo, pitch (the talker), room,
noise (the place), telephone, EQ, gain, clipping (the channel). :mod:`.device` applies
the same draws to a whole padded batch on the training device (``data.augment_device``).

May import: :mod:`asr.config`; torch, torchaudio, numpy and (lazily, for rooms)
pyroomacoustics. Nothing else of :mod:`asr`.
"""

from __future__ import annotations

import random
from typing import Sequence

import torch

from asr.config import AugmentConfig
from asr.data.augment.channel import ChannelEQ, Clip, Gain, Telephone, mu_law_decode, mu_law_encode
from asr.data.augment.noise import AddNoise, OtherWaves, active_mask, speech_power
from asr.data.augment.room import Reverb, schroeder_rt60
from asr.data.augment.tempo import Pitch, Tempo

__all__ = [
    "Augment", "AddNoise", "ChannelEQ", "Clip", "Gain", "Pitch", "Reverb", "Telephone", "Tempo",
    "active_mask", "mu_law_decode", "mu_law_encode", "pool_source", "schroeder_rt60", "speech_power",
]


def pool_source(waves: Sequence[torch.Tensor]) -> OtherWaves:
    """Babble talkers drawn from a fixed list of waveforms (M_i,)."""
    pool = list(waves)
    return lambda rng: pool[rng.randrange(len(pool))]


class Augment:
    """All transforms of an :class:`AugmentConfig`, each with its own probability.

    ``others(rng) -> (M,)`` returns another training utterance for babble noise (drawn with
    the rng it is given, so babble is reproducible too); without it, babble is never drawn.
    """

    def __init__(self, config: AugmentConfig, others: OtherWaves | None = None, seed: int = 0):
        c = config
        self.config = config
        self.transforms = (
            Tempo(c.tempo_prob, c.tempo),
            Pitch(c.pitch_prob, c.pitch_semitones),
            Reverb(c.room_prob, c.room_kind, c.room_bank, c.room_min_size, c.room_max_size, c.rt60, seed=seed),
            AddNoise(c.noise_prob, c.snr_db, c.noise_kinds, c.colour_exponent, c.babble_talkers, others),
            Telephone(c.telephone_prob, c.wideband_share),
            ChannelEQ(c.eq_prob, c.eq_bands, c.eq_gain_db),
            Gain(c.gain_prob, c.gain_db),
            Clip(c.clip_prob, c.clip_ratio),
        )

    @property
    def enabled(self) -> bool:
        """False when every probability is 0: the caller can skip building an rng at all."""
        return any(t.prob > 0 for t in self.transforms)

    def __call__(self, wave: torch.Tensor, rng: random.Random | torch.Generator) -> torch.Tensor:
        """(N,) float32 -> (N',) float32; N' = N unless tempo fired (then about N / factor)."""
        if not isinstance(rng, random.Random):  # a torch.Generator: derive one Random from it
            rng = random.Random(int(torch.randint(0, 2**62, (1,), generator=rng)))
        for transform in self.transforms:
            wave = transform(wave, rng)
        return wave.to(torch.float32).contiguous()
