"""The training loss: CTC on the last layer, plus InterCTC and CR-CTC where the recipe asks.

- InterCTC (Lee & Watanabe, arXiv 2102.03216): CTC of middle layers' outputs through the
  shared final norm and head; loss = (1 - w) CTC + w mean(InterCTC), ``w = inter_ctc_weight``.
- CR-CTC (Yao et al., arXiv 2410.05101): two SpecAugment views of each batch, CTC on both
  (averaged), plus ``cr_ctc_weight`` times the consistency loss: for each view, the KL
  divergence from the other view's detached frame posteriors, summed over valid frames.
  The two views are averaged like the CTC terms, so the ratio of the two terms is the
  paper's (its recipe: weight 0.2, with time masks 2.5x wider than plain CTC's).

Every term is computed in float32 with autocast off (CTC has no bf16 kernel on a CPU, and
loses precision in it on a GPU). With both options off this is exactly the plain CTC loss
(:func:`has_auxiliary_losses` tells whether a recipe asks for more). A batch whose frozen
front is cached (:mod:`asr.training.frozen_cache`) needs plain CTC: :func:`cached_front_loss`.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from asr.config import ModelConfig
from asr.model import CTCModel
from asr.model.ctc_model import ctc_loss
from asr.model.encoder import padding_mask


def consistency_loss(log_probs_a: torch.Tensor, log_probs_b: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Symmetric KL between two views' frame posteriors, each against the other's detached
    ones: (B, T', V) log-probs twice, (B,) lengths -> scalar, mean over utterances of
    (KL(sg(b) || a) + KL(sg(a) || b)) / 2 summed over valid frames."""
    with torch.autocast(device_type=log_probs_a.device.type, enabled=False):
        a, b = log_probs_a.float(), log_probs_b.float()
        kl = F.kl_div(a, b.detach(), reduction="none", log_target=True)  # (B, T', V): p_b (log p_b - log p_a)
        kl = kl + F.kl_div(b, a.detach(), reduction="none", log_target=True)
        valid = padding_mask(lengths, a.shape[1]).unsqueeze(-1)  # (B, T', 1)
        return 0.5 * kl.masked_fill(~valid, 0.0).sum() / a.shape[0]


def has_auxiliary_losses(config: ModelConfig) -> bool:
    """Whether the recipe asks for more than CTC on the last layer."""
    return bool(config.inter_ctc_layers) and config.inter_ctc_weight > 0 or config.cr_ctc_weight > 0


def training_loss(
    model: CTCModel,
    config: ModelConfig,
    waves: torch.Tensor,
    wave_lengths: torch.Tensor,
    tokens: torch.Tensor,
    token_lengths: torch.Tensor,
) -> torch.Tensor:
    """(B, N) waves, (B,) samples, (B, U) tokens, (B,) token counts -> scalar training loss."""
    inter = config.inter_ctc_layers if config.inter_ctc_weight > 0 else ()
    views = 2 if config.cr_ctc_weight > 0 else 1
    out = model.forward_views(waves, wave_lengths, views, inter)  # one view, no taps: CTCModel.forward
    tokens, token_lengths = tokens.repeat(views, 1), token_lengths.repeat(views)  # (views * B, U), (views * B,)
    loss = ctc_loss(out.log_probs, out.lengths, tokens, token_lengths)  # mean over views * B: the views' mean
    if inter:
        inter_loss = sum(ctc_loss(lp, out.lengths, tokens, token_lengths) for lp in out.inter_log_probs)
        loss = (1 - config.inter_ctc_weight) * loss + config.inter_ctc_weight * inter_loss / len(out.inter_log_probs)
    if views == 2:
        a, b = out.log_probs.chunk(2)  # (B, T', V) each
        loss = loss + config.cr_ctc_weight * consistency_loss(a, b, out.lengths[: a.shape[0]])
    return loss


def cached_front_loss(
    model: CTCModel, cached: tuple[torch.Tensor, torch.Tensor], tokens: torch.Tensor, token_lengths: torch.Tensor
) -> torch.Tensor:
    """CTC through the trained layers only: the frozen front's (B, T', D) outputs and (B,)
    frame counts, (B, U) tokens, (B,) token counts -> scalar."""
    log_probs = model.from_frozen(*cached)  # (B, T', V)
    return ctc_loss(log_probs, cached[1], tokens, token_lengths)
