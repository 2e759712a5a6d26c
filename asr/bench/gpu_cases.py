"""The cases of the GPU call (:mod:`asr.bench.gpu`), each a function returning one row (a dict):

- :func:`nan_check`: one training step (device augmentation, bf16 autocast, dropout, padded
  batch of unequal lengths, chunks forced to 1 frame with no left context, or drawn at
  random): the loss and every gradient finite, every trained parameter with a gradient;
- :func:`step_timing`: training's own step (:mod:`asr.training.step`) over batches the
  duration sampler packs, chunked and full-context steps timed apart after warm-up steps,
  with TF32 as training sets it: audio-s/s, TFLOP/s, MFU, peak memory, host syncs a step;
- :func:`convergence`: a fixed batch overfitted in bf16 and in fp32 from the same weights,
  the two loss curves side by side.

Only torch (with torchaudio), numpy and PyYAML are imported, directly or through the rooms
used (:mod:`asr.model`, :mod:`asr.data.augment.device`, :mod:`asr.data.sampler`,
:mod:`asr.training.step`): a GPU image has them, and nothing is installed there.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
import time
import warnings
from dataclasses import dataclass

import torch

from asr.bench.flops import feature_frames, training_flops
from asr.bench.machine import peak_memory_gib, reset_peak_memory, sync
from asr.config import RecipeConfig
from asr.data.augment.device import device_augment_for
from asr.data.sampler import DurationBatchSampler
from asr.model import CTCModel
from asr.training.step import MATMUL_PRECISION, augmented_loss, build_optimizer, update

TOKENS_PER_SECOND = 3.5  # BPE tokens per second of LibriSpeech speech, about


@dataclass(frozen=True)
class Sizes:
    """How big each case runs: the GPU call's sizes, or a dry run's on a CPU."""

    batch_seconds: float | None  # audio per timed step; None: the recipe's data.max_batch_seconds
    duration_scale: float  # utterance durations times this (1: LibriSpeech-like)
    warmup: int  # untimed steps before each timing
    timed_steps: int  # timed steps per timing
    nan_utterances: int  # utterances in the NaN check's batch
    random_chunk_draws: int  # NaN check steps with random chunks
    overfit_steps: int  # convergence: steps on the fixed batch
    overfit_utterances: int
    overfit_seconds: float  # length of each of them
    overfit_share: float  # both curves must end below this share of their start (the batch was learned)
    matmul_size: int  # n of the (n, n) product timed for the peak


GPU = Sizes(None, 1.0, 3, 8, 16, 3, 200, 8, 6.0, 0.5, 8192)
DRY_RUN = Sizes(6.0, 0.15, 1, 2, 3, 2, 30, 2, 1.5, 0.7, 256)


def utterance_durations(count: int, seed: int, max_duration: float, scale: float = 1.0) -> list[float]:
    """Durations (s) shaped like LibriSpeech's training set, approximately: mean about 12.3 s,
    most between 10 and 17 s, a fifth shorter (1-10 s), none over ``max_duration``."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        seconds = rng.uniform(1.0, 10.0) if rng.random() < 0.2 else rng.gauss(14.0, 2.0)
        out.append(scale * min(max(seconds, 1.0), max_duration))
    return out


def sampler_batches(recipe: RecipeConfig, sizes: Sizes, count: int, seed: int = 0) -> list[list[float]]:
    """``count`` batches of durations, packed by training's own duration sampler (padded
    seconds up to the batch size, duration buckets, shuffled)."""
    batch_seconds = sizes.batch_seconds or recipe.data.max_batch_seconds
    utterances = math.ceil(1.5 * count * batch_seconds / (12.3 * sizes.duration_scale)) + 8
    durations = utterance_durations(utterances, seed, recipe.data.max_duration, sizes.duration_scale)
    sampler = DurationBatchSampler(durations, batch_seconds, buckets=recipe.data.buckets, seed=seed)
    batches = [[durations[i] for i in batch] for batch in sampler]
    return (batches * count)[:count]


def synthetic_batch(durations: list[float], vocab: int, sample_rate: int, device: torch.device, seed: int):
    """Noise waves of the given durations, zero-padded, and random transcripts ->
    waves (B, N), lengths (B,), tokens (B, U), token lengths (B,), on ``device``."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([round(d * sample_rate) for d in durations])
    waves = 0.1 * torch.randn(len(durations), int(lengths.max()), generator=gen)
    waves = waves * (torch.arange(waves.shape[1])[None, :] < lengths[:, None])  # (B, N) zero past each end
    token_lengths = torch.tensor([max(1, int(d * TOKENS_PER_SECOND)) for d in durations])
    tokens = torch.randint(1, vocab, (len(durations), int(token_lengths.max())), generator=gen)
    tokens = tokens * (torch.arange(tokens.shape[1])[None, :] < token_lengths[:, None])  # (B, U)
    return tuple(t.to(device) for t in (waves, lengths, tokens, token_lengths))


def with_model(recipe: RecipeConfig, **changes) -> RecipeConfig:
    return dataclasses.replace(recipe, model=dataclasses.replace(recipe.model, **changes))


def _loss(model: CTCModel, recipe: RecipeConfig, batch: tuple, augment, key: str, bf16: bool) -> torch.Tensor:
    """Training's loss of one batch (device augmentation where the recipe has it), under bf16
    autocast when asked (CTC itself in fp32), as Lightning's bf16-mixed runs it."""
    with torch.autocast(batch[0].device.type, dtype=torch.bfloat16, enabled=bf16):
        return augmented_loss(model, recipe, augment, batch, key)


def nan_check(recipe: RecipeConfig, device: torch.device, chunks: str, sizes: Sizes, bf16: bool = True) -> dict:
    """``chunks``: "1/0" (chunks of one frame, no left chunk: the most padded queries
    without a key of their own chunk) or "random" (the recipe's draws, several steps)."""
    if chunks == "1/0":
        recipe, steps = with_model(recipe, chunk_train_prob=1.0, max_chunk_frames=1, max_left_chunks=0), 1
    else:
        recipe, steps = with_model(recipe, chunk_train_prob=1.0), sizes.random_chunk_draws
    torch.manual_seed(0)
    vocab = recipe.tokenizer.vocab_size + 1
    model = CTCModel(recipe.model, recipe.features, recipe.specaug, vocab).to(device).train()
    augment = device_augment_for(recipe)
    durations = utterance_durations(sizes.nan_utterances, 1, recipe.data.max_duration, sizes.duration_scale)
    durations[0] = max(min(durations) / 3, 0.5)  # one short utterance: many padded frames in the batch
    batch = synthetic_batch(durations, vocab, recipe.features.sample_rate, device, seed=1)
    losses, missing, nonfinite = [], set(), set()
    for step in range(steps):
        model.zero_grad(set_to_none=True)
        loss = _loss(model, recipe, batch, augment, f"nan/{step}", bf16)
        loss.backward()
        losses.append(float(loss.detach()))
        for name, param in model.named_parameters():
            if param.grad is None:
                missing.add(name)
            elif not bool(torch.isfinite(param.grad).all()):
                nonfinite.add(name)
    finite = all(math.isfinite(x) for x in losses)
    return {
        "case": "nan", "chunks": chunks, "precision": "bf16" if bf16 else "32", "steps": steps,
        "padded_share": round(1 - sum(durations) / (len(durations) * max(durations)), 3),
        "loss": [round(x, 3) for x in losses], "parameters": sum(1 for _ in model.parameters()),
        "without_grad": sorted(missing)[:5], "nonfinite_grads": sorted(nonfinite)[:5],
        "ok": finite and not missing and not nonfinite,
    }  # fmt: skip


def _count_syncs(step) -> int | None:
    """Synchronizing CUDA calls in one run of ``step`` (torch's sync debug mode), None off CUDA."""
    if not torch.cuda.is_available():
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchronizing" in str(w.message) for w in caught)


def step_timing(
    recipe: RecipeConfig, device: torch.device, chunked: bool, sizes: Sizes, bf16: bool = True, peaks=(None, None)
) -> dict:
    """Training's step, timed: ``chunked`` every step with random chunks, else full context.
    ``peaks``: (vendor dense bf16 TFLOP/s, measured matmul GFLOP/s) the MFU is held against."""
    torch.set_float32_matmul_precision(MATMUL_PRECISION)  # as asr.training.run.fit sets it
    recipe = with_model(recipe, chunk_train_prob=1.0 if chunked else 0.0)
    torch.manual_seed(0)
    vocab = recipe.tokenizer.vocab_size + 1
    reset_peak_memory(device)
    model = CTCModel(recipe.model, recipe.features, recipe.specaug, vocab).to(device).train()
    optimizer = build_optimizer(model, recipe.optim)
    augment = device_augment_for(recipe)
    plan = sampler_batches(recipe, sizes, sizes.warmup + sizes.timed_steps + 1)
    rate = recipe.features.sample_rate
    batches = [synthetic_batch(d, vocab, rate, device, seed=i) for i, d in enumerate(plan)]
    count = itertools.count()

    def step(batch) -> None:
        _loss(model, recipe, batch, augment, f"time/{next(count)}", bf16).backward()
        update(model, optimizer, recipe.optim.grad_clip)

    for batch in batches[: sizes.warmup]:
        step(batch)
    syncs = _count_syncs(lambda: step(batches[sizes.warmup])) if device.type == "cuda" else None
    timed = batches[sizes.warmup + 1 :]
    sync(device)
    started = time.perf_counter()
    for batch in timed:
        step(batch)
    sync(device)
    seconds = (time.perf_counter() - started) / len(timed)
    timed_plan = plan[sizes.warmup + 1 :]
    audio = sum(sum(d) for d in timed_plan) / len(timed)
    flops = sum(training_flops(recipe.model, recipe.features, vocab, len(d), feature_frames(round(max(d) * rate),
                                                                                           recipe.features))
                for d in timed_plan) / len(timed)  # fmt: skip
    spec, measured = peaks
    return {
        "case": "step", "chunks": "random" if chunked else "full", "precision": "bf16" if bf16 else "32",
        "steps": len(timed), "utterances_per_step": round(sum(len(d) for d in timed_plan) / len(timed), 1),
        "audio_seconds_per_step": round(audio, 1), "seconds_per_step": round(seconds, 4),
        "audio_seconds_per_second": round(audio / seconds, 1), "tflop_per_step": round(flops / 1e12, 4),
        "tflops": round(flops / seconds / 1e12, 4),
        "mfu_spec": round(flops / seconds / (spec * 1e12), 4) if spec else None,
        "mfu_measured": round(flops / seconds / (measured * 1e9), 4) if measured else None,
        "peak_memory_gib": round(peak_memory_gib(device), 2), "host_syncs_per_step": syncs,
    }  # fmt: skip


def convergence(recipe: RecipeConfig, device: torch.device, sizes: Sizes, lr: float = 1e-3) -> dict:
    """Overfit one fixed batch from the same initial weights in bf16 autocast and in fp32 (TF32
    products, as training runs): regularisers off (dropout, SpecAugment, chunks, CR-CTC), so
    the two curves differ only by precision; 10 warm-up steps to ``lr``."""
    torch.set_float32_matmul_precision(MATMUL_PRECISION)
    recipe = with_model(recipe, dropout=0.0, chunk_train_prob=0.0, cr_ctc_weight=0.0)
    recipe = dataclasses.replace(recipe, specaug=dataclasses.replace(recipe.specaug, freq_masks=0, time_masks=0),
                                 optim=dataclasses.replace(recipe.optim, lr=lr))  # fmt: skip
    vocab = recipe.tokenizer.vocab_size + 1
    seconds = [sizes.overfit_seconds * (1 - 0.1 * i) for i in range(sizes.overfit_utterances)]  # unequal
    batch = synthetic_batch(seconds, vocab, recipe.features.sample_rate, device, seed=2)
    torch.manual_seed(0)
    initial = CTCModel(recipe.model, recipe.features, recipe.specaug, vocab).state_dict()
    curves = {}
    for name, bf16 in (("bf16", True), ("32", False)):
        model = CTCModel(recipe.model, recipe.features, recipe.specaug, vocab)
        model.load_state_dict(initial)
        model = model.to(device).train()
        optimizer = build_optimizer(model, recipe.optim)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 10))
        losses = []
        for _ in range(sizes.overfit_steps):
            loss = _loss(model, recipe, batch, None, "", bf16)
            loss.backward()
            update(model, optimizer, recipe.optim.grad_clip)
            schedule.step()
            losses.append(loss.detach())
        curves[name] = [float(x) for x in torch.stack(losses).cpu()]  # one read at the end
    first, bf16_last, fp32_last = curves["32"][0], curves["bf16"][-1], curves["32"][-1]
    every = max(1, sizes.overfit_steps // 10)
    return {
        "case": "convergence", "steps": sizes.overfit_steps, "utterances": len(seconds),
        "initial_loss": round(first, 3), "final_bf16": round(bf16_last, 3), "final_32": round(fp32_last, 3),
        "curve_bf16": [round(x, 3) for x in curves["bf16"][::every]],
        "curve_32": [round(x, 3) for x in curves["32"][::every]],
        # both learned the batch (below overfit_share of the start), and bf16 ended within 5%
        # of the starting loss of where fp32 did
        "ok": max(fp32_last, bf16_last) < sizes.overfit_share * first and abs(bf16_last - fp32_last) < 0.05 * first,
    }  # fmt: skip
