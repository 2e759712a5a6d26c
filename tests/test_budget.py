"""A time budget that ends training also ends the learning-rate schedule, and training
says where it is while it runs."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest

from asr.cli.train import main as train_main
from asr.config import OptimConfig
from asr.training.module import Schedule
from corpora import write_noise_corpus

pytestmark = pytest.mark.usefixtures("one_thread")


def test_schedule_follows_the_larger_share_of_steps_and_time():
    cfg = OptimConfig(lr=1.0, warmup_steps=10, final_lr_ratio=0.02)
    schedule = Schedule(cfg, total_steps=1010)
    assert schedule.factor(0) == pytest.approx(0.1)
    assert schedule.factor(10) == pytest.approx(1.0)
    assert schedule.factor(510) == pytest.approx(0.51)  # half way by steps: cosine at its middle
    schedule.time_progress = 0.625
    assert schedule.factor(20) == pytest.approx(0.51)  # few steps, but half the budget after warm-up spent
    schedule.time_progress = 0.125
    assert schedule.factor(2) == pytest.approx(0.5)  # a slow machine: warm-up follows the time budget too
    schedule.time_progress = 1.0
    assert schedule.factor(3) == pytest.approx(0.02)  # budget spent: annealed to the floor, even mid warm-up
    schedule.time_progress = 0.1
    assert schedule.factor(1010) == pytest.approx(0.02)  # steps done first: annealed too


@pytest.fixture(scope="module")
def noise_corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("budget") / "corpus"
    write_noise_corpus(root, "train", 24, seed=1)
    write_noise_corpus(root, "dev", 3, seed=2)
    return root


def test_time_budget_anneals_the_rate_and_exports_the_final_weights(noise_corpus, tmp_path, capsys):
    """max_epochs far beyond what 12 s allow: training stops on time, with the learning rate
    at its floor (not cut off high), after printing progress lines."""
    exp = tmp_path / "exp"
    args = [
        "--config", "recipes/demo/demo.yaml", f"exp_dir={exp}", "corpus.kind=librispeech",
        f"corpus.root={noise_corpus}", "corpus.train_splits=[train]", "corpus.dev_splits=[dev]",
        "corpus.test_splits=[dev]", "tokenizer.kind=char", "model.d_model=16", "model.n_heads=2", "model.n_layers=1",
        "model.ff_dim=32", "model.subsampling_channels=4", "model.subsampling=conv4", "model.conv_kernel=0",
        "model.chunk_train_prob=0", "data.num_workers=0", "data.max_batch_seconds=8", "optim.warmup_steps=2", "optim.final_lr_ratio=0.02",
        "trainer.max_epochs=10000", "trainer.max_time=00:00:00:12", "trainer.precision=32-true",
        "trainer.accelerator=cpu", "trainer.devices=1", "trainer.log_every_n_steps=1",
        "trainer.num_sanity_val_steps=0", "trainer.check_val_every_n_epoch=1000",
    ]  # fmt: skip
    import asr.training.callbacks as callbacks

    every = callbacks.Progress.__init__.__defaults__
    callbacks.Progress.__init__.__defaults__ = (2.0,)  # a line every 2 s instead of every minute
    try:
        started = time.monotonic()
        assert train_main(args) == 0
        took = time.monotonic() - started
    finally:
        callbacks.Progress.__init__.__defaults__ = every
    out = capsys.readouterr().out
    assert took < 60
    progress = [line for line in out.splitlines() if line.startswith("[demo] epoch")]
    assert len(progress) >= 2, out
    assert "remaining" in progress[0] and "elapsed" in progress[0]
    assert "final weights at step" in out  # no validation ran since the start: the final ones were scored
    lrs = [float(row["lr-AdamW/pg1"]) for row in csv.DictReader(open(next(exp.glob("logs/version_*/metrics.csv"))))
           if row.get("lr-AdamW/pg1")]  # fmt: skip
    peak = 2.5e-3  # the demo recipe's optim.lr
    assert max(lrs) == pytest.approx(peak, rel=0.05)
    assert lrs[-1] < 0.1 * peak, lrs[-10:]  # annealed by the end of the budget
    assert (exp / "model.pt").exists()
