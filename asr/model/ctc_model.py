"""The whole acoustic model, from waveform to CTC log-probabilities, and its loss."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from asr.config import FeatureConfig, ModelConfig, SpecAugmentConfig
from asr.model.features import GlobalCMVN, LogMel, SpecAugment
from asr.model.encoder import TransformerEncoder
from asr.model.subsampling import Conv2dSubsampling4

BLANK = 0  # CTC blank index; token ids start at 1


class CTCModel(nn.Module):
    """(B, N) waveforms, (B,) sample counts -> (B, T', V) log-probs, (B,) frame counts.

    ``vocab_size`` counts the blank. Feature statistics live in ``cmvn`` buffers.
    """

    def __init__(self, model: ModelConfig, features: FeatureConfig, specaug: SpecAugmentConfig, vocab_size: int):
        super().__init__()
        self.features = LogMel(features)
        self.cmvn = GlobalCMVN(features.n_mels)
        self.specaug = SpecAugment(specaug)
        self.subsampling = Conv2dSubsampling4(features.n_mels, model.subsampling_channels, model.d_model)
        self.encoder = TransformerEncoder(model)
        self.head = nn.Linear(model.d_model, vocab_size)
        # seconds of audio per output frame: subsampling factor x feature hop
        self.frame_shift = Conv2dSubsampling4.subsampling_rate * features.hop_length / features.sample_rate

    def min_samples(self) -> int:
        """Fewest samples that give one output frame."""
        cfg = self.features.config
        return cfg.n_fft + (Conv2dSubsampling4.min_frames - 1) * cfg.hop_length

    def encode(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (B, T', D) encoder output, (B,) lengths"""
        feats, feat_lens = self.features(waves, lengths)  # (B, T, F)
        feats = self.specaug(self.cmvn(feats), feat_lens)
        x, lens = self.subsampling(feats, feat_lens)  # (B, T', D)
        return self.encoder(x, lens), lens

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, lens = self.encode(waves, lengths)
        logits = self.head(x)  # (B, T', V)
        return logits.float().log_softmax(dim=-1), lens


def ctc_loss(log_probs: torch.Tensor, lengths: torch.Tensor, tokens: torch.Tensor, token_lengths: torch.Tensor):
    """Mean over utterances of the summed CTC loss, always in fp32 (NaN-free under autocast).

    log_probs (B, T', V), lengths (B,), tokens (B, U), token_lengths (B,) -> scalar
    """
    with torch.autocast(device_type=log_probs.device.type, enabled=False):
        loss = F.ctc_loss(
            log_probs.float().transpose(0, 1),  # (T', B, V)
            tokens,
            lengths,
            token_lengths,
            blank=BLANK,
            reduction="sum",
            zero_infinity=True,
        )
    return loss / log_probs.shape[0]
