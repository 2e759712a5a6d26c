"""Simulated rooms: a bank of random shoebox impulse responses, convolved with speech by FFT.

An impulse response is the direct path, early reflections and a late tail. ``kind="pra"``
takes the direct path and the early reflections (first 50 ms) from pyroomacoustics' image
method with the absorption Sabine's formula gives for the target RT60; ``kind="noise"``
has the direct path only. Both then add the same late tail: Gaussian noise decaying 60 dB
in RT60 seconds, at the level diffuse-field theory gives for the source-microphone distance.
The image method alone is no good here: the full reflection order a long RT60 needs takes
up to 5 s per response, and its decay in a shoebox with uniform walls runs 20-65% longer
than the target (measured: 1.49 s for 0.9 s in a 12x10x4 m room).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
import torch

from asr.data.augment.common import SAMPLE_RATE, fft_convolve, power, torch_generator

SPEED_OF_SOUND = 343.0  # m/s
EARLY_SECONDS = 0.05  # image-method part of the response after the direct path
FADE_SECONDS = 0.005  # cross-fade from the early part into the tail
MAX_ORDER = 8  # reflection order of the image method: complete over the first 50 ms in rooms up to 12 m
WALL_MARGIN = 0.5  # m between a source or microphone and any wall


@dataclass(frozen=True)
class Room:
    """One drawn room; positions in metres from a corner."""

    size: tuple[float, float, float]
    rt60: float  # target, seconds
    source: tuple[float, float, float]
    mic: tuple[float, float, float]

    @property
    def distance(self) -> float:
        return math.dist(self.source, self.mic)

    @property
    def critical_distance(self) -> float:
        """Where direct and reverberant energy are equal: sqrt(S * a / (16 pi)) with Sabine's S * a."""
        x, y, z = self.size
        absorption_area = 0.161 * x * y * z / self.rt60  # Sabine: RT60 = 0.161 V / (S a)
        return math.sqrt(absorption_area / (16 * math.pi))


def draw_room(rng: random.Random, min_size, max_size, rt60_range) -> Room:
    """Random size, a feasible RT60 (walls cannot absorb more than everything), positions."""
    size = tuple(rng.uniform(lo, hi) for lo, hi in zip(min_size, max_size))
    x, y, z = size
    shortest = 0.161 * x * y * z / (2 * (x * y + x * z + y * z))  # Sabine with fully absorbing walls
    low, high = rt60_range
    rt60 = rng.uniform(max(low, 1.2 * shortest), max(high, 1.2 * shortest))

    def position(height: tuple[float, float]) -> tuple[float, float, float]:
        top = max(WALL_MARGIN, min(height[1], z - WALL_MARGIN))
        return (rng.uniform(WALL_MARGIN, x - WALL_MARGIN), rng.uniform(WALL_MARGIN, y - WALL_MARGIN), rng.uniform(min(height[0], top), top))

    source = position((1.2, 1.9))  # a talker's mouth
    for _ in range(20):  # a microphone at least 0.5 m from the talker
        mic = position((0.7, 1.8))
        if math.dist(source, mic) >= 0.5:
            break
    return Room(size, rt60, source, mic)


def image_method_early(room: Room, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """pyroomacoustics' image-method response (L,), direct path at its largest sample."""
    import pyroomacoustics as pra  # imported here: only rooms of kind "pra" need it

    absorption, order = pra.inverse_sabine(room.rt60, list(room.size))
    shoebox = pra.ShoeBox(
        list(room.size), fs=sample_rate, materials=pra.Material(min(absorption, 0.999)), max_order=min(order, MAX_ORDER)
    )
    shoebox.add_source(list(room.source))
    shoebox.add_microphone(list(room.mic))
    shoebox.compute_rir()
    return np.asarray(shoebox.rir[0][0], dtype=np.float64)


def impulse_response(room: Room, kind: str, generator: torch.Generator, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """(L,) float32, direct path at sample 0 with amplitude 1, lasting RT60 after it."""
    length = int(room.rt60 * sample_rate)
    t = torch.arange(length, dtype=torch.float64) / sample_rate
    # Diffuse tail, energy density s2 * exp(-13.8 t / RT60) (60 dB in RT60), whose total
    # s2 * RT60 * fs / 13.8 is (r / r_c)^2 times the direct path's (1).
    decay = 3 * math.log(10)  # 6.91: amplitude falls 60 dB when t = RT60
    s2 = (room.distance / room.critical_distance) ** 2 * 2 * decay / (room.rt60 * sample_rate)
    tail = torch.randn(length, generator=generator, dtype=torch.float64) * math.sqrt(s2) * torch.exp(-decay * t / room.rt60)
    early_end = int(EARLY_SECONDS * sample_rate)
    fade = int(FADE_SECONDS * sample_rate)
    ramp = 0.5 - 0.5 * torch.cos(torch.pi * torch.arange(fade, dtype=torch.float64) / fade)  # 0 -> 1
    if kind == "pra":
        ism = torch.from_numpy(image_method_early(room, sample_rate))
        start = int(ism.abs().argmax())
        ism = ism[start : start + early_end] / ism[start]  # direct path first, amplitude 1
        early = torch.zeros(early_end, dtype=torch.float64)
        early[: ism.numel()] = ism
        early[early_end - fade :] *= 1 - ramp
        # Continue the image method's own energy density (its last 20 ms before the fade) so the
        # decay has no step; diffuse-field theory alone leaves one, and RT60 errs by up to 70%.
        window = ism[max(0, early_end - fade - int(0.02 * sample_rate)) : early_end - fade]
        density = float(window.square().mean()) if window.numel() else 0.0
        at_junction = s2 * math.exp(-2 * decay * (early_end - fade) / (room.rt60 * sample_rate))
        if density > 0:
            tail *= math.sqrt(density / at_junction)
        tail[: early_end - fade] = 0.0  # RT60 >= 0.15 s, so the tail is longer than the early part
        tail[early_end - fade : early_end] *= ramp
        tail[:early_end] += early
    elif kind == "noise":
        tail[:fade] *= ramp  # keep the direct path clear
        tail[0] = 1.0
    else:
        raise ValueError(f"augment.room_kind: unknown kind {kind!r} (expected 'pra' or 'noise')")
    return tail.to(torch.float32)


def schroeder_rt60(rir: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> float:
    """RT60 of (L,) by Schroeder backward integration: the -5..-25 dB slope, extrapolated to 60 dB."""
    energy = rir.double().square().flip(0).cumsum(0).flip(0)
    decay_db = 10 * torch.log10(energy / energy[0] + 1e-300)
    fit = (decay_db <= -5) & (decay_db >= -25)
    t = torch.arange(rir.numel(), dtype=torch.float64)[fit] / sample_rate
    slope = torch.linalg.lstsq(torch.stack([t, torch.ones_like(t)], 1), decay_db[fit, None]).solution[0, 0]
    return float(-60.0 / slope)


class Reverb:
    """Convolve with a random impulse response from a bank built on first use (once per worker)."""

    def __init__(self, prob: float, kind: str = "pra", bank: int = 64, min_size=(3.0, 3.0, 2.5), max_size=(12.0, 10.0, 4.0), rt60=(0.15, 0.9), seed: int = 0):
        if kind not in ("pra", "noise"):
            raise ValueError(f"augment.room_kind: unknown kind {kind!r} (expected 'pra' or 'noise')")
        self.prob, self.kind, self.bank_size, self.seed = prob, kind, bank, seed
        self.ranges = (tuple(map(float, min_size)), tuple(map(float, max_size)), tuple(map(float, rt60)))
        self._bank: list[tuple[Room, torch.Tensor]] | None = None

    @property
    def bank(self) -> list[tuple[Room, torch.Tensor]]:
        """[(room, impulse response (L,))]; the same for every worker (fixed seed), made lazily so
        that the main process and disabled transforms never pay for it."""
        if self._bank is None:
            rng = random.Random(self.seed)
            generator = torch_generator(rng)
            rooms = [draw_room(rng, *self.ranges) for _ in range(self.bank_size)]
            self._bank = [(room, impulse_response(room, self.kind, generator)) for room in rooms]
        return self._bank

    def draw(self, rng: random.Random, n: int) -> int | None:
        """-> which response of the bank, or None (not fired)."""
        if self.prob <= 0 or rng.random() >= self.prob or n == 0:
            return None
        return rng.randrange(self.bank_size)

    def __call__(self, wave: torch.Tensor, rng: random.Random) -> torch.Tensor:
        """(N,) -> (N,) reverberant, same RMS, aligned on the direct path."""
        choice = self.draw(rng, wave.numel())
        if choice is None:
            return wave
        _, rir = self.bank[choice]
        wet = fft_convolve(wave, rir)[: wave.numel()]
        return (wet * math.sqrt(power(wave) / max(power(wet), 1e-20))).to(torch.float32)
