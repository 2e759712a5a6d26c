"""A training run killed with SIGKILL in the middle of an epoch resumes from its last
checkpoint and ends where an uninterrupted run with the same seed ends."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asr.inference.checkpoint import read_checkpoint

ROOT = Path(__file__).parents[1]
DEMO = ROOT / "recipes" / "demo" / "demo.yaml"
SAVE_EVERY = 2  # --save-every-steps
STALL_AT = 3  # the killed run trains step 3 after the checkpoint of step 2, then waits to be killed
pytestmark = pytest.mark.usefixtures("one_thread")  # as the killed run (OMP_NUM_THREADS=1)

# The run to be killed: train.py's main with one more callback, which marks (and waits)
# once the step after the first mid-epoch checkpoint is done. Nothing else differs.
CHILD = """
import sys, time
from pathlib import Path
import lightning as L
import asr.cli.train as train
import asr.training.run as run

class Stall(L.Callback):
    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if trainer.global_step == {stall}:
            Path(sys.argv[1]).touch()
            time.sleep(3600)

build = run.build_trainer  # what train.main's fit builds its trainer with
run.build_trainer = lambda recipe, callbacks=(), *args: build(recipe, [*callbacks, Stall()], *args)
sys.exit(train.main(sys.argv[2:]))
""".format(stall=STALL_AT)


def training_args(corpus, exp: Path) -> list[str]:
    """A tiny deterministic run: no dropout, masks, augmentation or random chunks, fp32, 4 epochs
    (2 no longer moved the loss measurably on the multi-engine espeak voices)."""
    return [
        "--config", str(DEMO), "--save-every-steps", str(SAVE_EVERY), f"exp_dir={exp}", "corpus.kind=espeak",
        "corpus.eval_sets=[]", "augment.room_prob=0", "augment.noise_prob=0", "augment.telephone_prob=0",
        "augment.eq_prob=0", "augment.gain_prob=0", "augment.clip_prob=0",
        f"corpus.root={corpus.root}", f"corpus.train_sentences={corpus.train_sentences}",
        f"corpus.dev_sentences={corpus.dev_sentences}", f"corpus.test_sentences={corpus.test_sentences}",
        f"corpus.train_voices={corpus.train_voices}", f"corpus.seed={corpus.seed}",
        "tokenizer.kind=char", "model.d_model=32", "model.n_heads=2", "model.n_layers=1", "model.ff_dim=64",
        "model.subsampling_channels=8", "model.subsampling=conv4", "model.dropout=0.0", "model.conv_kernel=0", "model.chunk_train_prob=0",
        "specaug.freq_masks=0", "specaug.time_masks=0", "data.num_workers=0", "data.max_batch_seconds=8",
        "data.buckets=1", "optim.lr=0.003", "optim.warmup_steps=3", "trainer.max_epochs=4",
        "trainer.max_time=null", "trainer.precision=32-true", "trainer.accelerator=cpu", "trainer.devices=1",
        "trainer.log_every_n_steps=1", "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
    ]  # fmt: skip


def metrics(exp: Path, version: int) -> list[dict[str, float]]:
    with (exp / "logs" / f"version_{version}" / "metrics.csv").open() as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def final(rows: list[dict[str, float]], column: str) -> float:
    return [row[column] for row in rows if column in row][-1]


def test_killed_mid_epoch_resumes_and_finishes_like_an_uninterrupted_run(tiny_corpus, tmp_path, capsys):
    from asr.cli.train import main as train

    killed_exp, whole_exp = tmp_path / "killed", tmp_path / "whole"
    marker, log = tmp_path / "stalled", tmp_path / "killed.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    with log.open("w") as out:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(marker), *training_args(tiny_corpus, killed_exp)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        assert train(training_args(tiny_corpus, whole_exp)) == 0  # meanwhile, the uninterrupted run
        deadline = time.monotonic() + 600
        while not marker.exists():
            assert child.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the run to be killed never reached its step"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL

    last = killed_exp / "checkpoints" / "last.ckpt"
    at_kill = read_checkpoint(last)
    whole_last = read_checkpoint(whole_exp / "checkpoints" / "last.ckpt")
    steps_per_epoch = whole_last["global_step"] // 4
    assert at_kill["epoch"] == 0 and at_kill["global_step"] == SAVE_EVERY < steps_per_epoch - 1  # mid-epoch
    assert at_kill["ASRDataModule"]["train_sampler"]["consumed"] == SAVE_EVERY  # batches to skip on resume
    capsys.readouterr()

    assert train([*training_args(tiny_corpus, killed_exp), "--resume", str(last)]) == 0
    assert f"resuming from {last}: epoch 0, step {SAVE_EVERY}" in capsys.readouterr().out
    resumed, whole = metrics(killed_exp, 1), metrics(whole_exp, 0)
    assert min(row["step"] for row in resumed if "train_loss" in row) >= SAVE_EVERY  # no step trained twice
    assert read_checkpoint(last)["global_step"] == whole_last["global_step"]  # and none missed

    resumed_loss, whole_loss = final(resumed, "val_loss"), final(whole, "val_loss")
    first_loss = [row["val_loss"] for row in whole if "val_loss" in row][0]
    assert abs(first_loss - whole_loss) > 0.01 * whole_loss  # training moved the loss, so equality means something
    assert abs(resumed_loss - whole_loss) <= 1e-3 * whole_loss, (resumed_loss, whole_loss)
    print(f"final val_loss: uninterrupted {whole_loss:.6f}, killed and resumed {resumed_loss:.6f}")
