"""Training throughput of a recipe's model on synthetic audio: one optimizer step at a time.

Each step is what training does per batch (:mod:`asr.training.step`): device augmentation
where the recipe has it, log-mel, SpecAugment, the model, the recipe's losses (fp32),
backward, gradient clipping and the fused AdamW update, with TF32 products as training
sets. The batch holds utterances of ``utt_seconds`` (LibriSpeech averages 12.3 s) up to
``batch_seconds`` of audio with random transcripts; a batch larger than ``micro_seconds``
is run as several micro-batches whose gradients add up before the update (Lightning's
``accumulate_grad_batches``: the same arithmetic as one batch, in a fraction of the memory).
Data loading is not timed. The model FLOPs count the recipe's losses: CR-CTC runs the
encoder on two views of the batch.

    python -m asr.bench.train --config recipes/librispeech/train_960h.yaml --device cuda [--config ...]

prints each recipe's bf16 throughput, its model FLOP utilization (MFU) against the vendor's
dense bf16 peak and against the measured matmul peak, and what the recipe's epochs would
cost at that rate. The GPU call (bench/gpu.sh, :mod:`asr.bench.gpu`) times the same step on
batches packed like the sampler's, chunked and full-context apart.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from pathlib import Path

import torch

from asr.bench.flops import feature_frames, training_flops
from asr.bench.machine import device_name, matmul_peak, peak_memory_gib, reset_peak_memory, spec_bf16_tflops, sync
from asr.config import ConfigError, ModelConfig, RecipeConfig, load_recipe
from asr.data.augment.device import device_augment_for
from asr.model import CTCModel
from asr.training.step import MATMUL_PRECISION, augmented_loss, build_optimizer, update


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
    reset_peak_memory(device)
    torch.set_float32_matmul_precision(MATMUL_PRECISION)  # TF32 on a GPU, as training sets it
    model = CTCModel(recipe.model, recipe.features, recipe.specaug, vocab_size).to(device).train()
    optimizer = build_optimizer(model, recipe.optim)
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
        "views": 2 if recipe.model.cr_ctc_weight > 0 else 1,  # CR-CTC: each utterance through the encoder twice
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
    (waves (B, N), lengths (B,), tokens (B, U), token lengths (B,)) and returning the last
    micro-batch's loss, a device tensor (reading it would wait for the device): training's
    own step (:mod:`asr.training.step`: device augmentation where the recipe has it, the
    recipe's losses, clipping, the optimizer)."""
    device_type = batch[0].device.type
    augment = device_augment_for(recipe)
    steps = itertools.count()

    def step() -> torch.Tensor:
        for micro in range(accumulate):
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
                loss = augmented_loss(model, recipe, augment, batch, f"bench/{next(steps)}/{micro}") / accumulate
            loss.backward()
        update(model, optimizer, recipe.optim.grad_clip)
        return loss.detach()

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


# Published sizes of LibriSpeech's training subsets (hours), for the cost of a recipe's epochs.
LIBRISPEECH_HOURS = {"train-clean-100": 100.6, "train-clean-360": 363.6, "train-other-500": 496.7}


def block_summary(model: ModelConfig) -> str:
    """The encoder options a recipe turns on, in words: "d 256 x 16, dw8, rope, ..."."""
    parts = [f"d {model.d_model} x {model.n_layers}", model.subsampling, model.pos_enc]
    if model.macaron:
        parts.append("macaron")
    if model.conv_kernel:
        parts.append(f"conv {model.conv_kernel} {'causal' if model.conv_causal else 'centred'}")
    if model.chunk_train_prob > 0:
        parts.append(f"chunks p={model.chunk_train_prob:g} <= {model.max_chunk_frames} frames")
    if model.inter_ctc_weight > 0 and model.inter_ctc_layers:
        parts.append(f"InterCTC {model.inter_ctc_weight:g} at {list(model.inter_ctc_layers)}")
    if model.cr_ctc_weight > 0:
        parts.append(f"CR-CTC {model.cr_ctc_weight:g} (2 views)")
    return ", ".join(parts)


def recipe_hours(recipe: RecipeConfig) -> float | None:
    """Training audio of one epoch (hours) for a LibriSpeech recipe; None for other corpora."""
    if recipe.corpus.kind != "librispeech":
        return None
    return sum(LIBRISPEECH_HOURS.get(split, 0.0) for split in recipe.corpus.train_splits) or None


def describe(name: str, recipe: RecipeConfig, row: dict, device: str, peak_gflops: float) -> str:
    """One recipe's figures -> the lines ``main`` prints."""
    spec = spec_bf16_tflops(device) if row["mfu"] is not None else None
    batch = f"{row['batch_audio_seconds']} s ({row['micro_batches']} x {row['utterances_per_micro_batch']} utterances)"
    lines = [
        f"{name}: {row['parameters_m']} M parameters; {block_summary(recipe.model)}",
        f"  {row['precision']}, batch {batch}: {row['seconds_per_step']} s/step, "
        f"{row['audio_seconds_per_second']:,.1f} audio-s/s, model {row['model_gflops'] / 1e3:.3g} TFLOP/s "
        f"({row['model_gflop_per_step'] / 1e3:.3g} TFLOP a step), peak memory {row['peak_memory_gib']:.2f} GiB",
        f"  MFU {row['mfu']:.1%} of the {spec:g} TFLOP/s dense bf16 peak of {device}" if spec else
        f"  MFU: no vendor peak known for {device} ({row['precision']})",
    ]
    lines[-1] += f"; {row['model_gflops'] / peak_gflops:.1%} of the measured matmul peak ({peak_gflops / 1e3:.1f} TFLOP/s)"
    if row.get("recipe_gpu_hours") is not None:
        lines.append(f"  the recipe's {row['epochs']} epochs of {row['epoch_hours']:.1f} h at this rate: "
                     f"{row['recipe_gpu_hours']:.1f} device-hours of model arithmetic (data loading and validation not included)")
    return "\n".join(lines)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m asr.bench.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", action="append", required=True, type=Path, help="recipe YAML; repeat for several")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=("bf16", "32"), default="bf16")
    p.add_argument("--batch-seconds", type=float, help="audio per optimizer step (default: the recipe's data.max_batch_seconds)")
    p.add_argument("--micro-seconds", type=float, help="run each step as micro-batches of this much audio")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    p.add_argument("--steps", type=int, default=5, help="timed steps")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    try:
        recipes = [(path.stem, load_recipe(path)) for path in args.config]
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rows = []
    for name, recipe in recipes:
        row = train_throughput(recipe, recipe.tokenizer.vocab_size + 1, device, args.precision, args.batch_seconds,
                               args.micro_seconds, warmup=args.warmup, steps=args.steps)  # fmt: skip
        rows.append({"name": name, **row})
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    peak, name_of_device = matmul_peak(device, dtype), device_name(device)  # after training: not in its peak memory
    for (name, recipe), row in zip(recipes, rows):
        spec = spec_bf16_tflops(name_of_device) if args.precision == "bf16" else None
        hours, epochs = recipe_hours(recipe), recipe.trainer.get("max_epochs")
        row.update(device=name_of_device, matmul_peak_gflops=round(peak, 1),
                   mfu=row["model_gflops"] / (spec * 1e3) if spec else None, epoch_hours=hours, epochs=epochs,
                   recipe_gpu_hours=epochs * hours / row["audio_seconds_per_second"] if hours and epochs else None)
        print(describe(name, recipe, row, name_of_device, peak))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
