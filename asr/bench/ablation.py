"""Encoder options at an equal training budget: one training per variant, the same recipe,
data and wall-clock minutes, then a table and a picture.

    python -m asr.bench.ablation --recipe recipes/demo/demo.yaml --minutes 12 \\
        --out recipes/demo/ablation [--variants base,rope,...] [--cores 1]

Each variant is a list of recipe overrides (:data:`VARIANTS`) trained by ``train.py
--curve`` in its own process, pinned to ``--cores`` cores with as many threads, so that
variants see the same machine. A variant already trained under ``--out`` is not trained
again (delete its folder to redo it). Written under ``--out``: ``runs/<variant>/``
(the experiment folders), ``results.json``, ``ablation.md`` (the table) and
``ablation.png`` (WER of each test set against training minutes, one line per variant).

Columns: parameters, forward FLOPs per second of audio (:mod:`asr.bench.flops`), training
audio-seconds per wall second, inference real-time factor on the first test set (the
exported model, ``--cores`` threads), and greedy WER on each test set at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from asr.audio.atomic import atomic_write_text
from asr.bench.corpus_parts import mix

REPO = Path(__file__).resolve().parents[2]
# The block the options are measured against (the demo's until this ablation chose another):
# 4x subsampling, absolute positions, a causal convolution module, plain CTC.
BASE = ("model.subsampling=conv4", "model.max_chunk_frames=25", "model.pos_enc=abs", "model.macaron=false",
        "model.conv_causal=true", "model.inter_ctc_layers=[]", "model.inter_ctc_weight=0", "model.cr_ctc_weight=0")  # fmt: skip
DW8 = ("model.subsampling=dw8", "model.max_chunk_frames=13")  # 80 ms frames: chunks of the same ~1 s
VARIANTS: dict[str, tuple[str, ...]] = {  # each encoder option added alone to the base block, then the pick
    "base": BASE,
    "rope": (*BASE, "model.pos_enc=rope"),
    "macaron": (*BASE, "model.macaron=true"),
    "conv_centred": (*BASE, "model.conv_causal=false"),
    "dw8": (*BASE, *DW8),
    "interctc": (*BASE, "model.inter_ctc_layers=[3]", "model.inter_ctc_weight=0.3"),
    "crctc": (*BASE, "model.cr_ctc_weight=0.2"),
    "dw8_centred": (*BASE, *DW8, "model.conv_causal=false"),  # the two that helped, together: the demo's block
}
# What each part of the demo's corpus and training adds, on the demo's own block and
# corpus as they were measured (CORPUS_BASE: the loader applies the acoustic transforms, SpecAugment
# on): each engine and the formant warps left out (training on the rest: fewer utterances, the same
# minutes), Piper's few utterances four times over, the acoustic transforms and SpecAugment off, and
# the two changes the demo then took (augdev_no_specaug is demo.yaml since). The mixes read the parts
# written by `python -m asr.bench.corpus_parts` (asr.bench.corpus_parts.PARTS_ROOT).
_PARTS = tuple(f"{e}_{k}" for e in ("espeak", "hibari", "pico", "piper") for k in ("plain", "warp"))
CORPUS_BASE = ("data.augment_device=false", "specaug.freq_masks=2", "specaug.time_masks=2")
_NO_SPECAUG = ("specaug.freq_masks=0", "specaug.time_masks=0")
CORPUS_VARIANTS: dict[str, tuple[str, ...]] = {
    "demo": CORPUS_BASE,
    "no_espeak": (*CORPUS_BASE, *mix({"espeak": 0}, _PARTS)),
    "no_hibari": (*CORPUS_BASE, *mix({"hibari": 0}, _PARTS)),
    "no_pico": (*CORPUS_BASE, *mix({"pico": 0}, _PARTS)),
    "piper_x4": (*CORPUS_BASE, *mix({"piper": 4}, _PARTS)),
    "no_warp": (*CORPUS_BASE, *mix({"warp": 0}, _PARTS)),
    "no_acoustics": (*CORPUS_BASE, *(f"augment.{t}_prob=0" for t in ("room", "noise", "telephone", "eq", "gain", "clip"))),
    "no_specaug": (*CORPUS_BASE, *_NO_SPECAUG),
    "augdev": (*CORPUS_BASE, "data.augment_device=true"),  # the same transforms, batched in the training step
    "augdev_no_specaug": (*CORPUS_BASE, "data.augment_device=true", *_NO_SPECAUG),
    # personas (asr.corpus.synth.personas) of hibari's and Pico's women's voices, men among them: the
    # training split re-planned with them (`python -m asr.cli.prepare --config recipes/demo/demo.yaml
    # corpus.root=data/synth-personas "corpus.personas=[hibari,pico]"`); dev and test stay the demo's
    "personas": (*CORPUS_BASE, "data.augment_device=true", *_NO_SPECAUG, "corpus.train_splits=[]",
                 "corpus.mix=[data/synth-personas/train:1]"),  # fmt: skip
}
# Starting from Whisper tiny.en's encoder (model.init, asr.training.pretrained) on the demo's corpus:
# recipes/demo/whisper.yaml (its 4 layers frozen under 2 new ones, chunk training and dropout off,
# a short warm-up) at two learning rates, frozen under the head alone, or the top 2 fine-tuned at a
# lower rate. A variant's "recipe=FILE" (beside --recipe) trains that recipe instead of --recipe.
# WHISPER: whisper.yaml as this table was measured (2026-12-02: 100 s batches, 50 warm-up steps,
# no frozen-front cache; it takes 50 s batches, 100 warm-up steps and the cache since 2026-12-07,
# recipes/demo/README.md).
WHISPER = ("recipe=whisper.yaml", "data.max_batch_seconds=100", "optim.warmup_steps=50", "data.cache_frozen_gb=0")
PRETRAINED_VARIANTS: dict[str, tuple[str, ...]] = {
    "scratch": (),  # demo.yaml as it is
    "whisper_frozen_new2": (*WHISPER, "optim.lr=0.0015"),
    "whisper_frozen_new2_lr3": WHISPER,
    "whisper_head": (*WHISPER, "model.n_layers=4", "optim.lr=0.0025"),
    "whisper_tune2": (*WHISPER, "model.n_layers=4", "model.freeze_layers=2", "optim.lr=0.001"),
}
GROUPS = {"encoder": VARIANTS, "corpus": CORPUS_VARIANTS, "pretrained": PRETRAINED_VARIANTS}


def _latest_metrics(exp_dir: Path) -> Path:
    logs = sorted((exp_dir / "logs").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1]))
    if not logs:
        raise FileNotFoundError(f"{exp_dir}: no logs/version_*/metrics.csv")
    return logs[-1]


def variant_recipe(recipe: Path, overrides: tuple[str, ...]) -> tuple[Path, tuple[str, ...]]:
    """The recipe a variant trains and its overrides: a ``recipe=FILE`` entry (a file beside
    ``recipe``) replaces ``recipe``."""
    files = [o.removeprefix("recipe=") for o in overrides if o.startswith("recipe=")]
    rest = tuple(o for o in overrides if not o.startswith("recipe="))
    return (recipe.parent / files[-1] if files else recipe), rest


def train_variant(recipe: Path, exp_dir: Path, overrides: tuple[str, ...], minutes: float, cores: list[int]) -> None:
    """Train one variant in its own process (its log: ``exp_dir/train.log``)."""
    recipe, overrides = variant_recipe(recipe, overrides)
    exp_dir.mkdir(parents=True, exist_ok=True)
    seconds = int(minutes * 60)
    budget = f"00:{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    command = [sys.executable, str(REPO / "train.py"), "--config", str(recipe), "--curve", "--threads", str(len(cores)),
               f"exp_dir={exp_dir}", f"trainer.max_time={budget}", *overrides]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    with open(exp_dir / "train.log", "w") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                              preexec_fn=lambda: os.sched_setaffinity(0, set(cores)))  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"variant in {exp_dir} failed (exit {done.returncode}); see {exp_dir / 'train.log'}")


def curves(metrics: Path) -> dict[str, list[tuple[float, float]]]:
    """{test set: [(minutes, WER %), ...]} from a ``--curve`` run's log."""
    from asr.plot.curves import read_metrics

    series = read_metrics(metrics)
    minutes = dict(series.get("minutes", []))
    return {
        key.removeprefix("test_wer_"): [(minutes[s], 100 * v) for s, v in values if s in minutes]
        for key, values in series.items()
        if key.startswith("test_wer_")
    }


def measure(exp_dir: Path, threads: int) -> dict:
    """Size, FLOPs, training speed, inference RTF and final WERs of a trained variant."""
    import torch

    from asr.bench.flops import feature_frames, forward_flops
    from asr.inference.recognizer import load_model
    from asr.plot.curves import read_metrics

    torch.set_num_threads(threads)
    recognizer = load_model(exp_dir / "model.pt")
    recipe = recognizer.recipe
    params = sum(p.numel() for p in recognizer.model.parameters())
    frames_10s = feature_frames(10 * recipe.features.sample_rate, recipe.features)
    flops = forward_flops(recipe.model, recipe.features, recognizer.tokenizer.vocab_size, 1, frames_10s)["total"] / 10
    series = read_metrics(_latest_metrics(exp_dir))
    per_set = curves(_latest_metrics(exp_dir))
    final = {name: points[-1][1] for name, points in per_set.items() if points}
    first = "test" if "test" in per_set else sorted(per_set)[0]  # the RTF is measured on this set
    audio = [line.strip() for line in (exp_dir / f"{first}.list").read_text().splitlines() if line.strip()]
    started = time.perf_counter()
    results = list(recognizer.transcribe_files(audio))
    seconds = sum(r.transcript.duration for r in results if r.transcript is not None)
    rtf = (time.perf_counter() - started) / max(seconds, 1e-9)
    return {
        "parameters": params,
        "gflops_per_audio_s": flops / 1e9,
        "train_audio_s_per_s": _training_speed(exp_dir, series),
        "inference_rtf": rtf,
        "final_wer": final,
        "curves": per_set,
        "steps": int(max(s for s, _ in series.get("train_loss", [(0, 0)]))),
    }


def _training_speed(exp_dir: Path, series: dict) -> float:
    """Audio-seconds trained per wall second, from the train.log's data line and progress lines."""
    log = (exp_dir / "train.log").read_text(errors="replace").splitlines()
    hours = next(float(line.split("training on ")[1].split()[0]) for line in log if "training on " in line)
    epochs = [s for s, _ in series.get("val_wer", [])]  # steps at the end of each epoch's validation
    steps_per_epoch = epochs[0] + 1 if epochs else None
    steps = max(s for s, _ in series.get("train_loss", [(1, 0)]))
    minutes = max(m for _, m in series.get("minutes", [(0, 1.0)]))
    if not steps_per_epoch or minutes <= 0:
        return float("nan")
    return steps * hours * 3600 / steps_per_epoch / (minutes * 60)


def table(results: dict[str, dict]) -> str:
    sets = sorted({name for r in results.values() for name in r["final_wer"]}, key=lambda n: (n != "test", n))
    head = ["variant", "params (M)", "GFLOPs / audio s", "train audio s / s", "inference RTF", "steps"]
    lines = ["| " + " | ".join(head + [f"WER {s} (%)" for s in sets]) + " |", "|" + "---|" * (len(head) + len(sets))]
    for name, r in results.items():
        cells = [name, f"{r['parameters'] / 1e6:.2f}", f"{r['gflops_per_audio_s']:.3f}",
                 f"{r['train_audio_s_per_s']:.0f}", f"{r['inference_rtf']:.4f}", str(r["steps"])]  # fmt: skip
        cells += [f"{r['final_wer'][s]:.2f}" if s in r["final_wer"] else "" for s in sets]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, default=Path("recipes/demo/demo.yaml"))
    parser.add_argument("--minutes", type=float, default=12.0, help="training wall-clock minutes per variant")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--group", choices=GROUPS, default="encoder", help="which variants --variants defaults to")
    parser.add_argument("--variants", default=None, help="comma-separated (default: all of --group; '' with --set: none), of: "
                        + ", ".join(v for group in GROUPS.values() for v in group))  # fmt: skip
    parser.add_argument("--cores", default="1", help="comma-separated CPU numbers each training is pinned to")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=OVERRIDE[;OVERRIDE]",
                        help="an extra variant made of recipe overrides, separated by ';'")  # fmt: skip
    args = parser.parse_args(argv)
    variants = {**VARIANTS, **CORPUS_VARIANTS, **PRETRAINED_VARIANTS}
    for item in args.set:
        name, _, overrides = item.partition("=")
        variants[name] = tuple(o for o in overrides.split(";") if o)
    named = list(GROUPS[args.group]) if args.variants is None else [v for v in args.variants.split(",") if v]
    chosen = named + [s.partition("=")[0] for s in args.set]
    unknown = [v for v in chosen if v not in variants]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; known: {', '.join(variants)}")
    cores = [int(c) for c in args.cores.split(",")]
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for name in dict.fromkeys(chosen):
        exp_dir = args.out / "runs" / name
        if not (exp_dir / "model.pt").exists():
            print(f"== {name}: training {args.minutes:g} min on cores {args.cores} ({' '.join(variants[name]) or 'recipe as is'})",
                  flush=True)  # fmt: skip
            train_variant(args.recipe, exp_dir, variants[name], args.minutes, cores)
        if name not in results:
            measured = {"overrides": list(variants[name]), **measure(exp_dir, len(cores))}
            # read again before writing: another lane (--cores) may share --out and have added its variants
            results = json.loads(results_path.read_text()) if results_path.exists() else {}
            results[name] = measured
            atomic_write_text(results_path, json.dumps(results, indent=1))
        print(f"== {name}: " + ", ".join(f"{s} {w:.2f}%" for s, w in results[name]["final_wer"].items()), flush=True)
    results = json.loads(results_path.read_text())  # with what other lanes have measured meanwhile
    (args.out / "ablation.md").write_text(table(results))
    from asr.plot.curves import plot_variants

    plot_variants({name: r["curves"] for name, r in results.items()}, args.out / "ablation.png",
                  f"{args.recipe.name}: {args.minutes:g} min of training per variant")  # fmt: skip
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
