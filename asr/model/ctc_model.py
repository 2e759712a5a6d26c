"""The whole acoustic model, from waveform to CTC log-probabilities, and its loss."""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from asr.config import FeatureConfig, ModelConfig, SpecAugmentConfig
from asr.model.features import GlobalCMVN, LogMel, SpecAugment
from asr.model.dropout import Dropout
from asr.model.encoder import SelfAttention, TransformerEncoder
from asr.model.subsampling import subsampling_class
from asr.text.tokenizer import BLANK


class TrainingOutputs(NamedTuple):
    """What the training losses need (:func:`CTCModel.forward_views`); ``views`` copies of a
    batch of B utterances are stacked: rows ``v * B .. (v + 1) * B - 1`` are view ``v``."""

    log_probs: torch.Tensor  # (views * B, T', V) float32, last layer
    lengths: torch.Tensor  # (views * B,) output frames
    inter_log_probs: tuple[torch.Tensor, ...]  # (views * B, T', V) float32 of each tapped layer, in layer order


class CTCModel(nn.Module):
    """(B, N) waveforms, (B,) sample counts -> (B, T', V) log-probs, (B,) frame counts.

    ``vocab_size`` counts the blank. Feature statistics live in ``cmvn`` buffers.
    """

    def __init__(self, model: ModelConfig, features: FeatureConfig, specaug: SpecAugmentConfig, vocab_size: int):
        super().__init__()
        self.features = LogMel(features)
        self.cmvn = GlobalCMVN(features.n_mels)
        self.specaug = SpecAugment(specaug)
        # masks for the frozen front's output (from_frozen): time masks on its frames, channel
        # masks as wide a share of d_model as freq_width is of the mel bins
        channels = round(specaug.freq_width * model.d_model / features.n_mels)
        self.front_specaug = SpecAugment(replace(specaug, freq_width=channels))
        subsampling = subsampling_class(model.subsampling)
        self.subsampling = subsampling(features.n_mels, model.subsampling_channels, model.d_model)
        self.encoder = TransformerEncoder(model)
        self.head = nn.Linear(model.d_model, vocab_size)
        # seconds of audio per output frame: subsampling factor x feature hop (0.04 at 4x, 0.08 at 8x)
        self.frame_shift = self.subsampling.subsampling_rate * features.hop_length / features.sample_rate
        # model.freeze_layers: the front of the network as a fixed function (a pretrained encoder's lower layers)
        self.freeze_layers = model.freeze_layers
        if model.freeze_layers:
            for module in (self.subsampling, self.encoder.pos, *self.encoder.layers[: model.freeze_layers]):
                freeze(module)

    def min_samples(self) -> int:
        """Fewest samples that give one output frame."""
        cfg = self.features.config
        return cfg.n_fft + (self.subsampling.min_frames - 1) * cfg.hop_length

    def _subsampled(
        self, waves: torch.Tensor, lengths: torch.Tensor, masked: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N), (B,) -> (B, T', D) encoder input (log-mel, CMVN, SpecAugment unless not
        ``masked``, subsampling), (B,) lengths"""
        feats, feat_lens = self.features(waves, lengths)  # (B, T, F)
        feats = self.cmvn(feats)
        return self.subsampling(self.specaug(feats, feat_lens) if masked else feats, feat_lens)

    def _log_probs(self, h: torch.Tensor) -> torch.Tensor:
        """(B, T', D) normed encoder output -> (B, T', V) float32 log-probs of the head."""
        return self.head(h).float().log_softmax(dim=-1)

    def encode(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (B, T', D) encoder output, (B,) lengths"""
        x, lens = self._subsampled(waves, lengths)
        return self.encoder(x, lens), lens

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, lens = self.encode(waves, lengths)
        return self._log_probs(x), lens

    def frozen_front(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N), (B,) -> (B, T', D) output of the frozen layers (``model.freeze_layers``), (B,)
        frame counts, without a graph: features, subsampling and the frozen layers at full
        context, unmasked in training too (a cache of it must not hold one draw of masks).
        :meth:`from_frozen` of it is :meth:`forward` without chunks in eval mode."""
        with torch.no_grad():
            x, lens = self._subsampled(waves, lengths, masked=False)
            return self.encoder.forward_layers(x, lens, 0, self.freeze_layers), lens

    def from_frozen(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T', D) :meth:`frozen_front` output, (B,) frame counts -> (B, T', V) log-probs
        through SpecAugment (training mode only: fresh masks at each call), the trained
        layers, the final norm and the head."""
        x = self.front_specaug(x, lengths)  # (B, T', D)
        x = self.encoder.forward_layers(x, lengths, self.freeze_layers, len(self.encoder.layers))
        return self._log_probs(self.encoder.norm(x))

    def forward_views(
        self, waves: torch.Tensor, lengths: torch.Tensor, views: int = 1, taps: Sequence[int] = ()
    ) -> TrainingOutputs:
        """(B, N), (B,) -> log-probs of ``views`` SpecAugment views of the batch (CR-CTC) and of
        the layers in ``taps`` (InterCTC, 1-based, through the shared final norm and head).

        The log-mel features are computed once; each view draws its own masks, and all views
        go through the encoder as one batch (so one dynamic chunk draw serves them all).
        """
        feats, feat_lens = self.features(waves, lengths)  # (B, T, F)
        feats = self.cmvn(feats)
        if views > 1:
            feats, feat_lens = feats.repeat(views, 1, 1), feat_lens.repeat(views)  # (views * B, T, F)
        x, lens = self.subsampling(self.specaug(feats, feat_lens), feat_lens)  # (views * B, T', D)
        out, tapped = self.encoder.forward_taps(x, lens, taps)
        return TrainingOutputs(self._log_probs(out), lens, tuple(self._log_probs(h) for h in tapped))


def freeze(module: nn.Module) -> None:
    """No gradient and no dropout for ``module``, in training mode too (a mode flag would not
    do: Lightning restores each submodule's ``training`` flag by itself)."""
    module.requires_grad_(False)
    for sub in module.modules():
        if isinstance(sub, Dropout):
            sub.p = 0.0
        elif isinstance(sub, SelfAttention):
            sub.dropout = 0.0


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
