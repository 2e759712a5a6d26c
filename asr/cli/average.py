"""Average the weights of the last or best N training checkpoints into one model.pt.

    python -m asr.cli.average --last 5 --out exp/ls960/model_avg5.pt exp/ls960/checkpoints
    python -m asr.cli.average --best 5 --out exp/ls960/model_best5.pt exp/ls960/checkpoints/*.ckpt

Inputs are Lightning checkpoints (``*.ckpt``) or folders holding them. ``--last`` orders
them by training step; ``--best`` by the validation WER stored in each one. The output is
self-describing (recipe, tokenizer, weights) like the ``model.pt`` that training exports.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--last", type=int, default=0, help="average the N newest checkpoints")
    group.add_argument("--best", type=int, default=0, help="average the N checkpoints with the lowest val_wer")
    parser.add_argument("--out", type=Path, required=True, help="averaged model file to write (model.pt format)")
    parser.add_argument("checkpoints", nargs="+", type=Path, help="*.ckpt files or folders holding them")
    return parser.parse_args(argv)


def expand(items: list[Path]) -> list[Path]:
    paths = []
    for item in items:
        paths.extend(sorted(item.glob("*.ckpt")) if item.is_dir() else [item])
    return paths


def main(argv=None) -> int:
    args = parse_args(argv)
    from asr.training.average import average_checkpoints, select
    from asr.inference.checkpoint import CheckpointError

    paths = expand(args.checkpoints)
    if not paths:
        print(f"error: no *.ckpt files in {', '.join(map(str, args.checkpoints))}", file=sys.stderr)
        return 2
    try:
        chosen = select(paths, last=args.last, best=args.best)
        wanted = args.last or args.best
        if len(chosen) < wanted:
            print(f"warning: asked for {wanted} checkpoints, found {len(chosen)} distinct ones", file=sys.stderr)
        out = average_checkpoints(chosen, args.out)
    except (CheckpointError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for info in chosen:
        score = "" if info.score is None else f", val_wer {info.score:.4f}"
        print(f"  {info.path.name}: epoch {info.epoch}, step {info.step}{score}")
    print(f"averaged {len(chosen)} checkpoints into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
