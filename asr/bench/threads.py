"""Training steps beside each other: how much slower one bf16 step of the demo model on a
100 s batch gets when several trainings share the machine, per OpenMP setting.

    python -m asr.bench.threads [--steps 6] [--procs 2]

Runs the timing alone, then ``--procs`` copies at once, for the default threads, for
``OMP_WAIT_POLICY=PASSIVE`` and for ``OMP_NUM_THREADS=1``; prints seconds per step.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

SETTINGS = {"default": {}, "passive": {"OMP_WAIT_POLICY": "PASSIVE"}, "one thread": {"OMP_NUM_THREADS": "1"}}


def seconds_per_step(steps: int) -> float:
    """Mean wall seconds of one bf16 training step (B=10, 10 s each, 40 tokens) after one warm-up step."""
    import torch

    from asr.config import RecipeConfig
    from asr.model import CTCModel
    from asr.model.ctc_model import ctc_loss

    recipe = RecipeConfig()
    model = CTCModel(recipe.model, recipe.features, recipe.specaug, 257).train()
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
    generator = torch.Generator().manual_seed(0)
    waves, lengths = 0.1 * torch.randn(10, 160000, generator=generator), torch.full((10,), 160000)
    tokens, token_lengths = torch.randint(1, 257, (10, 40), generator=generator), torch.full((10,), 40)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            log_probs, out_lengths = model(waves, lengths)
        loss = ctc_loss(log_probs, out_lengths, tokens, token_lengths)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - started) / steps


def run_together(procs: int, steps: int, env: dict) -> list[float]:
    """``procs`` child processes timing at once -> their seconds per step."""
    command = [sys.executable, "-m", "asr.bench.threads", "--child", "--steps", str(steps)]
    children = [subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.PIPE, text=True)
                for _ in range(procs)]  # fmt: skip
    return [float(child.communicate()[0].strip()) for child in children]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(f"{seconds_per_step(args.steps):.4f}")
        return 0
    for name, env in SETTINGS.items():
        alone = run_together(1, args.steps, env)[0]
        together = run_together(args.procs, args.steps, env)
        shown = ", ".join(f"{s:.2f}" for s in together)
        print(f"{name:>10}: alone {alone:.2f} s/step; {args.procs} at once {shown} s/step ({max(together) / alone:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
