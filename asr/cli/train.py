"""Train a recipe: prepare data, fit with Lightning, export the best model (:func:`asr.training.run.fit`).

    python train.py --config recipes/demo/demo.yaml [section.key=value ...] [--resume CKPT]

Any ``lightning.Trainer`` argument is a ``trainer.*`` override, e.g.
``trainer.devices=4 trainer.num_nodes=2 trainer.strategy=ddp trainer.precision=bf16-mixed``;
``trainer.precision=auto`` picks bf16-mixed where the chip computes in bf16, else 32-true
(:mod:`asr.training.precision`).
``--save-every-steps N`` also refreshes ``checkpoints/last.ckpt`` every N steps; a run
killed mid-epoch continues with ``--resume exp_dir/checkpoints/last.ckpt`` after the
batches it had trained on. Checkpoints are written atomically and loaded only as plain
weights (a file that would run code is refused).
Outputs in ``exp_dir``: ``checkpoints/`` (best and last), ``model.pt`` (the best model,
self-describing), ``<split>.ref`` reference files, ``<split>.list`` audio lists,
``metrics.csv`` logs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asr.cli import recipe_or_report

def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True, help="recipe YAML")
    parser.add_argument("--resume", type=Path, default=None, help="Lightning checkpoint to resume from")
    parser.add_argument(
        "--save-every-steps",
        type=int,
        default=0,
        metavar="N",
        help="also write checkpoints/last.ckpt every N training steps, so a crash mid-epoch loses less (default: off)",
    )
    parser.add_argument(
        "--curve", action="store_true", help="also score every test set at every validation (learning curves)"
    )
    parser.add_argument(
        "--keep-best", type=int, default=1, help="best checkpoints to keep (for averaging, asr.cli.average)"
    )
    parser.add_argument(
        "--threads",
        default="auto",
        help="CPU threads: a number, or auto = the cores other processes leave idle, with passive waiting "
        "when some are busy (default: auto; OMP_NUM_THREADS in the environment wins)",
    )
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides")
    args = parser.parse_args(argv)
    if args.threads != "auto" and not (args.threads.isdigit() and int(args.threads) > 0):
        parser.error(f"--threads must be auto or a positive number, not {args.threads!r}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from asr.training.threads import configure

    print(configure(args.threads))  # before torch starts its thread pool (checking a recipe loads Lightning)
    recipe = recipe_or_report(args.config, args.overrides)
    if recipe is None:
        return 2
    from asr.data.shards import ShardError
    from asr.inference.checkpoint import CheckpointError, read_checkpoint
    from asr.training.module import BatchOutOfMemoryError, NonFiniteLossError
    from asr.config import ConfigError
    from asr.data.manifest import ManifestError
    from asr.training.pretrained import PretrainedError, trained_init, whisper_folder
    from asr.training.run import fit

    if args.resume is not None:  # refuse an unusable or unsafe checkpoint before hours of data preparation
        try:
            state = read_checkpoint(args.resume)
        except CheckpointError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        if "asr" not in state:
            print(f"error: {args.resume}: not a training checkpoint (an exported model cannot resume)", file=sys.stderr)
            return 2
        print(f"resuming from {args.resume}: epoch {state.get('epoch')}, step {state.get('global_step')}")
        del state
    try:
        if recipe.model.init and not trained_init(recipe) and args.resume is None:  # named before data preparation
            whisper_folder()
        fit(recipe, args.resume, save_every_steps=args.save_every_steps, keep_best=args.keep_best, curve=args.curve)
    except (ShardError, PretrainedError, ManifestError, ConfigError) as err:  # before any training
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (NonFiniteLossError, BatchOutOfMemoryError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
