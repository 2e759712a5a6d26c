"""One benchmark case in a process of its own, so that its peak memory is its own.

    python -m asr.bench.worker '{"case": "matmul", "threads": 2}'

prints the case's figures as one JSON line; :mod:`asr.bench.cli` starts one per case.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch


def _recognizer(spec: dict):
    """The demo checkpoint, or a recipe's model with untrained weights (speed only)."""
    from asr.inference.recognizer import Recognizer, load_model

    if "model" in spec:
        return load_model(spec["model"], spec.get("device", "cpu"), spec.get("precision", "32"))
    from asr.config import load_recipe
    from asr.corpus.sentences import stdlib_sentences
    from asr.model import CTCModel
    from asr.text.tokenizer import Tokenizer

    recipe = load_recipe(spec["recipe"])
    tokenizer = Tokenizer.train(stdlib_sentences(), recipe.tokenizer.vocab_size, recipe.tokenizer.kind)
    torch.manual_seed(0)
    model = CTCModel(recipe.model, recipe.features, recipe.specaug, tokenizer.vocab_size)
    return Recognizer(recipe, tokenizer, model, spec.get("device", "cpu"), spec.get("precision", "32"))


def run_case(spec: dict) -> dict:
    torch.set_num_threads(spec.get("threads", 2))
    device = torch.device(spec.get("device", "cpu"))
    case = spec["case"]
    if case == "matmul":
        from asr.bench.machine import device_name, matmul_peak

        return {
            "device": device_name(device),
            "fp32_gflops": round(matmul_peak(device, torch.float32), 1),
            "bf16_gflops": round(matmul_peak(device, torch.bfloat16), 1),
        }
    if case in ("transcribe", "pocketsphinx"):
        from asr.bench import transcribe
        from asr.text.wer import read_kaldi_text

        paths = [Path(p) for p in spec["paths"]]
        # an untrained model (a recipe, not a checkpoint) is timed only: its text is noise
        refs = read_kaldi_text(spec["ref"]) if spec.get("ref") and "recipe" not in spec else None
        if case == "pocketsphinx":
            return transcribe.pocketsphinx(paths, refs)
        return transcribe.ours(_recognizer(spec), paths, refs)
    if case == "train":
        from asr.bench.train import train_throughput
        from asr.config import load_recipe

        recipe = load_recipe(spec["recipe"], spec.get("overrides", []))
        return train_throughput(
            recipe,
            recipe.tokenizer.vocab_size + 1,  # + blank
            device,
            spec.get("precision", "bf16"),
            spec.get("batch_seconds"),
            spec.get("micro_seconds"),
            warmup=spec.get("warmup", 1),
            steps=spec.get("steps", 2),
        )
    if case == "layer":
        from asr.bench.layers import layer_speed
        from asr.config import load_recipe

        recipe = load_recipe(spec["recipe"])
        return layer_speed(
            spec["kind"], recipe.model, device, spec.get("batch", 8), spec.get("frames", 306),
            spec.get("precision", "bf16"), compile=spec.get("compile", False),
        )
    if case == "padding":
        from asr.bench.padding import padding_figures
        from asr.config import load_recipe
        from asr.data.manifest import read_manifest

        recipe = load_recipe(spec["recipe"])
        durations = [e.duration for e in read_manifest(spec["manifest"]) if e.duration <= recipe.data.max_duration]
        return padding_figures(durations, recipe.data.max_batch_seconds, recipe.data.buckets, recipe.seed)
    raise ValueError(f"unknown benchmark case {case!r}")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    print(json.dumps(run_case(json.loads(argv[0]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
