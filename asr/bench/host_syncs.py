"""What a host sync in the training step would cost on a GPU, measured on a CPU with torch's
profiler: the host time and the operator count of each part of the step.

A sync (reading a device value on the host, a blocking copy) empties the GPU's queue; the GPU
then idles for as long as the host takes to queue work again. So the cost of a sync placed
before a part is about the host time of the Python-only work that follows it (the device
augmentation's draws) plus a launch latency, and nothing where the GPU has queued work left.
On a CPU every operator's dispatch is measured directly: the host time of a part divided by
its operators is the dispatch cost each GPU kernel launch would also pay.

    python -m asr.bench.host_syncs --config recipes/librispeech/train_960h.yaml --steps 5 \
        [--tiny]   # the recipe's blocks at d_model 32: arithmetic negligible, dispatch only
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

PARTS = ("draws", "augment", "loss", "backward", "update")


def profile_step(recipe, steps: int, batch_seconds: float, seed: int = 0) -> dict[str, dict]:
    """-> {part: {"ms": host milliseconds a step, "ops": operators a step}} over ``steps`` steps.
    Utterances are shortened by ``batch_seconds`` / the recipe's batch, so that a batch holds
    as many as the recipe's does (the draws cost per utterance) while the arithmetic stays small."""
    from asr.bench.gpu_cases import Sizes, sampler_batches, synthetic_batch
    from asr.data.augment.device import device_augment_for
    from asr.model import CTCModel
    from asr.training.step import batch_loss, build_optimizer, update

    torch.manual_seed(seed)
    vocab = recipe.tokenizer.vocab_size + 1
    model = CTCModel(recipe.model, recipe.features, recipe.specaug, vocab).train()
    optimizer = build_optimizer(model, recipe.optim)
    augment = device_augment_for(recipe)
    sizes = Sizes(batch_seconds, batch_seconds / recipe.data.max_batch_seconds, 0, steps, 0, 0, 0, 0, 0.0, 0.0, 0)
    batches = [synthetic_batch(d, vocab, recipe.features.sample_rate, torch.device("cpu"), i)
               for i, d in enumerate(sampler_batches(recipe, sizes, steps + 1, seed))]  # fmt: skip
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i, (waves, lengths, tokens, token_lengths) in enumerate(batches):
            with record_function("draws"):
                if augment is not None:
                    augment.draw(lengths.tolist(), f"p/{i}")
            with record_function("augment"):
                if augment is not None:
                    waves, lengths = augment(waves, lengths, f"p/{i}")
            with record_function("loss"):
                loss = batch_loss(model, recipe, waves, lengths, tokens, token_lengths)
            with record_function("backward"):
                loss.backward()
            with record_function("update"):
                update(model, optimizer, recipe.optim.grad_clip)
    return _per_part(prof.events(), len(batches))


def _per_part(events, steps: int) -> dict[str, dict]:
    """Host time of each part's range and the operators called directly inside it."""
    ranges = {name: [e for e in events if e.name == name] for name in PARTS}
    out = {}
    for name, spans in ranges.items():
        total_us = sum(e.time_range.elapsed_us() for e in spans)
        inside = [e for e in events if e.name.startswith("aten::") and any(
            s.time_range.start <= e.time_range.start and e.time_range.end <= s.time_range.end
            and e.thread == s.thread for s in spans)]  # fmt: skip
        top = [e for e in inside if e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")]
        out[name] = {"ms": round(total_us / 1e3 / steps, 2), "ops": round(len(top) / steps)}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m asr.bench.host_syncs", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--config", type=Path, required=True, help="recipe YAML")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch-seconds", type=float, default=30.0, help="audio a step (small: a CPU computes it)")
    p.add_argument("--tiny", action="store_true", help="the recipe's blocks at d_model 32: dispatch cost only")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    args = p.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    import yaml

    from asr.bench.gpu import DRY_RUN_MODEL
    from asr.config import recipe_from_dict

    recipe = recipe_from_dict(yaml.safe_load(args.config.read_text()), check_trainer=False)
    if args.tiny:
        recipe = dataclasses.replace(recipe, model=dataclasses.replace(recipe.model, **DRY_RUN_MODEL))
    parts = profile_step(recipe, args.steps, args.batch_seconds)
    print(f"{args.config.stem}{' (tiny)' if args.tiny else ''}, {args.batch_seconds:g} s batches, a step's host time:")
    for name, figures in parts.items():
        per_op = figures["ms"] * 1e3 / figures["ops"] if figures["ops"] else 0.0
        print(f"  {name:9s} {figures['ms']:8.2f} ms, {figures['ops']:5d} operators ({per_op:.0f} us each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
