"""Training throughput of a recipe's model on synthetic audio: one optimizer step at a time.

Each step is what training does per batch: log-mel, SpecAugment, the model, the CTC loss
(fp32), backward, gradient clipping and an AdamW update. The batch holds utterances of
``utt_seconds`` (LibriSpeech averages 12.3 s) up to ``batch_seconds`` of audio with random
transcripts; a batch larger than ``micro_seconds`` is run as several micro-batches whose
gradients add up before the update (Lightning's ``accumulate_grad_batches``: the same
arithmetic as one batch, in a fraction of the memory). Data loading is not timed.
"""

from __future__ import annotations

import math
import time

import torch

from asr.bench.flops import feature_frames, training_flops
from asr.bench.machine import peak_memory_gib, sync
from asr.config import RecipeConfig
from asr.model import CTCModel
from asr.training.losses import training_loss


def synthetic_batch(batch_seconds: float, utt_seconds: float, tokens_per_second: float, vocab: int, seed: int = 0):
    """-> waves (B, N), lengths (B,), tokens (B, U), token lengths (B,)"""
    gen = torch.Generator().manual_seed(seed)
    count = max(1, math.floor(batch_seconds / utt_seconds))
    samples = int(utt_seconds * 16000)
    waves = 0.1 * torch.randn(count, samples, generator=gen)
    lengths = torch.full((count,), samples, dtype=torch.long)
    U = max(1, int(utt_seconds * tokens_per_second))
    tokens = torch.randint(1, vocab, (count, U), generator=gen)
    return waves, lengths, tokens, torch.full((count,), U, dtype=torch.long)


def train_throughput(
    recipe: RecipeConfig,
    vocab_size: int,
    device: torch.device,
    precision: str = "bf16",
    batch_seconds: float | None = None,
    micro_seconds: float | None = None,
    utt_seconds: float = 12.3,
    tokens_per_second: float = 3.5,
    warmup: int = 1,
    steps: int = 2,
) -> dict:
    """-> figures: seconds per step, audio seconds per second, model GFLOP/s, peak memory."""
    torch.manual_seed(0)
    model = CTCModel(recipe.model, recipe.features, recipe.specaug, vocab_size).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.optim.lr, betas=recipe.optim.betas)
    batch_seconds = batch_seconds or recipe.data.max_batch_seconds
    micro = min(micro_seconds or batch_seconds, batch_seconds)
    accumulate = max(1, round(batch_seconds / micro))
    batch = tuple(t.to(device) for t in synthetic_batch(micro, utt_seconds, tokens_per_second, vocab_size))
    waves, lengths = batch[:2]
    frames = feature_frames(waves.shape[1], recipe.features)
    step_flops = accumulate * training_flops(recipe.model, recipe.features, vocab_size, waves.shape[0], frames)
    step_audio = accumulate * float(lengths.sum()) / recipe.features.sample_rate

    step = training_step(model, recipe, optimizer, batch, accumulate, precision == "bf16")
    wall, cpu = time_steps(step, warmup, steps, device)
    front_end = front_end_seconds(model, waves, lengths, accumulate, precision == "bf16")
    return {
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "precision": precision,
        "batch_audio_seconds": round(step_audio, 1),
        "micro_batches": accumulate,
        "utterances_per_micro_batch": int(waves.shape[0]),
        "seconds_per_step": round(wall, 4),
        "cpu_seconds_per_step": round(cpu, 3) if device.type == "cpu" else None,
        "audio_seconds_per_second": round(step_audio / wall, 2),
        "model_gflop_per_step": round(step_flops / 1e9, 1),
        "model_gflops": round(step_flops / wall / 1e9, 1),
        "front_end_share": round(front_end / wall, 4),
        "peak_memory_gib": round(peak_memory_gib(device), 2),
    }


def training_step(model: CTCModel, recipe: RecipeConfig, optimizer, batch: tuple, accumulate: int, bf16: bool):
    """-> a function doing one optimizer step over ``accumulate`` micro-batches of ``batch``
    (waves (B, N), lengths (B,), tokens (B, U), token lengths (B,)) and returning the loss:
    the recipe's training loss (CTC, plus InterCTC and CR-CTC where it asks)."""
    waves, lengths, tokens, token_lengths = batch
    device_type = waves.device.type

    def step() -> float:
        for _ in range(accumulate):
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
                loss = training_loss(model, recipe.model, waves, lengths, tokens, token_lengths) / accumulate  # fp32 CTC
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.optim.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())  # a device sync point: the step is finished when this returns

    return step


def time_steps(step, warmup: int, steps: int, device: torch.device) -> tuple[float, float]:
    """Run ``warmup`` untimed steps, then ``steps`` timed ones -> (wall seconds, CPU seconds) per step."""
    for _ in range(warmup):
        step()
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    sync(device)
    wall = (time.perf_counter() - started) / steps
    cpu = (time.process_time() - cpu_started) / steps  # CPU seconds of all this process's threads
    return wall, cpu


def front_end_seconds(model: CTCModel, waves: torch.Tensor, lengths: torch.Tensor, accumulate: int, bf16: bool):
    """Seconds of the front end's share of one step: log-mel + normalization + SpecAugment
    of each micro-batch, waves (B, N), lengths (B,)."""
    device = waves.device
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        started = time.perf_counter()
        for _ in range(accumulate):
            feats, feat_lens = model.features(waves, lengths)
            model.specaug(model.cmvn(feats), feat_lens)
        sync(device)
        return time.perf_counter() - started
