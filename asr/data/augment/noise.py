"""Additive noise at a drawn SNR: coloured noise, babble of other utterances, music-like tones.

The SNR is measured over the speech's active samples (20 ms frames within 40 dB of the
loudest), so leading and trailing silence does not make the speech look quieter than it is.
"""

from __future__ import annotations

import math
import random
from typing import Callable

import torch

from asr.data.augment.common import SAMPLE_RATE, fast_size, power, torch_generator

FRAME = 320  # 20 ms at 16 kHz
ACTIVE_DB = 40.0  # a frame is active within this many dB of the loudest frame
KINDS = ("coloured", "babble", "music")

OtherWaves = Callable[[random.Random], torch.Tensor]  # rng -> another utterance's wave (M,)


def active_mask(wave: torch.Tensor) -> torch.Tensor:
    """(N,) or (B, N) -> same shape, bool: samples in 20 ms frames within 40 dB of the row's loudest frame."""
    n = wave.shape[-1]
    frames = torch.nn.functional.pad(wave, (0, (-n) % FRAME)).unflatten(-1, (-1, FRAME))  # (..., n_frames, FRAME)
    energy = frames.double().square().mean(-1)  # (..., n_frames)
    active = energy >= energy.amax(-1, keepdim=True) * 10 ** (-ACTIVE_DB / 10)
    return active.repeat_interleave(FRAME, dim=-1)[..., :n]


def speech_power(wave: torch.Tensor) -> float:
    """Mean square of (N,) over its active samples."""
    mask = active_mask(wave)
    return power(wave[mask]) if bool(mask.any()) else 0.0


def add_at_snr(wave: torch.Tensor, noise: torch.Tensor, snr_db: float) -> torch.Tensor:
    """(N,) speech + (N,) noise scaled so that speech power (active samples) / noise power = SNR."""
    noise_power = power(noise)
    if noise_power <= 0:
        return wave
    gain = math.sqrt(speech_power(wave) / (noise_power * 10 ** (snr_db / 10)))
    return wave + gain * noise


def coloured_noise(n: int, exponent: float | torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(n,) Gaussian noise with power spectrum 1/f^exponent (0 white, 1 pink, 2 brown), unit power;
    (B, n), one row per exponent, for a (B,) tensor of exponents (on the generator's device)."""
    size = fast_size(n)  # shaped at a power-of-two length, then cut: cheap for any n
    rows = () if isinstance(exponent, float | int) else (len(exponent),)
    spectrum = torch.fft.rfft(torch.randn(*rows, size, generator=generator, device=generator.device))  # (..., F)
    f = torch.arange(spectrum.shape[-1], dtype=torch.float32, device=generator.device)
    f = f.clamp_min(1.0)  # DC gets the lowest band's gain
    slope = -exponent / 2 if not rows else (-exponent / 2)[:, None]  # (B, 1) against (F,)
    noise = torch.fft.irfft(spectrum * f.pow(slope), size)[..., :n]
    return noise / noise.square().mean(-1, keepdim=True).sqrt().clamp_min(1e-20)


def babble(n: int, others: OtherWaves, talkers: int, rng: random.Random) -> torch.Tensor:
    """(n,) sum of ``talkers`` other utterances, each at unit active power, looped and offset at random."""
    out = torch.zeros(n)
    for _ in range(talkers):
        other = others(rng)
        if other.numel() == 0:
            continue
        level = speech_power(other)
        if level <= 0:
            continue
        start = rng.randrange(other.numel())
        looped = torch.cat([other[start:], other[:start]]).repeat(n // other.numel() + 1)[:n]
        out += looped / math.sqrt(level)
    return out


def music(n: int, rng: random.Random, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """(n,) notes: a few harmonics each (amplitude 1/k), plucked envelopes, 2-6 onsets a second."""
    out = torch.zeros(n)
    rate = rng.uniform(2.0, 6.0)  # notes per second
    harmonics = rng.randint(2, 6)  # timbre of the whole piece
    for _ in range(max(1, round(rate * n / sample_rate))):
        length = min(n, int(rng.uniform(0.1, 0.6) * sample_rate))
        start = rng.randrange(max(1, n - length + 1))
        pitch = 440.0 * 2 ** ((rng.randint(40, 84) - 69) / 12)  # MIDI notes E2..C6
        t = torch.arange(length) / sample_rate
        envelope = (1 - torch.exp(-t / 0.005)) * torch.exp(-t / rng.uniform(0.05, 0.3))  # 5 ms attack, decay
        note = torch.zeros(length)
        for k in range(1, harmonics + 1):
            if k * pitch < sample_rate / 2:
                note += torch.sin(2 * math.pi * k * pitch * t) / k
        out[start : start + length] += rng.uniform(0.3, 1.0) * envelope * note
    return out


class AddNoise:
    """Add noise of a random kind at a random SNR; babble is drawn only when ``others`` is given."""

    def __init__(self, prob: float, snr_db=(0.0, 30.0), kinds=KINDS, colour_exponent=(0.0, 2.0), talkers=(3, 7), others: OtherWaves | None = None):
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"augment.noise_kinds: unknown kind {unknown[0]!r} (expected one of {', '.join(KINDS)})")
        self.prob, self.others = prob, others
        self.snr_db, self.colour_exponent = tuple(map(float, snr_db)), tuple(map(float, colour_exponent))
        self.talkers = tuple(map(int, talkers))
        self.kinds = tuple(k for k in kinds if k != "babble" or others is not None)

    def draw(self, rng: random.Random, n: int, kinds: tuple[str, ...] | None = None) -> tuple[float, str] | None:
        """-> (SNR dB, kind) among ``kinds`` (default: those this instance can make), or None
        (not fired); the kind's own draws follow from the same rng."""
        kinds = self.kinds if kinds is None else kinds
        if self.prob <= 0 or not kinds or rng.random() >= self.prob or n == 0:
            return None
        return rng.uniform(*self.snr_db), rng.choice(kinds)

    def __call__(self, wave: torch.Tensor, rng: random.Random) -> torch.Tensor:
        """(N,) -> (N,) with noise added."""
        n = wave.numel()
        drawn = self.draw(rng, n)
        if drawn is None:
            return wave
        snr, kind = drawn
        if kind == "coloured":
            noise = coloured_noise(n, rng.uniform(*self.colour_exponent), torch_generator(rng))
        elif kind == "babble":
            noise = babble(n, self.others, rng.randint(*self.talkers), rng)
        else:
            noise = music(n, rng)
        return add_at_snr(wave, noise, snr).to(torch.float32)
