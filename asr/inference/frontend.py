"""The model's front end run block by block: samples -> log-mel -> (CMVN, subsampling) frames.

Each stage keeps only the input its next output still needs, so memory does not grow
with the stream, and the frames equal those of the whole signal computed at once:

- log-mel frame ``t`` reads samples ``[t * hop, t * hop + n_fft)`` (no centre padding);
- subsampled frame ``t`` reads feature frames ``[rate t, rate t + right_context]`` (no padding;
  ``[4t, 4t + 6]`` at 4x, ``[8t, 8t + 14]`` at 8x).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from asr.inference.acoustic import AcousticModel, loudness_db


@dataclass(frozen=True)
class FrontendOutput:
    frames: torch.Tensor  # (T', D) subsampled frames, ready for the encoder
    energy_db: torch.Tensor  # (T', rate) loudness in dB of the feature frames rate t .. rate t + rate - 1


class StreamingFrontend:
    """(N_i,) sample blocks -> :class:`FrontendOutput` per block; :meth:`flush` at the end."""

    def __init__(self, acoustic: AcousticModel):
        self.acoustic = acoustic
        cfg = acoustic.feature_config
        self.n_fft, self.hop = cfg.n_fft, cfg.hop_length
        self.rate = acoustic.subsampling_rate
        self.min_samples = acoustic.min_samples()
        device = acoustic.device
        self.samples = torch.zeros(0, device=device)  # samples from the next feature frame's start on
        self.feats = torch.zeros(0, cfg.n_mels, device=device)  # log-mel features from the next output's start
        self.energy = torch.zeros(0, device=device)  # (frames,) dB, aligned with ``feats``
        self.total_samples = 0
        self.total_frames = 0  # subsampled frames produced

    @torch.inference_mode()
    def process(self, block: torch.Tensor) -> FrontendOutput:
        """(N,) samples -> the subsampled frames that are final now (maybe none)."""
        self.total_samples += block.numel()
        self.samples = torch.cat([self.samples, block.to(self.samples.device, torch.float32)])
        return self._advance()

    @torch.inference_mode()
    def flush(self) -> FrontendOutput:
        """End of stream. Audio too short for one output frame is padded with zeros to one,
        as :meth:`asr.inference.Recognizer.transcribe_waves` pads short utterances."""
        if self.total_frames == 0 and self.total_samples < self.min_samples:
            pad = self.min_samples - self.total_samples
            self.samples = torch.cat([self.samples, self.samples.new_zeros(pad)])
        return self._advance()

    def _advance(self) -> FrontendOutput:
        n = self.samples.numel()
        n_frames = (n - self.n_fft) // self.hop + 1 if n >= self.n_fft else 0
        if n_frames > 0:
            used = (n_frames - 1) * self.hop + self.n_fft
            lengths = torch.tensor([used], device=self.samples.device)
            logmel, _ = self.acoustic.log_mel(self.samples[None, :used], lengths)  # (1, n_frames, F)
            self.samples = self.samples[n_frames * self.hop :]
            self.feats = torch.cat([self.feats, logmel[0]])
            self.energy = torch.cat([self.energy, loudness_db(logmel[0])])  # (n_frames,) dB
        lengths = torch.tensor([self.feats.shape[0]])
        count = int(self.acoustic.output_lengths(lengths))
        if count == 0:
            return FrontendOutput(self.feats.new_zeros(0, self.acoustic.d_model), self.feats.new_zeros(0, self.rate))
        frames, _ = self.acoustic.frames(self.feats[None], lengths)  # (1, count, D) float32
        energy = self.energy[: count * self.rate].view(count, self.rate)  # (count, rate)
        self.feats = self.feats[count * self.rate :]
        self.energy = self.energy[count * self.rate :]
        self.total_frames += count
        return FrontendOutput(frames[0], energy)
