"""Training throughput and peak memory of a recipe's model, on synthetic audio.

    python bench/train_throughput.py                                   # 960 h recipe, CPU, fp32
    python bench/train_throughput.py --device cuda --precision bf16    # on a GPU
    python bench/train_throughput.py --batch-seconds 60 --steps 3      # a smaller batch (CPU)

Each step is what training does per batch: log-mel, SpecAugment, the model, the CTC loss
(fp32), backward, gradient clipping and an AdamW update. The batch is packed like the
duration sampler packs it: utterances of ``--utt-seconds`` (LibriSpeech averages 12.3 s)
up to ``--batch-seconds`` of padded audio (default: the recipe's ``data.max_batch_seconds``),
with random transcripts of ``--tokens-per-second`` tokens. Data loading is not timed.

Throughput is hours of audio trained per hour of compute on this one device (wall clock);
on a CPU also per core-hour of CPU time, which other processes on the machine barely change.
Peak memory is ``torch.cuda.max_memory_allocated`` on a GPU and the process's peak resident
set on a CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
LIBRISPEECH_960H_SECONDS = 960.9 * 3600  # train-clean-100 + train-clean-360 + train-other-500


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "recipes/librispeech/train_960h.yaml")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--precision", choices=("32", "bf16"), default="32", help="bf16: autocast, as bf16-mixed")
    parser.add_argument("--batch-seconds", type=float, help="padded seconds per batch (default: the recipe's)")
    parser.add_argument("--utt-seconds", type=float, default=12.3, help="utterance length in the batch")
    parser.add_argument("--tokens-per-second", type=float, default=3.5, help="transcript tokens per audio second")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=3, help="timed steps")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("overrides", nargs="*", help="recipe overrides, section.key=value")
    return parser.parse_args(argv)


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


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        return f"{names[0]} ({len(names)} logical cores)"
    except (OSError, IndexError):
        return platform.processor() or "cpu"


def peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def main(argv=None) -> int:
    args = parse_args(argv)
    if str(REPO) not in sys.path:  # run as a script from anywhere: import asr from this checkout
        sys.path.insert(0, str(REPO))
    from asr.config import ConfigError, load_recipe
    from asr.model import CTCModel
    from asr.model.ctc_model import ctc_loss

    try:
        recipe = load_recipe(args.config, args.overrides)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    torch.manual_seed(0)
    torch.set_float32_matmul_precision("high")
    vocab = recipe.tokenizer.vocab_size + 1  # blank
    model = CTCModel(recipe.model, recipe.features, recipe.specaug, vocab).to(device).train()
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.optim.lr, betas=recipe.optim.betas)
    batch_seconds = args.batch_seconds or recipe.data.max_batch_seconds
    waves, lengths, tokens, token_lengths = (
        t.to(device) for t in synthetic_batch(batch_seconds, args.utt_seconds, args.tokens_per_second, vocab)
    )
    audio_seconds = float(lengths.sum()) / 16000
    rss_before = peak_memory_gib(torch.device("cpu"))
    print(
        f"{recipe.name}: {params / 1e6:.2f}M parameters; batch {waves.shape[0]} x {args.utt_seconds:.1f} s = "
        f"{audio_seconds:.0f} s of audio (recipe batch {recipe.data.max_batch_seconds:.0f} s); "
        f"{device.type}, precision {args.precision}, {torch.get_num_threads()} threads",
        flush=True,
    )

    def step() -> float:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            log_probs, out_lengths = model(waves, lengths)  # (B, T', V), (B,)
        loss = ctc_loss(log_probs, out_lengths, tokens, token_lengths)  # fp32 inside
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.optim.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())  # a device sync point: the step is finished when this returns

    for _ in range(args.warmup):
        step()
    started, cpu_started = time.perf_counter(), time.process_time()
    for i in range(args.steps):
        loss = step()
        print(f"  step {i + 1}/{args.steps}: loss {loss:.1f}, {time.perf_counter() - started:.1f} s", flush=True)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started  # CPU seconds of all this process's threads
    speed = audio_seconds * args.steps / wall  # audio seconds per compute second = hours per hour
    figures = {
        "recipe": recipe.name,
        "parameters_m": round(params / 1e6, 2),
        "device": device_name(device),
        "threads": torch.get_num_threads(),
        "precision": args.precision,
        "batch_seconds": round(audio_seconds, 1),
        "recipe_batch_seconds": recipe.data.max_batch_seconds,
        "seconds_per_step": round(wall / args.steps, 3),
        # per CPU core-hour: unlike wall time, barely affected by other processes on the machine
        "audio_hours_per_cpu_core_hour": round(audio_seconds * args.steps / cpu, 3) if device.type == "cpu" else None,
        "audio_hours_per_compute_hour": round(speed, 2),
        "peak_memory_gib": round(peak_memory_gib(device), 2),
        "cpu_rss_before_steps_gib": round(rss_before, 2),
        "hours_per_960h_epoch": round(LIBRISPEECH_960H_SECONDS / speed / 3600, 2),
    }
    if device.type == "cpu":
        per_core = figures["audio_hours_per_cpu_core_hour"]
        print(f"CPU time: {cpu / args.steps:.1f} core-seconds per step, {per_core} h of audio per core-hour")
    print(
        f"throughput: {speed:.2f} h of audio per hour of compute ({wall / args.steps:.2f} s per step); "
        f"peak memory {figures['peak_memory_gib']:.2f} GiB; one 960 h epoch: {figures['hours_per_960h_epoch']:.1f} h"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
