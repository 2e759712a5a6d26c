"""Soak: thousands of generated, mostly hostile inputs through every reader of the project.

    python -m asr.bench.fuzz --n 10000 [--seed 0] [--timeout 10] [--workdir DIR]

Audio files (:mod:`asr.bench.fuzz_audio`) go through the file reader, the streaming reader,
the training loader, the standard-input reader and ``transcribe.py`` (in-process
``main(argv)`` runs on groups of files); raw PCM streams through the standard-input
reader; reference files, manifests, ``wav.scp`` files, recipes with overrides and
checkpoints (:mod:`asr.bench.fuzz_files`) through their readers, checkpoints also through
``transcribe.py --model``. Every case is a function of ``--seed`` and its number.

Prints the count of inputs per kind, reader and outcome, and exits 1 on any crash (an
exception that is not the project's own one-line error), hang (an input over
``--timeout`` seconds) or good input lost (refused, not transcribed, or read wrong).
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHARES = {"audio": 0.50, "raw pcm": 0.05, "references": 0.12, "manifest": 0.08, "wav.scp": 0.03,
          "recipe": 0.11, "checkpoint": 0.11}  # fmt: skip  # of --n; audio files each meet five readers
TRANSCRIBE_EVERY = 10  # every tenth checkpoint case also goes through transcribe.py --model


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10000, help="generated inputs in all (default: 10000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every case (default: 0)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds one input may take (default: 10)")
    parser.add_argument("--workdir", type=Path, help="where cases are written (default: a temporary folder)")
    return parser.parse_args(argv)


def counts_for(n: int) -> dict[str, int]:
    """--n -> inputs per kind (audio takes what rounding leaves)."""
    counts = {kind: int(n * share) for kind, share in SHARES.items() if kind != "audio"}
    return {"audio": n - sum(counts.values()), **counts}


def soak(n: int, seed: int, timeout: float, folder: Path):
    """-> the :class:`~asr.bench.fuzz_core.Tally` of ``n`` inputs written under ``folder``."""
    import torch

    from asr.bench import fuzz_audio as audio
    from asr.bench import fuzz_cli as cli
    from asr.bench import fuzz_files as files
    from asr.bench.fuzz_core import Tally, write_tiny_model

    from asr.config import load_recipe

    load_recipe(None, ["trainer.max_epochs=1"])  # imports Lightning (seconds) to check trainer keys: not an input's time
    torch.manual_seed(seed)
    tally = Tally(timeout)
    counts = counts_for(n)
    model = write_tiny_model(folder / "model.pt", seed)
    control = audio.write_control(folder / "control.wav")
    rng = np.random.default_rng(seed)
    transcribe = functools.partial(cli.run_transcribe, model=model, control=control, tally=tally)  # a group at a time
    audio.soak_audio(folder / "audio", counts["audio"], rng, tally, transcribe)
    audio.soak_raw_stdin(counts["raw pcm"], rng, tally)
    path = folder / "case"
    for _ in range(counts["references"]):
        fault, expected = files.write_references(path, rng)
        tally.run("references", f"ref:{fault}", lambda: cli.check_references(path, fault, expected), fault)
    for kind in ("manifest", "wav.scp"):
        path = folder / ("case.scp" if kind == "wav.scp" else "case.jsonl")
        for _ in range(counts[kind]):
            fault, ids = files.write_manifest_case(path, rng, scp=kind == "wav.scp")
            if kind == "manifest":
                tally.run(kind, "read_manifest", lambda: files.check_read_manifest(path, fault, ids), fault)
            tally.run(kind, "transcribe", lambda: cli.check_manifest_inputs(path, fault, ids), fault)
    path = folder / "recipe.yaml"
    for _ in range(counts["recipe"]):
        good, overrides = files.write_recipe_case(path, rng)
        tally.run("recipe", "load_recipe", lambda: files.check_recipe(path, good, overrides), f"{overrides}")
    from asr.inference.checkpoint import read_checkpoint

    good = read_checkpoint(model)
    path = folder / "case.pt"
    for index in range(counts["checkpoint"]):
        fault = files.write_checkpoint_case(path, good, rng)
        tally.run("checkpoint", "load_parts", lambda: files.check_checkpoint(path, fault), fault)
        if index % TRANSCRIBE_EVERY == 0:
            tally.run("checkpoint", "transcribe", lambda: cli.check_transcribe_checkpoint(path, fault, control), fault)
    return tally


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(1)  # tiny inputs: one thread is fastest, and leaves the other cores alone
    start = time.monotonic()
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        tally = soak(args.n, args.seed, args.timeout, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="asr-fuzz-") as tmp:
            tally = soak(args.n, args.seed, args.timeout, Path(tmp))
    print(tally.table())
    inputs = counts_for(args.n)
    print(f"inputs: {args.n} ({', '.join(f'{n} {kind}' for kind, n in inputs.items())}), seed {args.seed}, "
          f"{time.monotonic() - start:.0f} s")  # fmt: skip
    for line in tally.details:
        print(line, file=sys.stderr)
    failed = tally.failures
    print(f"{failed} failures (crashes, hangs, good inputs lost)" if failed else "no crash, no hang, no input lost")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
