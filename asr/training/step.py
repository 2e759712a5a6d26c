"""What one training step computes, without Lightning: the optimizer, the batch's loss (device
augmentation, the frozen front's cache, the recipe's losses) and the skip flags, read on the
host a step late so that the step itself never waits for the device.

The Lightning module (:mod:`asr.training.module`) and the training benchmarks
(:mod:`asr.bench.train`, :mod:`asr.bench.gpu`) call these same functions, so a benchmark
times the step training takes. Nothing here imports Lightning: the benchmarks run where
only torch, torchaudio, numpy and PyYAML are installed.

Host syncs: reading a CUDA value on the host (``bool(t)``, ``int(t)``, ``.tolist()``) and
copying a host value to the device with a blocking copy both wait for every kernel queued
so far, so the host stops queueing the next ones and the device idles while the host catches
up. The skip decision therefore stays on the device: :func:`skip_flags` makes it,
:func:`build_optimizer`'s fused AdamW honours it (``found_inf``: no update, no moment
change, no step count), and :class:`DeferredFlags` brings it to the host for counting and
warnings one step later, by a non-blocking copy whose event has long passed by then.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import torch

from asr.config import OptimConfig, RecipeConfig
from asr.model import CTCModel
from asr.training.losses import cached_front_loss, training_loss

MATMUL_PRECISION = "high"  # fp32 matrix products in TF32 on Ampere and later GPUs (training and its benchmarks)


def build_optimizer(model: torch.nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW, no weight decay on norms and biases; fused (one kernel for all weights), which
    also lets a step be dropped on the device (``optimizer.found_inf``)."""
    decay, no_decay = [], []
    for param in model.parameters():
        (no_decay if param.ndim < 2 else decay).append(param)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=True)


def batch_loss(
    model: CTCModel,
    recipe: RecipeConfig,
    waves: torch.Tensor,
    wave_lengths: torch.Tensor,
    tokens: torch.Tensor,
    token_lengths: torch.Tensor,
    cached: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """The training loss of a batch on the model's device, augmented already where the recipe
    augments on the device: (B, N) waves, (B,) samples, (B, U) tokens, (B,) token counts ->
    scalar. ``cached``: the frozen front's outputs for the batch ((B, T', D), (B,)), which
    skip the front."""
    if cached is not None:
        return cached_front_loss(model, cached, tokens, token_lengths)
    return training_loss(model, recipe.model, waves, wave_lengths, tokens, token_lengths)


def augmented_loss(model: CTCModel, recipe: RecipeConfig, augment, batch: tuple, key: str) -> torch.Tensor:
    """:func:`batch_loss` after the device augmentation training applies: ``augment`` from
    :func:`asr.data.augment.device.device_augment_for` (None: none), ``batch`` (waves (B, N),
    lengths (B,), tokens (B, U), token lengths (B,)), ``key`` the batch's draws."""
    waves, lengths, tokens, token_lengths = batch
    if augment is not None:
        waves, lengths = augment(waves, lengths, key)
    return batch_loss(model, recipe, waves, lengths, tokens, token_lengths)


def update(model: torch.nn.Module, optimizer: torch.optim.Optimizer, grad_clip: float) -> None:
    """What Lightning does after the backward pass: clip the gradient norm, step, clear."""
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def zero_loss(model: torch.nn.Module) -> torch.Tensor:
    """A zero loss whose graph reaches every trained parameter: under DDP a rank with nothing
    to learn from still joins the gradient all-reduce (with zeros)."""
    return sum(p.sum() for p in model.parameters() if p.requires_grad) * 0.0


def skip_flags(loss: torch.Tensor | None, device: torch.device) -> torch.Tensor:
    """(2,) float on ``device``: [loss not finite, nothing readable (``loss`` None)], made
    without a host sync (a fill and a device-side copy, no host value)."""
    flags = torch.zeros(2, device=device)
    if loss is None:
        flags[1] = 1.0
    else:
        flags[0] = (~torch.isfinite(loss.detach())).float()
    return flags


class DeferredFlags:
    """Device flags read on the host later, without stalling the device.

    :meth:`push` starts a non-blocking copy to host memory and records an event after it;
    :meth:`pop_all` waits on those events, which by the next step have passed (the host has
    queued a whole backward pass since), and returns ``(values, context)`` in push order.
    On a CPU the values are read at once: there is nothing to wait for.
    """

    def __init__(self):
        self._pending: deque[tuple[torch.Tensor, Any, Any]] = deque()

    def push(self, flags: torch.Tensor, context: Any) -> None:
        event = None
        if flags.device.type == "cuda":
            flags = flags.to("cpu", non_blocking=True)  # into pinned memory, ordered after the kernels that made it
            event = torch.cuda.Event()
            event.record()
        self._pending.append((flags, event, context))

    def pop_all(self) -> list[tuple[list[float], Any]]:
        out = []
        while self._pending:
            flags, event, context = self._pending.popleft()
            if event is not None:
                event.synchronize()
            out.append((flags.tolist(), context))
        return out
