"""Speed against peers and against the machine's own limit; prints tables, writes JSON.

    python -m asr.bench                          # everything (about 15 minutes on 2 CPU cores)
    python -m asr.bench --sections transcribe --limit 60
    python -m asr.bench --device cuda --sections machine,train    # on a GPU (the GPU call: bench/gpu.sh)

Sections (each case runs in a process of its own, so its peak memory is its own):
  machine     float32 and bfloat16 matrix-multiply peak (GFLOP/s): what model FLOPs are held against
  transcribe  end-to-end real-time factor and WER of the demo model and the 960 h recipe's model
              (untrained weights: speed only) at each precision, beside PocketSphinx, on the same files
  length      real-time factor against audio length (files made by joining test utterances)
  train       training throughput and model GFLOP/s of both models (synthetic batches)
  padding     padded fraction of frames, duration-bucketed batches against random ones
  layers      one encoder layer of ours against torch.nn.TransformerEncoderLayer and a
              torchaudio Conformer block of the same size, forward + backward
  decoding    greedy, beam 8 / 32 without and with the model's LM (decoding.json): WER and
              decoding RTF (python -m asr.bench.decoding)
  peers       ours (torch and ONNX) beside Whisper tiny.en and PocketSphinx on the same files
              (python -m asr.bench.peers; needs requirements-peers.txt)
  loader      the training loader's audio-seconds per second per core against the 960 h
              model's appetite (python -m asr.bench.loader)

Figures go to ``OUT/bench.json`` and ``OUT/bench.md`` (the tables of BENCHMARKS.md), the
plot to ``OUT/rtf_vs_length.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SECTIONS = ("machine", "transcribe", "length", "train", "padding", "layers", "decoding", "peers", "loader")
REPO = Path(__file__).resolve().parents[2]
DEMO = str(REPO / "recipes/demo/demo.yaml")
BIG = str(REPO / "recipes/librispeech/train_960h.yaml")


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m asr.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated, from: " + " ".join(SECTIONS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--model", default="exp/demo/model.pt", help="the trained demo model")
    p.add_argument("--list", type=Path, default=Path("exp/demo/test.list"), help="audio files, one per line")
    p.add_argument("--ref", type=Path, default=Path("exp/demo/test.ref"), help="their transcripts (Kaldi text)")
    p.add_argument("--limit", type=int, help="only the first N files of --list")
    p.add_argument("--manifest", default="data/synth/train.jsonl", help="training manifest (padding, loader)")
    p.add_argument("--lengths", default="10,60,300", help="audio lengths (s) of the length section")
    p.add_argument("--steps", type=int, default=2, help="timed training steps per case")
    p.add_argument("--compile", action="store_true", help="also time our layer under torch.compile")
    p.add_argument("--no-peer", action="store_true", help="skip PocketSphinx")
    p.add_argument("--out", type=Path, default=Path("exp/bench"))
    return p.parse_args(argv)


def run(spec: dict) -> dict:
    """One case in a fresh process -> its figures (an ``error`` entry if it failed)."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "asr.bench.worker", json.dumps(spec)], capture_output=True, text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if proc.returncode != 0:
        lines = (proc.stderr.strip() or "exit status %d" % proc.returncode).splitlines()
        figures = {"error": lines[-1]}
    else:
        figures = json.loads(proc.stdout.strip().splitlines()[-1])
    label = ", ".join(f"{k}={v}" for k, v in spec.items() if k not in ("paths", "ref", "threads", "device", "recipe"))
    failed = f": {figures['error']}" if "error" in figures else ""
    print(f"  [{time.perf_counter() - started:5.1f} s] {label}{failed}",
          file=sys.stderr, flush=True)
    return {**{k: v for k, v in spec.items() if k != "paths"}, **figures}


def join_utterances(paths: list[Path], seconds: float, out: Path, gap: float = 0.4) -> Path:
    """A file of ``seconds`` made of test utterances one after another (``gap`` s apart)."""
    import numpy as np
    import soundfile as sf

    if out.exists():
        return out
    pieces, total, i = [], 0, 0
    silence = np.zeros(int(gap * 16000), dtype=np.float32)
    while total < seconds * 16000:
        audio, _ = sf.read(str(paths[i % len(paths)]), dtype="float32")
        pieces += [audio, silence]
        total += len(audio) + len(silence)
        i += 1
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(out), np.concatenate(pieces)[: int(seconds * 16000)], 16000)
    return out


def machine_figures(args, base: dict, paths: list[Path]) -> dict:
    return run({**base, "case": "matmul"})


def transcribe_rows(args, base: dict, paths: list[Path]) -> list[dict]:
    """Both models at each precision, then PocketSphinx, on the same files."""
    files = {**base, "paths": [str(p) for p in paths], "ref": str(args.ref)}
    rows = [run({**files, "case": "transcribe", "name": "demo", "model": args.model, "precision": p})
            for p in ("32", "bf16", "int8")]
    rows += [run({**files, "case": "transcribe", "name": "960h", "recipe": BIG, "precision": p})
             for p in ("32", "bf16", "int8")]
    if not args.no_peer:
        rows.append(run({**files, "case": "pocketsphinx", "name": "PocketSphinx 5.1.1", "threads": 1}))
    return rows


def length_rows(args, base: dict, paths: list[Path]) -> list[dict]:
    """Each system on one file per length in --lengths, made by joining test utterances."""
    rows = []
    for seconds in (float(s) for s in args.lengths.split(",")):
        f = join_utterances(paths, seconds, args.out / "audio" / f"joined_{seconds:g}s.flac")
        one = {**base, "paths": [str(f)], "length_seconds": seconds}
        rows.append(run({**one, "case": "transcribe", "name": "demo", "model": args.model, "precision": "32"}))
        rows.append(run({**one, "case": "transcribe", "name": "960h", "recipe": BIG, "precision": "32"}))
        if not args.no_peer:
            rows.append(run({**one, "case": "pocketsphinx", "name": "PocketSphinx 5.1.1", "threads": 1}))
    return rows


def train_rows(args, base: dict, paths: list[Path]) -> list[dict]:
    train = {**base, "case": "train", "steps": args.steps}
    rows = [run({**train, "name": "demo", "recipe": DEMO, "precision": "bf16"})]
    rows += [run({**train, "name": "960h", "recipe": BIG, "precision": p, "batch_seconds": 100})
             for p in ("bf16", "32")]
    if args.device == "cpu":  # the recipe's 1200 s batch as 12 micro-batches: it needs ~35 GiB at once
        rows.append(run({**train, "name": "960h", "recipe": BIG, "precision": "bf16", "micro_seconds": 100}))
    else:
        rows.append(run({**train, "name": "960h", "recipe": BIG, "precision": "bf16"}))
    return rows


def padding_rows(args, base: dict, paths: list[Path]) -> list[dict]:
    return [run({**base, "case": "padding", "name": "demo", "recipe": DEMO, "manifest": args.manifest})]


def encoder_frames(recipe_path: Path, seconds: float) -> int:
    """Encoder frames of ``seconds`` of audio under the recipe's front end and subsampling."""
    import torch

    from asr.bench.flops import feature_frames
    from asr.config import load_recipe
    from asr.model.subsampling import subsampling_class

    recipe = load_recipe(recipe_path)
    feats = feature_frames(round(seconds * recipe.features.sample_rate), recipe.features)
    return int(subsampling_class(recipe.model.subsampling).output_lengths(torch.tensor([feats]))[0])


def layer_rows(args, base: dict, paths: list[Path]) -> list[dict]:
    """Our layer, torch's and a Conformer block at both sizes and precisions (and ours compiled):
    12.3 s (LibriSpeech's mean) at the 960 h size, 5 s at the demo's, in each recipe's frames."""
    rows = []
    for name, recipe, seconds in (("960h", BIG, 12.3), ("demo", DEMO, 5.0)):
        frames = encoder_frames(recipe, seconds)
        for precision in ("bf16", "32"):
            for kind in ("ours", "torch", "conformer"):
                rows.append(run({**base, "case": "layer", "name": name, "recipe": recipe, "kind": kind,
                                 "precision": precision, "frames": frames}))
            if args.compile:
                rows.append(run({**base, "case": "layer", "name": name, "recipe": recipe, "kind": "ours",
                                 "precision": precision, "frames": frames, "compile": True}))
    return rows


def module_output(module: str, arguments: list[str]) -> dict:
    """Run ``python -m asr.bench.<module>`` -> {"output": what it printed} (or an ``error``)."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", f"asr.bench.{module}", *arguments], capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})  # fmt: skip
    print(f"  [{time.perf_counter() - started:5.1f} s] {module}", file=sys.stderr, flush=True)
    if proc.returncode != 0:
        lines = (proc.stderr.strip() or f"exit status {proc.returncode}").splitlines()
        return {"error": lines[-1], "output": proc.stdout}
    return {"output": proc.stdout}


def decoding_rows(args, base: dict, paths: list[Path]) -> dict:
    extra = ["--limit", str(args.limit)] if args.limit else []
    return module_output("decoding", ["--model", args.model, "--list", str(args.list), "--ref", str(args.ref),
                                      "--threads", str(args.threads), *extra])  # fmt: skip


def peer_rows(args, base: dict, paths: list[Path]) -> dict:
    extra = ["--limit", str(args.limit)] if args.limit else []
    return module_output("peers", ["--model", args.model, "--set", f"test:{args.list}:{args.ref}",
                                   "--threads", str(args.threads), "--out", str(args.out), *extra])  # fmt: skip


def loader_rows(args, base: dict, paths: list[Path]) -> dict:
    return module_output("loader", ["--recipe", BIG, "--manifest", args.manifest, "--device", args.device])


# section -> its figures, in the order they are run and reported
SECTION_FIGURES = {
    "machine": machine_figures,
    "transcribe": transcribe_rows,
    "length": length_rows,
    "train": train_rows,
    "padding": padding_rows,
    "layers": layer_rows,
    "decoding": decoding_rows,
    "peers": peer_rows,
    "loader": loader_rows,
}


def read_list(args) -> list[Path]:
    """The --list files (the first --limit of them); OSError if it cannot be read."""
    paths = [Path(line.strip()) for line in args.list.read_text().splitlines() if line.strip()]
    return paths[: args.limit] if args.limit else paths


def main(argv=None) -> int:
    args = parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        print(f"error: unknown section {unknown[0]!r} (choose from {', '.join(SECTIONS)})", file=sys.stderr)
        return 2
    paths = []
    if {"transcribe", "length", "decoding", "peers"} & set(sections):
        try:
            paths = read_list(args)
        except OSError as err:
            print(f"error: cannot read --list {args.list}: {err.strerror} (run bash scripts/demo.sh first)",
                  file=sys.stderr)
            return 2
    results: dict = {"command": "python -m asr.bench " + " ".join(argv if argv is not None else sys.argv[1:])}
    print(f"benchmarks: {', '.join(sections)}; {args.threads} threads on {args.device}", file=sys.stderr)
    base = {"threads": args.threads, "device": args.device}
    for section, figures in SECTION_FIGURES.items():
        if section in sections:
            results[section] = figures(args, base, paths)
    from asr.bench.report import write_report

    write_report(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
