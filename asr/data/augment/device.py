"""Speed perturbation and acoustic augmentation of a whole padded batch, on its own device.

With ``data.augment_device: true`` the loader yields clean waveforms and the training step
calls :class:`DeviceAugment` on the batch: the loader then only reads audio, and the GPU,
which would otherwise wait for it, does the signal processing in a few batched FFTs.

Every utterance's parameters are drawn on the CPU by the loader transforms' own ``draw``
methods (:mod:`asr.data.augment`), in the loader's order, from a ``random.Random`` seeded
by (recipe seed, batch key, row): the same batch key gives the same output, and each row
gets exactly the parameters :class:`asr.data.augment.Augment` would draw from that rng.
Only the application is batched: speed by resampling each factor's rows together, rooms
by FFT convolution with the bank (built once, stacked on the device), noise at the drawn
SNR (coloured noise made on the device; babble from the batch's other utterances; music
notes made on the CPU), telephone band limits and G.711 round trip, EQ, gain, clipping.
Tempo and pitch (a phase vocoder per utterance) stay loader-only.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field

import torch

from asr.config import AugmentConfig
from asr.data.augment.channel import ChannelEQ, Clip, Gain, Telephone, eq_gain, narrowband, wideband
from asr.data.augment.common import fast_size, fft_filter
from asr.data.augment.noise import AddNoise, active_mask, coloured_noise, music
from asr.data.augment.room import Reverb
from asr.data.augment.speed import speed_length, speed_perturb


@dataclass
class RowDraws:
    """One utterance's parameters (None: the transform did not fire)."""

    factor: float = 1.0  # speed
    length: int = 0  # samples after speed perturbation
    room: int | None = None  # response of the bank
    noise: tuple[float, str] | None = None  # (SNR dB, kind)
    colour: float = 0.0  # 1/f exponent of coloured noise
    noise_seed: int = 0  # coloured noise's generator seed
    babble: list[tuple[int, float]] = field(default_factory=list)  # (other row, start as a share of its length)
    music: torch.Tensor | None = None  # (length,) notes, made on the CPU
    telephone: str | None = None  # "narrowband" or "wideband"
    eq: list[tuple[float, float, float]] | None = None  # peaks
    gain: float | None = None  # amplitude factor
    clip: float | None = None  # threshold / peak


def valid_mask(lengths: torch.Tensor, n: int) -> torch.Tensor:
    """(B,) lengths -> (B, n) bool, True inside each row."""
    return torch.arange(n, device=lengths.device)[None, :] < lengths[:, None]


def row_power(waves: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, N), (B, N) bool -> (B,) mean square over the masked samples (0 where none)."""
    return (waves.square() * mask).sum(1) / mask.sum(1).clamp_min(1)


class DeviceAugment:
    """``(waves (B, N), lengths (B,), key) -> (waves (B, N'), lengths (B,))`` on the waves' device."""

    def __init__(
        self, config: AugmentConfig, speed_perturb: tuple[float, ...] = (), sample_rate: int = 16000, seed: int = 0
    ):
        c = config
        if c.tempo_prob > 0 or c.pitch_prob > 0:
            raise ValueError("augment.tempo_prob / augment.pitch_prob: the phase vocoder runs in the loader only "
                             "(set them to 0, or data.augment_device: false)")  # fmt: skip
        self.speed, self.sample_rate, self.seed = tuple(speed_perturb), sample_rate, seed
        self.room = Reverb(c.room_prob, c.room_kind, c.room_bank, c.room_min_size, c.room_max_size, c.rt60, seed=seed)
        self.noise = AddNoise(c.noise_prob, c.snr_db, c.noise_kinds, c.colour_exponent, c.babble_talkers)
        self.noise_kinds = tuple(c.noise_kinds)  # babble included: made of the batch's other utterances
        self.telephone = Telephone(c.telephone_prob, c.wideband_share)
        self.eq = ChannelEQ(c.eq_prob, c.eq_bands, c.eq_gain_db)
        self.gain, self.clip = Gain(c.gain_prob, c.gain_db), Clip(c.clip_prob, c.clip_ratio)
        self._banks: dict[torch.device, torch.Tensor] = {}  # device -> (K, L) impulse responses

    @property
    def enabled(self) -> bool:
        fires = (self.room, self.noise, self.telephone, self.eq, self.gain, self.clip)
        return any(f != 1.0 for f in self.speed) or any(t.prob > 0 for t in fires)

    def draw(self, lengths: list[int], key: str) -> list[RowDraws]:
        """Per-row parameters, in the loader's order (speed, room, noise, telephone, EQ, gain, clip)."""
        kinds = self.noise_kinds if len(lengths) > 1 else tuple(k for k in self.noise_kinds if k != "babble")
        rows = []
        for row, n in enumerate(lengths):
            rng = random.Random(f"{self.seed}/{key}/{row}")
            d = RowDraws()
            d.factor = rng.choice(self.speed) if self.speed else 1.0
            d.length = n = speed_length(n, d.factor, self.sample_rate)
            d.room = self.room.draw(rng, n)
            d.noise = self.noise.draw(rng, n, kinds)
            if d.noise is not None:  # the kind's own draws, as AddNoise makes them
                kind = d.noise[1]
                if kind == "coloured":
                    d.colour, d.noise_seed = rng.uniform(*self.noise.colour_exponent), rng.getrandbits(63)
                elif kind == "babble":
                    others = [r for r in range(len(lengths)) if r != row]
                    d.babble = [(rng.choice(others), rng.random()) for _ in range(rng.randint(*self.noise.talkers))]
                else:
                    d.music = music(n, rng, self.sample_rate)
            d.telephone = self.telephone.draw(rng, n)
            d.eq = self.eq.draw(rng, n)
            d.gain = self.gain.draw(rng, n)
            d.clip = self.clip.draw(rng, n)
            rows.append(d)
        return rows

    def __call__(self, waves: torch.Tensor, lengths: torch.Tensor, key: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N) zero-padded float, (B,) samples -> (B, N') perturbed, zero-padded, (B,) new lengths."""
        draws = self.draw(lengths.tolist(), key)
        with torch.autocast(waves.device.type, enabled=False):  # resampling convolutions stay float32 under bf16
            waves = self._speed(waves.float(), draws)
            lengths = torch.tensor([d.length for d in draws], device=waves.device)
            mask = valid_mask(lengths, waves.shape[1])
            waves = waves * mask
            clean = waves  # babble's talkers
            waves = self._rooms(waves, mask, draws)
            waves = self._noise(waves, clean, mask, lengths, draws)
            waves = self._channel(waves, mask, draws)
        return (waves * mask).contiguous(), lengths

    def batch(self, batch, key: str):
        """:class:`asr.data.batch.Batch` -> the same batch, waves perturbed and lengths updated."""
        waves, lengths = self(batch.waves, batch.wave_lengths, key)
        return dataclasses.replace(batch, waves=waves, wave_lengths=lengths.to(batch.wave_lengths.dtype))

    def _speed(self, waves: torch.Tensor, draws: list[RowDraws]) -> torch.Tensor:
        """Resample the rows of each factor together: (B, N) -> (B, max new length)."""
        out = waves.new_zeros(len(draws), max(d.length for d in draws))
        for factor in sorted({d.factor for d in draws}):
            rows = [i for i, d in enumerate(draws) if d.factor == factor]
            moved = speed_perturb(waves[rows], factor, self.sample_rate)  # (G, ~N / factor)
            width = min(moved.shape[1], out.shape[1])
            out[rows, :width] = moved[:, :width]
        return out

    def _bank(self, device: torch.device) -> torch.Tensor:
        if device not in self._banks:
            responses = [rir for _, rir in self.room.bank]
            stacked = torch.zeros(len(responses), max(r.numel() for r in responses))
            for i, rir in enumerate(responses):
                stacked[i, : rir.numel()] = rir
            self._banks[device] = stacked.to(device)  # (K, L)
        return self._banks[device]

    def _rooms(self, waves: torch.Tensor, mask: torch.Tensor, draws: list[RowDraws]) -> torch.Tensor:
        rows = [i for i, d in enumerate(draws) if d.room is not None]
        if not rows:
            return waves
        rirs = self._bank(waves.device)[[draws[i].room for i in rows]]  # (G, L)
        dry, n = waves[rows], waves.shape[1]
        size = fast_size(n + rirs.shape[1] - 1)
        wet = torch.fft.irfft(torch.fft.rfft(dry, size) * torch.fft.rfft(rirs, size), size)[:, :n] * mask[rows]
        level = (row_power(dry, mask[rows]) / row_power(wet, mask[rows]).clamp_min(1e-20)).sqrt()  # same RMS as dry
        out = waves.clone()
        out[rows] = wet * level[:, None]
        return out

    def _noise(self, waves, clean, mask, lengths, draws: list[RowDraws]) -> torch.Tensor:
        """Noise at each drawn SNR, made and measured only for the rows it fires on."""
        rows = [i for i, d in enumerate(draws) if d.noise is not None]
        if not rows:
            return waves
        place = {row: k for k, row in enumerate(rows)}  # batch row -> row of `noise`
        n = waves.shape[1]
        noise = waves.new_zeros(len(rows), n)  # (G, N)
        coloured = [i for i in rows if draws[i].noise[1] == "coloured"]
        if coloured:
            generator = torch.Generator(waves.device).manual_seed(draws[coloured[0]].noise_seed)
            exponents = torch.tensor([draws[i].colour for i in coloured], device=waves.device)
            noise[[place[i] for i in coloured]] = coloured_noise(n, exponents, generator)
        talkers = max(len(draws[i].babble) for i in rows)
        if talkers:
            speakers = sorted({s for i in rows for s, _ in draws[i].babble})
            level = torch.zeros(len(draws), device=waves.device)
            level[speakers] = row_power(clean[speakers], active_mask(clean[speakers]) & mask[speakers]).sqrt()
            steps = torch.arange(n, device=waves.device)
            for t in range(talkers):  # one gather per talker slot, every babble row at once
                picks = [(place[i], draws[i].babble[t]) for i in rows if t < len(draws[i].babble)]
                target = [k for k, _ in picks]
                source = torch.tensor([s for _, (s, _) in picks], device=waves.device)
                start = (torch.tensor([share for _, (_, share) in picks], device=waves.device) * lengths[source]).long()
                index = (start[:, None] + steps[None, :]) % lengths[source].clamp_min(1)[:, None]  # looped talker
                noise[target] += clean[source].gather(1, index) / level[source, None].clamp_min(1e-10)
        for i in rows:
            if draws[i].music is not None:
                noise[place[i], : draws[i].length] = draws[i].music.to(waves.device)
        noise = noise * mask[rows]
        snr = torch.tensor([draws[i].noise[0] for i in rows], device=waves.device)
        speech = row_power(waves[rows], active_mask(waves[rows]) & mask[rows])
        power = row_power(noise, mask[rows])
        gain = (speech / (power.clamp_min(1e-30) * 10 ** (snr / 10))).sqrt() * (power > 0)
        out = waves.clone()
        out[rows] += gain[:, None] * noise
        return out

    def _channel(self, waves: torch.Tensor, mask: torch.Tensor, draws: list[RowDraws]) -> torch.Tensor:
        """Telephone, EQ, gain, clipping, in that order."""
        out = waves.clone()
        for kind, codec in (("narrowband", narrowband), ("wideband", wideband)):
            rows = [i for i, d in enumerate(draws) if d.telephone == kind]
            if rows:
                out[rows] = codec(out[rows] * mask[rows])
        rows = [i for i, d in enumerate(draws) if d.eq is not None]
        if rows:
            peaks = [draws[i].eq for i in rows]
            out[rows] = fft_filter(out[rows] * mask[rows], lambda f: torch.stack([eq_gain(f, p) for p in peaks]),
                                   self.sample_rate)  # fmt: skip
        factors = torch.tensor([d.gain if d.gain is not None else 1.0 for d in draws], device=out.device)
        out = out * factors[:, None]
        rows = [i for i, d in enumerate(draws) if d.clip is not None]
        if rows:
            ratio = torch.tensor([draws[i].clip for i in rows], device=out.device)
            threshold = (ratio * (out[rows] * mask[rows]).abs().amax(1))[:, None]  # (G, 1)
            out[rows] = torch.maximum(torch.minimum(out[rows], threshold), -threshold)
        return out


def device_augment_for(recipe) -> DeviceAugment | None:
    """The recipe's :class:`DeviceAugment` when ``data.augment_device`` is on and anything fires, else None."""
    if not recipe.data.augment_device:
        return None
    augment = DeviceAugment(recipe.augment, recipe.data.speed_perturb, recipe.features.sample_rate, recipe.seed)
    return augment if augment.enabled else None

