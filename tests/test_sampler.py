"""The duration-bucketed batch sampler: shards, batch sizes, determinism, and resuming in the
middle of an epoch, alone and under a real Lightning Trainer."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from asr.data.sampler import DurationBatchSampler
from corpora import noise_recipe, write_noise_corpus



def durations(n: int = 200, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [round(rng.uniform(1.0, 20.0), 2) for _ in range(n)]




@pytest.mark.parametrize("world_size", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("train", [True, False])
def test_ranks_read_disjoint_shards_with_equal_batch_counts(world_size, train):
    durs = durations()
    ranks = [
        DurationBatchSampler(durs, 60.0, buckets=5, shuffle=train, seed=7, rank=r, world_size=world_size)
        for r in range(world_size)
    ]
    for s in ranks:
        s.set_epoch(3)
    shards = [list(s) for s in ranks]
    assert len({len(shard) for shard in shards}) == 1 and len(shards[0]) == len(ranks[0])
    everything = sorted(i for shard in shards for batch in shard for i in batch)
    assert everything == list(range(len(durs)))  # each utterance once: disjoint, nothing left out
    for shard in shards:
        for batch in shard:
            assert len(batch) == 1 or max(durs[i] for i in batch) * len(batch) <= 60.0


def test_fewer_utterances_than_ranks_still_gives_every_rank_a_batch():
    shards = [list(DurationBatchSampler([3.0, 4.0, 5.0], 60.0, rank=r, world_size=4)) for r in range(4)]
    assert [len(shard) for shard in shards] == [1, 1, 1, 1]
    assert {i for shard in shards for batch in shard for i in batch} == {0, 1, 2}


def test_batches_fit_the_budget_and_depend_only_on_seed_and_epoch():
    durs = durations()
    sampler = DurationBatchSampler(durs, 45.0, buckets=8, seed=1)
    first = list(sampler)
    for batch in first:
        assert len(batch) == 1 or max(durs[i] for i in batch) * len(batch) <= 45.0
    again = DurationBatchSampler(durs, 45.0, buckets=8, seed=1)
    assert list(again) == first
    again.set_epoch(1)
    second = list(again)
    assert second != first  # a new order each epoch ...
    assert sorted(second) == sorted(first) and len(again) == len(first)  # ... of the same batches (fixed count)
    other_seed = DurationBatchSampler(durs, 45.0, buckets=8, seed=2)
    assert list(other_seed) != first


def test_state_dict_resumes_after_the_consumed_batches():
    durs = durations()
    sampler = DurationBatchSampler(durs, 40.0, seed=5, rank=1, world_size=2)
    sampler.set_epoch(2)
    epoch = list(sampler)
    seen = []
    for batch in sampler:  # a training loop that stops after 4 batches
        seen.append(batch)
        sampler.mark_consumed()
        if len(seen) == 4:
            break
    state = sampler.state_dict()
    assert state["epoch"] == 2 and state["consumed"] == 4

    resumed = DurationBatchSampler(durs, 40.0, seed=5, rank=1, world_size=2)
    resumed.load_state_dict(state)
    assert resumed.epoch == 2 and len(resumed) == len(epoch)  # full length: Lightning counts the rest itself
    assert list(resumed) == epoch[4:]
    assert list(resumed) == epoch  # the skip applies once

    finished = DurationBatchSampler(durs, 40.0, seed=5, rank=1, world_size=2)
    finished.load_state_dict({**state, "consumed": len(epoch)})
    assert finished.epoch == 3  # a checkpoint at the end of epoch 2 continues with epoch 3


def _run(recipe, data, ckpt_dir: Path | None, resume: Path | None, epochs: int) -> list[tuple[str, ...]]:
    """Fit a tiny model; -> the utterance ids of every training batch, in order."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from asr.data.datamodule import ASRDataModule
    from asr.training.module import ASRModule

    class Recording(ASRModule):
        def __init__(self, *args):
            super().__init__(*args)
            self.seen: list[tuple[str, ...]] = []

        def training_step(self, batch, batch_idx):
            self.seen.append(batch.ids)
            return super().training_step(batch, batch_idx)

    callbacks = []
    if ckpt_dir is not None:  # a mid-epoch checkpoint after every 3 training steps
        callbacks.append(ModelCheckpoint(dirpath=ckpt_dir, filename="{step}", every_n_train_steps=3, save_top_k=-1))
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        limit_val_batches=0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=ckpt_dir is not None,
        use_distributed_sampler=False,
        callbacks=callbacks,
    )
    module = Recording(recipe, data.tokenizer, data.mean, data.std)
    trainer.fit(module, datamodule=ASRDataModule(recipe, data.tokenizer, data.train, data.dev), ckpt_path=resume)
    return module.seen


def test_lightning_resumes_mid_epoch_without_repeating_batches(tmp_path):
    from asr.training.prepare import prepare

    root = tmp_path / "corpus"
    write_noise_corpus(root, "train", 24, seed=1)
    write_noise_corpus(root, "dev", 2, seed=2)
    # workers prefetch ahead
    recipe = noise_recipe(root, tmp_path / "exp", {"max_batch_seconds": 12.0, "buckets": 3, "num_workers": 1})
    data = prepare(recipe)
    full = _run(recipe, data, tmp_path / "ckpt", resume=None, epochs=2)
    per_epoch = len(full) // 2
    assert per_epoch >= 6 and full[:per_epoch] != full[per_epoch:]
    resumed = _run(recipe, data, None, resume=tmp_path / "ckpt" / "step=3.ckpt", epochs=2)
    assert resumed == full[3:]  # the rest of epoch 0, then all of epoch 1, as in the uninterrupted run
