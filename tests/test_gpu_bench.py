"""The GPU call's dry run (``python -m asr.bench.gpu --dry-run``): on a CPU, in one process, it
prints every row the GPU run prints, writes the JSON with the machine's description, and
loads nothing a GPU image lacks (the image has torch, torchaudio, numpy, PyYAML and tqdm)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from asr.bench import gpu, gpu_cases

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "asr.bench.gpu", "--dry-run", "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    return done, out


def image_modules() -> set[str]:
    """Top-level modules that importing the image's own packages loads (their optional
    dependencies included, as found here)."""
    code = ("import torch, torch.utils.data, torchaudio, numpy, yaml, tqdm; from asr.bench.gpu import loaded_packages; "
            "print(' '.join(loaded_packages()))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_the_dry_run_prints_every_row_of_the_gpu_run(dry_run):
    done, out = dry_run
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    recipes = gpu.librispeech_recipes(dry_run=False)
    expected = ["matmul"] + [label for label, _ in gpu.plan(recipes, torch.device("cuda"), gpu_cases.GPU, False, [])]
    printed = [line.split(": ", 1)[0] for line in done.stdout.splitlines() if ": " in line]
    assert printed == expected  # the GPU's rows, in its order
    assert "ERROR" not in done.stdout and "FAILED" not in done.stdout
    assert (out / "gpu.md").read_text().count("\n") >= len(expected)


def test_the_dry_run_json_describes_the_machine_and_each_figure(dry_run):
    done, out = dry_run
    results = json.loads((out / "gpu.json").read_text())
    env = results["environment"]
    assert env["torch"] == torch.__version__ and "cuda" in env and env["device"] and env["date"]
    rows = {row["label"]: row for row in results["rows"]}
    for name in ("train_100h", "train_960h"):
        for mode in ("chunked", "full-context"):
            row = rows[f"{name} step {mode}"]
            assert row["audio_seconds_per_second"] > 0 and row["tflop_per_step"] > 0 and row["peak_memory_gib"] > 0
            assert row["utterances_per_step"] >= 1 and row["steps"] == gpu_cases.DRY_RUN.timed_steps
        assert rows[f"{name} nan chunks 1/0"]["ok"] and rows[f"{name} convergence"]["ok"]


def test_the_dry_run_loads_only_what_a_gpu_image_has(dry_run):
    _, out = dry_run
    loaded = set(json.loads((out / "gpu.json").read_text())["modules"])
    assert not loaded & set(gpu.NOT_IN_IMAGE)
    allowed = image_modules() | set(gpu.IMAGE_PACKAGES) | set(gpu.TORCH_REQUIRES)
    assert loaded <= allowed, loaded - allowed


def test_without_a_gpu_the_call_stops_before_any_case(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu.main(["--out", str(tmp_path)]) == 2
    assert "torch.cuda.is_available() is False" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_a_case_that_raises_is_reported_and_makes_the_call_fail(tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(gpu_cases, "convergence", broken)
    monkeypatch.setattr(gpu_cases, "step_timing", lambda *a, **k: {"error": "skipped here"})  # keep the test short
    monkeypatch.setattr(gpu_cases, "nan_check", lambda *a, **k: {"error": "skipped here"})
    assert gpu.main(["--dry-run", "--out", str(tmp_path)]) == 1
    printed = capsys.readouterr().out
    assert "train_100h convergence: ERROR RuntimeError: kernel exploded" in printed and "FAILED:" in printed
    rows = json.loads((tmp_path / "gpu.json").read_text())["rows"]
    assert "kernel exploded" in next(r for r in rows if r["label"] == "train_960h convergence")["traceback"]


def test_the_host_profile_counts_each_part_of_a_training_step():
    from asr.bench.host_syncs import PARTS, profile_step

    recipe = gpu.librispeech_recipes(dry_run=True)["train_960h"]
    parts = profile_step(recipe, steps=1, batch_seconds=30.0)  # ~100 utterances of 0.3 s
    assert list(parts) == list(PARTS)
    assert all(parts[name]["ms"] > 0 for name in PARTS)
    # the model's own work dominates the operator count; the draws are Python, not operators
    assert parts["backward"]["ops"] > parts["update"]["ops"] and parts["loss"]["ops"] > 100
    assert parts["draws"]["ops"] < 5
