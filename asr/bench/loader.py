"""Can the loader feed the model? Audio-seconds per second per CPU core of each loader
stage, beside the model's training appetite, and the loader cores one device needs.

    python -m asr.bench.loader [--recipe recipes/librispeech/train_960h.yaml] \\
        [--manifest data/synth/train.jsonl] [--seconds 300] [--device cuda]

Stages, each timed on one thread over the same utterances (cumulative: each includes the
ones above it): decode (read + resample to 16 kHz), speed perturbation (the recipe's
factors, or 0.9/1.0/1.1), acoustic augmentation (the recipe's ``augment`` section, or
the demo's), and, for reference, log-mel (which our model computes on the device, not in
the loader). Appetite: audio-seconds per second one training step takes in, measured on
``--device`` (bf16 autocast; the recipe's model, 100 s batches), and,
without a GPU, estimated for one H100 from the model's FLOPs at an assumed model-FLOP
utilization (:data:`H100_BF16_TFLOPS`, :data:`ASSUMED_MFU`).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

H100_BF16_TFLOPS = 989.0  # dense bf16 peak of an H100 SXM
ASSUMED_MFU = 0.35  # what a well-fed small transformer reaches (stated as an assumption, not measured)
DEMO = Path("recipes/demo/demo.yaml")


def _entries(manifest: Path, seconds: float) -> list:
    from asr.data.manifest import read_manifest

    entries, total = [], 0.0
    for entry in read_manifest(manifest):
        entries.append(entry)
        total += entry.duration
        if total >= seconds:
            break
    if not entries:
        raise ValueError(f"{manifest}: no utterances")
    return entries


def stage_rates(recipe, entries: list, augment_config) -> dict[str, float]:
    """{stage: audio-seconds per second on one thread}, cumulative stages."""
    import torch
    import torchaudio.functional as AF

    from asr.audio.read import read_audio
    from asr.data.augment import Augment, pool_source
    from asr.model.features import LogMel

    torch.set_num_threads(1)
    rate = recipe.features.sample_rate
    factors = recipe.data.speed_perturb or (0.9, 1.0, 1.1)
    rng = random.Random(0)
    started = time.perf_counter()
    waves = [read_audio(e.audio, rate) for e in entries]
    decode = time.perf_counter() - started
    started = time.perf_counter()
    speeded = []
    for wave in waves:
        factor = rng.choice(factors)
        speeded.append(AF.resample(wave, int(round(rate * factor)), rate) if factor != 1.0 else wave)
    speed = time.perf_counter() - started
    augment = Augment(augment_config, others=pool_source(waves[:20]), seed=0)
    for transform in augment.transforms:  # one-off costs (the room bank) outside the timing, as in a worker
        getattr(transform, "bank", None)
    started = time.perf_counter()
    augmented = [augment(w, random.Random(i)) for i, w in enumerate(speeded)]
    augmenting = time.perf_counter() - started
    logmel = LogMel(recipe.features)
    started = time.perf_counter()
    for wave in augmented:
        logmel(wave[None], torch.tensor([len(wave)]))
    mel = time.perf_counter() - started
    audio = sum(len(w) for w in waves) / rate
    return {
        "decode": audio / decode,
        "decode + speed perturbation": audio / (decode + speed),
        "decode + speed + augmentation": audio / (decode + speed + augmenting),
        "log-mel alone (device side in our model)": audio / mel,
    }


def appetite(recipe, device: str) -> float:
    """Audio-seconds per second one bf16 training step of the recipe's model takes in on
    ``device`` (:func:`asr.bench.train.train_throughput`: 100 s batches of 12.3 s utterances)."""
    import torch

    from asr.bench.train import train_throughput

    figures = train_throughput(recipe, recipe.tokenizer.vocab_size + 1, torch.device(device), "bf16", batch_seconds=100)
    return figures["audio_seconds_per_second"]


def h100_estimate(recipe) -> float:
    """Audio-seconds per second one H100 would take in at :data:`ASSUMED_MFU` (from FLOPs)."""
    from asr.bench.flops import training_flops

    frames = 1 + (10 * recipe.features.sample_rate - recipe.features.n_fft) // recipe.features.hop_length
    per_10s = training_flops(recipe.model, recipe.features, recipe.tokenizer.vocab_size + 1, 1, frames)
    return H100_BF16_TFLOPS * 1e12 * ASSUMED_MFU / (per_10s / 10)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, default=Path("recipes/librispeech/train_960h.yaml"))
    parser.add_argument("--manifest", type=Path, default=Path("data/synth/train.jsonl"))
    parser.add_argument("--seconds", type=float, default=300.0, help="audio to time each stage on")
    parser.add_argument("--device", default="cpu", help="where the appetite is measured")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    from asr.config import load_recipe

    try:
        recipe = load_recipe(args.recipe)
        augment = recipe.augment if any(v > 0 for k, v in vars(recipe.augment).items() if k.endswith("_prob")) \
            else load_recipe(DEMO).augment  # fmt: skip
        entries = _entries(args.manifest, args.seconds)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rates = stage_rates(recipe, entries, augment)
    eaten = appetite(recipe, args.device)
    figures = {"recipe": str(args.recipe), "loader_audio_s_per_s_per_core": rates,
               f"appetite_{args.device}": eaten, "appetite_h100_estimate": h100_estimate(recipe)}  # fmt: skip
    print(f"loader, audio-seconds per second on one core ({sum(e.duration for e in entries):.0f} s of {args.manifest}):")
    for stage, rate in rates.items():
        print(f"  {stage:<42} {rate:8.0f}")
    loader = rates["decode + speed + augmentation"]
    print(f"model appetite ({args.recipe.stem}, bf16 training): {args.device} {eaten:.0f} audio-s/s"
          f" -> {eaten / loader:.1f} loader cores")  # fmt: skip
    estimate = figures["appetite_h100_estimate"]
    print(f"  one H100 at {ASSUMED_MFU:.0%} MFU (estimate from FLOPs): {estimate:.0f} audio-s/s -> "
          f"{estimate / loader:.0f} loader cores with augmentation, {estimate / rates['decode + speed perturbation']:.0f} without")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
