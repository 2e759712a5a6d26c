"""Distributed data parallel training on CPU: two processes (gloo) started by torchrun, as
on a GPU node. Each rank records the utterances it trained on and its final weights.

Run by pytest, this file launches itself under ``torch.distributed.run``; the
``__main__`` block is the per-rank worker. A second run injects faults on one rank only
(``FAULT_ENV``): a non-finite loss on rank 1 at one step, a training batch of rank 0 whose
files are all unreadable, and a validation batch of rank 0 with nothing readable. Before
skips were decided by all ranks together, the first of these alone ended the run
(Lightning refuses a ``None`` step under DDP, and the other rank lost its peer).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from corpora import write_noise_corpus

ROOT = Path(__file__).parents[1]
TRAIN_UTTERANCES = 20
FAULT_ENV = "ASR_TEST_DDP_FAULT"  # JSON {"nan": [rank, global step]} for the worker
NAN_RANK, NAN_STEP = 1, 1  # rank 1 alone sees a non-finite loss at its second step
UNREADABLE_STEP = 3  # rank 0's batch at this step of epoch 0 has only unreadable files
LAUNCH_TIMEOUT = 300  # seconds: a hang fails the test instead of stalling it


def overrides(tmp: Path) -> list[str]:
    return [
        f"exp_dir={tmp / 'exp'}",
        "corpus.kind=librispeech",
        f"corpus.root={tmp / 'corpus'}",
        "corpus.train_splits=[train]",
        "corpus.dev_splits=[dev]",
        "corpus.test_splits=[dev]",
        "tokenizer.kind=char",
        "model.d_model=16",
        "model.n_heads=2",
        "model.n_layers=1",
        "model.ff_dim=32",
        "model.subsampling_channels=4",
        "data.max_batch_seconds=10",
        "data.buckets=3",
        "data.num_workers=0",
        "optim.warmup_steps=2",
        "trainer.max_epochs=2",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.strategy=ddp",
        "trainer.precision=32-true",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
    ]


def worker(out: Path, recipe_overrides: list[str]) -> None:
    """One rank: train the recipe with :func:`asr.training.run.fit`, as ``train.py`` does, then
    save what it saw and its weights to ``out/rank<r>.pt``."""
    from dataclasses import replace

    from asr.config import load_recipe
    from asr.training.module import ASRModule
    from asr.training.run import fit

    fault = json.loads(os.environ.get(FAULT_ENV, "{}"))

    class Recording(ASRModule):
        def __init__(self, *args):
            super().__init__(*args)
            self.initial = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.seen: list[tuple[int, tuple[str, ...]]] = []  # (epoch, utterance ids) per batch
            self.moved: dict[int, bool] = {}  # global step -> did it change the weights (head.weight)
            self._before: torch.Tensor | None = None

        def training_step(self, batch, batch_idx):
            self.seen.append((self.current_epoch, batch.ids))
            if [self.global_rank, self.global_step] == fault.get("nan"):  # NaN samples: a NaN loss
                batch = replace(batch, waves=torch.full_like(batch.waves, float("nan")))
            return super().training_step(batch, batch_idx)

        def on_train_batch_start(self, batch, batch_idx):
            self._before = self.model.head.weight.detach().clone()
            return super().on_train_batch_start(batch, batch_idx)

        def on_train_batch_end(self, outputs, batch, batch_idx):
            self.moved[self.global_step - 1] = not torch.equal(self._before, self.model.head.weight)

    # the data was prepared by the test before launch: every rank only reads it
    result = fit(load_recipe(None, recipe_overrides), module_class=Recording)
    module, trainer = result.module, result.trainer
    state = {k: v.detach().clone() for k, v in module.model.state_dict().items()}
    counts = {name: getattr(module, name) for name in ("skipped_steps", "skipped_batches", "skipped_utterances")}
    saved = {"world": trainer.world_size, "seen": module.seen, "initial": module.initial, "state": state,
             "moved": module.moved, "counts": counts}  # fmt: skip
    torch.save(saved, out / f"rank{trainer.global_rank}.pt")


def test_two_process_ddp_shards_data_and_keeps_weights_identical(tmp_path):
    from asr.config import load_recipe
    from asr.training.prepare import prepare

    write_noise_corpus(tmp_path / "corpus", "train", TRAIN_UTTERANCES, seed=1)
    write_noise_corpus(tmp_path / "corpus", "dev", 3, seed=2)  # odd: the last validation step is padded
    prepare(load_recipe(None, overrides(tmp_path)))
    done = launch(tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]

    train_ids = {f"10-1-{1000 + i:04d}" for i in range(TRAIN_UTTERANCES)}
    for epoch in (0, 1):
        batches = [[ids for e, ids in r["seen"] if e == epoch] for r in ranks]
        assert len(batches[0]) == len(batches[1]) > 0  # same number of steps: no rank waits forever
        seen = [[i for ids in rank_batches for i in ids] for rank_batches in batches]
        assert not set(seen[0]) & set(seen[1])  # disjoint shards
        assert sorted(seen[0] + seen[1]) == sorted(train_ids)  # every utterance once per epoch

    for name, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][name]), name
    trained = ranks[0]["state"]["head.weight"]
    assert not torch.allclose(trained, ranks[0]["initial"]["head.weight"])  # training did move the weights
    assert (tmp_path / "exp" / "checkpoints" / "last.ckpt").exists()
    assert (tmp_path / "exp" / "model.pt").exists()  # exported by rank 0, as train.py does


def launch(tmp: Path, fault: dict | None = None) -> subprocess.CompletedProcess:
    """Two ranks under torchrun on the corpus in ``tmp``; a hang raises TimeoutExpired."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", FAULT_ENV: json.dumps(fault or {})}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__]
    return subprocess.run(
        [*command, str(tmp), *overrides(tmp)], env=env, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT
    )


def _batch_of_rank0(recipe, entries, step: int, train: bool) -> list:
    """The entries rank 0 reads at ``step`` of epoch 0 (the sampler is a function of the
    seed; its batches keep their place in their step, so rank 0 meets them every epoch)."""
    from asr.data.sampler import DurationBatchSampler

    cfg = recipe.data
    sampler = DurationBatchSampler([e.duration for e in entries], cfg.max_batch_seconds,
                                   buckets=cfg.buckets if train else 1, shuffle=train, seed=recipe.seed,
                                   rank=0, world_size=2)  # fmt: skip
    return [entries[i] for i in list(sampler)[step]]


@pytest.fixture(scope="module")
def faulty_ddp(tmp_path_factory):
    """One 2-rank run (2 epochs) with faults on one rank at a time -> (tmp, per-rank results,
    stderr, ids made unreadable in training, latest metrics)."""
    from asr.config import load_recipe
    from asr.data.datamodule import ASRDataModule
    from asr.training.prepare import prepare

    tmp = tmp_path_factory.mktemp("faulty_ddp")
    write_noise_corpus(tmp / "corpus", "train", TRAIN_UTTERANCES, seed=1)
    write_noise_corpus(tmp / "corpus", "dev", 3, seed=2)
    recipe = load_recipe(None, overrides(tmp))
    data = prepare(recipe)  # the manifests still list the files broken below
    train = ASRDataModule(recipe, data.tokenizer, data.train, data.dev).train_entries
    broken = _batch_of_rank0(recipe, train, UNREADABLE_STEP, train=True)
    broken += _batch_of_rank0(recipe, data.dev, 0, train=False)  # validation: rank 0 has nothing
    for entry in broken:
        Path(entry.audio).write_bytes(b"RIFF\x00\x00not audio")
    done = launch(tmp, {"nan": [NAN_RANK, NAN_STEP]})
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    dev_ids = {e.id for e in data.dev}
    lost = {e.id for e in broken if e.id not in dev_ids}
    return tmp, ranks, done.stderr, lost, latest_metrics(tmp / "exp")


def latest_metrics(exp: Path) -> dict[str, float]:
    values: dict[str, float] = {}
    with next((exp / "logs").glob("version_*/metrics.csv")).open() as f:
        for row in csv.DictReader(f):
            values.update({k: float(v) for k, v in row.items() if v != ""})
    return values


def _identical_weights(ranks) -> None:
    for name, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][name]), name
    assert not torch.equal(ranks[0]["state"]["head.weight"], ranks[0]["initial"]["head.weight"])  # it trained


def test_a_non_finite_loss_on_rank_1_alone_skips_the_step_on_both_ranks(faulty_ddp):
    tmp, ranks, stderr, _, metrics = faulty_ddp
    warned = [line for line in stderr.splitlines() if "non-finite loss" in line]
    assert len(warned) == 1 and f"warning: non-finite loss at step {NAN_STEP} on rank {NAN_RANK} of 2" in warned[0]
    assert [r["moved"][NAN_STEP] for r in ranks] == [False, False]  # no update on either rank
    assert [r["moved"][0] for r in ranks] == [True, True]  # whereas a normal step moves the weights
    _identical_weights(ranks)
    assert [r["counts"]["skipped_batches"] for r in ranks] == [2, 1]  # rank 0: its unreadable batch, twice
    assert metrics["skipped_batches_total"] == 3  # summed over ranks
    assert (tmp / "exp" / "checkpoints" / "last.ckpt").exists() and "val_wer" in metrics


def test_an_unreadable_batch_on_rank_0_alone_skips_the_step_on_both_ranks(faulty_ddp):
    tmp, ranks, stderr, lost, metrics = faulty_ddp
    assert [r["moved"][UNREADABLE_STEP] for r in ranks] == [False, False]
    per_epoch = [[ids for e, ids in r["seen"] if e == 0] for r in ranks]
    assert per_epoch[0][UNREADABLE_STEP] == () and per_epoch[1][UNREADABLE_STEP]  # rank 1's batch was fine
    assert len(per_epoch[0]) == len(per_epoch[1])
    _identical_weights(ranks)
    # each step is skipped by both ranks together: 1 non-finite + 1 unreadable per epoch, 2 epochs
    assert [r["counts"]["skipped_steps"] for r in ranks] == [3, 3] and metrics["skipped_steps_total"] == 3
    assert [r["counts"]["skipped_utterances"] for r in ranks] == [len(lost), 0]  # training ones only
    assert metrics["skipped_utterances_total"] == len(lost)  # summed over ranks
    left_out = {line.split(": ")[2] for line in stderr.splitlines() if line.startswith("warning: utterance left out")}
    assert lost <= left_out


if __name__ == "__main__":
    worker(Path(sys.argv[1]), sys.argv[2:])
