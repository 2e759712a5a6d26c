"""Build the evaluation-only test sets into ``<out>/real/test`` and ``<out>/unseen/test``.

    python -m asr.cli.evalsets --out data [--which real,unseen] [--sentences FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asr.corpus.evalsets import build_real, build_unseen, evalset_transcripts

WHICH = ("real", "unseen")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data"), help="data root (default: data)")
    parser.add_argument("--which", default="real,unseen", help="comma-separated: real, unseen (default: both)")
    parser.add_argument("--cache", type=Path, default=None, help="downloaded packages (default: <out>/packages)")
    parser.add_argument("--sentences", type=Path, default=None,
                        help="held-out sentences for the unseen set, one per line (unseen is skipped without it)")
    parser.add_argument("--n", type=int, default=500, help="unseen utterances (default: 500)")
    parser.add_argument("--seed", type=int, default=0, help="unseen voice/rate draw (default: 0)")
    args = parser.parse_args(argv)
    wanted = [w.strip() for w in args.which.split(",") if w.strip()]
    unknown = sorted(set(wanted) - set(WHICH))
    if unknown:
        parser.error(f"--which: unknown set {unknown[0]!r} (choose from {', '.join(WHICH)})")
    args.which = wanted
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if "real" in args.which:
        folder = build_real(args.out, args.cache or args.out / "packages")
        print(f"real: {folder} ({len(evalset_transcripts(folder))} distinct transcripts)")
    if "unseen" in args.which:
        if args.sentences is None:
            print("unseen: skipped (no --sentences FILE given)")
        else:
            lines = args.sentences.read_text(encoding="utf-8").splitlines()
            folder = build_unseen(args.out, [line.strip() for line in lines if line.strip()], args.seed, args.n)
            print(f"unseen: {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
