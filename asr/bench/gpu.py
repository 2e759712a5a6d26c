"""The GPU call: every GPU figure of the project in one process, on a lent GPU for minutes.

    bash bench/gpu.sh                                   # on the GPU: python -m asr.bench.gpu --out $OUT
    python -m asr.bench.gpu --dry-run --out /tmp/gpu    # the same rows on a CPU, tiny (tests/test_gpu_bench.py)

Cases, for both LibriSpeech recipes (:mod:`asr.bench.gpu_cases`): the matmul peak; the NaN
check (bf16, dropout, padded batch, chunks of 1 frame with no left context, and random
chunks); training's own step timed with random chunks and at full context; a bf16-vs-fp32
overfit of one fixed batch. Each row is printed as it is done and ``OUT/gpu.json`` rewritten,
so a call cut short keeps what it measured; ``OUT/gpu.md`` holds the lines and the machine.
The JSON records torch, CUDA, cuDNN, the device, its driver and the modules loaded.

Exit status 2 when no GPU is there (or an import fails: before any case), 1 when a case
raised, failed its check or did not fit the time budget, 0 otherwise. A dry run computes
in fp32 (bf16 autocast for the NaN check and the overfit, whose subject it is) at tiny sizes.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Callable

import torch
import yaml

from asr.bench import gpu_cases as cases
from asr.bench.machine import device_name, matmul_peak, spec_bf16_tflops
from asr.config import ConfigError, RecipeConfig, recipe_from_dict

REPO = Path(__file__).resolve().parents[2]
RECIPES = ("recipes/librispeech/train_100h.yaml", "recipes/librispeech/train_960h.yaml")
# a dry run's model: each recipe's blocks (subsampling, rotary, macaron, conv, CR-CTC, chunks), tiny
DRY_RUN_MODEL = {"d_model": 32, "n_heads": 2, "n_layers": 2, "ff_dim": 64, "subsampling_channels": 16}
IMAGE_PACKAGES = ("torch", "torchaudio", "numpy", "yaml", "tqdm")  # what a GPU image has, besides the standard library
# what the torch wheel itself requires (any image with torch has them); torch loads some lazily
TORCH_REQUIRES = ("sympy", "mpmath", "triton", "networkx", "jinja2", "markupsafe", "filelock", "fsspec",
                  "typing_extensions")  # fmt: skip
NOT_IN_IMAGE = ("lightning", "lightning_fabric", "pytorch_lightning", "torchmetrics", "sentencepiece", "soundfile",
                "jiwer", "onnx", "onnxruntime")  # fmt: skip
BUDGET_SECONDS = 330  # cases not started by then are reported as not run: the call must end within 6 minutes


def librispeech_recipes(dry_run: bool) -> dict[str, RecipeConfig]:
    """Both recipes by name, their models shrunk for a dry run. Their ``trainer`` sections are
    not checked against Lightning's arguments (Lightning is not in a GPU image)."""
    recipes = {}
    for path in RECIPES:
        recipe = recipe_from_dict(yaml.safe_load((REPO / path).read_text()), check_trainer=False)
        if dry_run:
            recipe = dataclasses.replace(recipe, model=dataclasses.replace(recipe.model, **DRY_RUN_MODEL))
        recipes[Path(path).stem] = recipe
    return recipes


def driver_version() -> str | None:
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else None


def git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def environment(device: torch.device) -> dict:
    env = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "device": device_name(device), "commit": git_commit(), "command": " ".join(sys.argv),
    }  # fmt: skip
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(capability=f"{props.major}.{props.minor}", memory_gib=round(props.total_memory / 2**30, 1),
                   driver=driver_version())  # fmt: skip
    return env


def loaded_packages() -> list[str]:
    """Top-level modules loaded from outside the standard library and this project."""
    names = {name.split(".")[0] for name in list(sys.modules)}
    return sorted(n for n in names if n not in sys.stdlib_module_names and n != "asr" and not n.startswith("_"))


def plan(
    recipes: dict, device: torch.device, sizes: cases.Sizes, dry_run: bool, peaks: list
) -> list[tuple[str, Callable]]:
    """(label, case) in the order they run; labels are the same for a dry run and the GPU."""
    bf16_timing = not dry_run
    out = []
    for name, recipe in recipes.items():
        for chunks in ("1/0", "random"):
            out.append((f"{name} nan chunks {chunks}", lambda r=recipe, c=chunks: cases.nan_check(r, device, c, sizes)))
        for chunked in (True, False):
            label = f"{name} step {'chunked' if chunked else 'full-context'}"
            out.append((label, lambda r=recipe, c=chunked: cases.step_timing(r, device, c, sizes, bf16_timing, peaks)))
        out.append((f"{name} convergence", lambda r=recipe: cases.convergence(r, device, sizes)))
    return out


def matmul_row(device: torch.device, sizes: cases.Sizes, peaks: list) -> dict:
    bf16 = matmul_peak(device, torch.bfloat16, sizes.matmul_size)
    torch.set_float32_matmul_precision("high")
    tf32 = matmul_peak(device, torch.float32, sizes.matmul_size)
    spec = spec_bf16_tflops(device_name(device))
    peaks[:] = [spec, bf16]
    return {"case": "matmul", "bf16_gflops": round(bf16, 1), "tf32_gflops": round(tf32, 1), "spec_bf16_tflops": spec}


def describe(label: str, row: dict) -> str:
    """One row -> the line printed (and kept in gpu.md)."""
    if "error" in row:
        return f"{label}: ERROR {row['error']}"
    case = row["case"]
    if case == "matmul":
        spec = f"; vendor dense bf16 {row['spec_bf16_tflops']:g} TFLOP/s" if row["spec_bf16_tflops"] else ""
        return f"{label}: bf16 {row['bf16_gflops'] / 1e3:.3g} TFLOP/s, fp32 (TF32) {row['tf32_gflops'] / 1e3:.3g}{spec}"
    if case == "nan":
        grads = f"no {row['nonfinite_grads']}" if row["nonfinite_grads"] else "yes"
        every = f"no {row['without_grad']}" if row["without_grad"] else "yes"
        return (f"{label}: {row['precision']}, {row['steps']} step(s), {row['padded_share']:.0%} padding: loss "
                f"{row['loss']}, gradients finite: {grads}, every parameter has one: {every}"
                f" -> {'ok' if row['ok'] else 'FAILED'}")  # fmt: skip
    if case == "step":
        mfu = "/".join("-" if m is None else f"{m:.1%}" for m in (row["mfu_spec"], row["mfu_measured"]))
        return (f"{label}: {row['precision']}, {row['utterances_per_step']} utterances, "
                f"{row['audio_seconds_per_step']} s of audio a step: {row['seconds_per_step']} s/step, "
                f"{row['audio_seconds_per_second']:,.0f} audio-s/s, {row['tflops']:.3g} TFLOP/s "
                f"({row['tflop_per_step']:.3g} a step), MFU {mfu} (vendor/measured peak), "
                f"peak memory {row['peak_memory_gib']} GiB, host syncs a step: {row['host_syncs_per_step']}")
    return (f"{label}: {row['steps']} steps on {row['utterances']} utterances: loss {row['initial_loss']} -> "
            f"bf16 {row['final_bf16']}, fp32 {row['final_32']} -> {'ok' if row['ok'] else 'FAILED'}")


def run_case(label: str, case: Callable, started: float, budget: float) -> dict:
    if time.perf_counter() - started > budget:
        return {"error": f"not run: the {budget:.0f} s budget was spent"}
    try:
        return case()
    except Exception as err:  # a case that raises is reported and the others still run
        return {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-3000:]}


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m asr.bench.gpu", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("exp/bench-gpu"), help="folder for gpu.json and gpu.md")
    p.add_argument("--dry-run", action="store_true", help="on the CPU, tiny sizes, fp32 timing")
    p.add_argument("--budget", type=float, default=BUDGET_SECONDS, help="seconds after which no case starts")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print("error: torch.cuda.is_available() is False (a CPU run is --dry-run)", file=sys.stderr)
        return 2
    device = torch.device("cpu" if args.dry_run else "cuda")
    sizes = cases.DRY_RUN if args.dry_run else cases.GPU
    try:
        recipes = librispeech_recipes(args.dry_run)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = {"environment": environment(device), "dry_run": args.dry_run, "rows": []}
    peaks: list = [None, None]  # vendor dense bf16 TFLOP/s, measured bf16 matmul GFLOP/s
    lines = []
    for label, case in [("matmul", lambda: matmul_row(device, sizes, peaks)), *plan(recipes, device, sizes,
                                                                                    args.dry_run, peaks)]:
        row = run_case(label, case, started, args.budget)
        results["rows"].append({"label": label, **row})
        lines.append(describe(label, row))
        print(lines[-1], flush=True)
        results["seconds"] = round(time.perf_counter() - started, 1)
        results["modules"] = loaded_packages()
        (args.out / "gpu.json").write_text(json.dumps(results, indent=2) + "\n")
    env = results["environment"]
    header = f"{env['device']}, torch {env['torch']} (CUDA {env['cuda']}), driver {env.get('driver')}, {env['date']}"
    (args.out / "gpu.md").write_text(f"{header}; {results['seconds']} s\n\n```\n" + "\n".join(lines) + "\n```\n")
    failed = [r["label"] for r in results["rows"] if "error" in r or r.get("ok") is False]
    print(f"{len(results['rows'])} rows in {results['seconds']} s; " + (f"FAILED: {', '.join(failed)}" if failed
                                                                       else "all ok"))  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
