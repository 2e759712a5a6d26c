"""Can the loader feed the model? Audio-seconds per second per CPU core of each loader
stage, beside the model's training appetite, and the loader cores one device needs.

    python -m asr.bench.loader [--recipe recipes/librispeech/train_960h.yaml] \\
        [--manifest data/synth/train.jsonl] [--seconds 300] [--device cuda]

Stages, each timed in CPU seconds of one thread over the same utterances (cumulative: each includes the
ones above it): decode (read + resample to 16 kHz), speed perturbation (the recipe's
factors, or 0.9/1.0/1.1), acoustic augmentation (the recipe's ``augment`` section, or
the demo's), and, for reference, log-mel (which our model computes on the device, not in
the loader). After (``data.shards`` + ``data.augment_device``): the loader only reads
pre-decoded shards by memory map (:mod:`asr.data.shards`; written to a temporary folder
first, so both reads come from the page cache), and speed + augmentation run on
``--device`` in batches of ``--batch-seconds`` (:mod:`asr.data.augment.device`).
Appetite: audio-seconds per second one training step takes in, measured on
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
# Loader stages are timed in this process's CPU seconds (one thread): a machine shared with
# other work then slows the figures less than wall time would.
cpu_seconds = time.process_time


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


def after_rates(recipe, entries: list, augment_config, device: str, batch_seconds: float) -> dict[str, float]:
    """{stage: audio-seconds per second}: shard read on one thread, speed (+ augmentation) on ``device``."""
    import tempfile

    import torch

    from asr.audio.read import read_audio
    from asr.config import AugmentConfig
    from asr.data.augment.device import DeviceAugment
    from asr.data.batch import pad_1d
    from asr.data.shards import ShardReader, write_shards

    torch.set_num_threads(1)
    rate = recipe.features.sample_rate
    waves = [read_audio(e.audio, rate) for e in entries]
    audio = sum(len(w) for w in waves) / rate
    with tempfile.TemporaryDirectory() as folder:
        write_shards(((str(i), w) for i, w in enumerate(waves)), folder, rate)
        reader = ShardReader([folder], rate)
        started = cpu_seconds()
        for i in range(len(waves)):
            reader.read(str(i))
        read = cpu_seconds() - started
    order = sorted(range(len(waves)), key=lambda i: len(waves[i]))  # duration buckets, as the sampler makes them
    batches, current = [], []
    for i in order:
        current.append(waves[i])
        if sum(len(w) for w in current) / rate >= batch_seconds:
            batches.append(pad_1d(current, torch.float32))
            current = []
    batches += [pad_1d(current, torch.float32)] if current else []
    batches = [(w.to(device), n.to(device)) for w, n in batches]
    factors = recipe.data.speed_perturb or (0.9, 1.0, 1.1)
    clock = time.perf_counter if device.startswith("cuda") else cpu_seconds  # a GPU's time is wall time
    timed = {}
    for name, config in (("speed", AugmentConfig()), ("speed + augmentation", augment_config)):
        augment = DeviceAugment(config, factors, rate, seed=0)
        augment(*batches[0], "warm-up")  # the room bank and the kernels, once, outside the timing
        _sync(device)
        started = clock()
        for k, (w, n) in enumerate(batches):
            augment(w, n, str(k))
        _sync(device)
        timed[name] = clock() - started
    return {
        "shard read (memory map)": audio / read,
        f"device speed perturbation ({device})": audio / timed["speed"],
        f"device speed + augmentation ({device})": audio / timed["speed + augmentation"],
    }


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def stage_rates(recipe, entries: list, augment_config) -> dict[str, float]:
    """{stage: audio-seconds per second on one thread}, cumulative stages."""
    import torch

    from asr.audio.read import read_audio
    from asr.data.augment import Augment, pool_source
    from asr.data.augment.speed import speed_perturb
    from asr.model.features import LogMel

    torch.set_num_threads(1)
    rate = recipe.features.sample_rate
    factors = recipe.data.speed_perturb or (0.9, 1.0, 1.1)
    rng = random.Random(0)
    started = cpu_seconds()
    waves = [read_audio(e.audio, rate) for e in entries]
    decode = cpu_seconds() - started
    started = cpu_seconds()
    speeded = []
    for wave in waves:
        factor = rng.choice(factors)
        speeded.append(speed_perturb(wave, factor, rate))  # what the loader's dataset does
    speed = cpu_seconds() - started
    augment = Augment(augment_config, others=pool_source(waves[:20]), seed=0)
    for transform in augment.transforms:  # one-off costs (the room bank) outside the timing, as in a worker
        getattr(transform, "bank", None)
    started = cpu_seconds()
    augmented = [augment(w, random.Random(i)) for i, w in enumerate(speeded)]
    augmenting = cpu_seconds() - started
    logmel = LogMel(recipe.features)
    started = cpu_seconds()
    for wave in augmented:
        logmel(wave[None], torch.tensor([len(wave)]))
    mel = cpu_seconds() - started
    audio = sum(len(w) for w in waves) / rate
    return {
        "decode": audio / decode,
        "decode + speed perturbation": audio / (decode + speed),
        "decode + speed + augmentation": audio / (decode + speed + augmenting),
        "log-mel alone (device side in our model)": audio / mel,
    }


def appetite(recipe, device: str, warmup: int = 1, steps: int = 2) -> float:
    """Audio-seconds per second one bf16 training step of the recipe's model takes in on
    ``device`` (:func:`asr.bench.train.train_throughput`: 100 s batches of 12.3 s utterances)."""
    import torch

    from asr.bench.train import train_throughput

    figures = train_throughput(recipe, recipe.tokenizer.vocab_size + 1, torch.device(device), "bf16", batch_seconds=100,
                               warmup=warmup, steps=steps)  # fmt: skip
    return figures["audio_seconds_per_second"]


def h100_estimate(recipe) -> float:
    """Audio-seconds per second one H100 would take in at :data:`ASSUMED_MFU` (from FLOPs)."""
    from asr.bench.flops import feature_frames, training_flops

    frames = feature_frames(10 * recipe.features.sample_rate, recipe.features)
    per_10s = training_flops(recipe.model, recipe.features, recipe.tokenizer.vocab_size + 1, 1, frames)
    return H100_BF16_TFLOPS * 1e12 * ASSUMED_MFU / (per_10s / 10)


def report(figures: dict, device: str, seconds: float, manifest: Path, stem: str) -> None:
    """Print the stages and the loader cores one device needs, before and after."""
    rates, after = figures["loader_audio_s_per_s_per_core"], figures["after_audio_s_per_s"]
    print(f"loader, audio-seconds per second on one core ({seconds:.0f} s of {manifest}):")
    for stage, rate in {**rates, **after}.items():
        print(f"  {stage:<42} {rate:8.0f}")
    before, without = rates["decode + speed + augmentation"], rates["decode + speed perturbation"]
    shards = after["shard read (memory map)"]
    on_device = after[f"device speed + augmentation ({device})"]
    appetites = {f"{device} measured": figures[f"appetite_{device}"],
                 f"one H100 at {ASSUMED_MFU:.0%} MFU (estimate from FLOPs)": figures["appetite_h100_estimate"]}
    for where, eaten in appetites.items():
        print(f"model appetite ({stem}, bf16 training), {where}: {eaten:.0f} audio-s/s")
        print(f"  before: {eaten / before:.1f} loader cores with augmentation, {eaten / without:.1f} with speed only")
        print(f"  after (shards + augment_device): {eaten / shards:.2f} loader cores")
    share = figures[f"appetite_{device}"] / on_device  # of the step's time, fed at its appetite
    print(f"  device-side speed + augmentation on {device}: {1000 / on_device:.3f} ms per audio second"
          f" ({share:.1%} of a {device} training step's time)")  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, default=Path("recipes/librispeech/train_960h.yaml"))
    parser.add_argument("--manifest", type=Path, default=Path("data/synth/train.jsonl"))
    parser.add_argument("--seconds", type=float, default=300.0, help="audio to time each stage on")
    parser.add_argument("--device", default="cpu", help="where the appetite and device-side augmentation are measured")
    parser.add_argument("--batch-seconds", type=float, default=100.0, help="audio per device-side batch")
    parser.add_argument("--warmup", type=int, default=1, help="untimed training steps before the appetite's")
    parser.add_argument("--steps", type=int, default=2, help="timed training steps of the appetite")
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
    figures = {
        "recipe": str(args.recipe),
        "loader_audio_s_per_s_per_core": stage_rates(recipe, entries, augment),
        "after_audio_s_per_s": after_rates(recipe, entries, augment, args.device, args.batch_seconds),
        f"appetite_{args.device}": appetite(recipe, args.device, args.warmup, args.steps),
        "appetite_h100_estimate": h100_estimate(recipe),
    }
    report(figures, args.device, sum(e.duration for e in entries), args.manifest, args.recipe.stem)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
