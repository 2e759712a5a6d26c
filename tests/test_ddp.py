"""Distributed data parallel training on CPU: two processes (gloo) started by torchrun, as
on a GPU node. Each rank records the utterances it trained on and its final weights.

Run by pytest, this file launches itself under ``torch.distributed.run``; the
``__main__`` block is the per-rank worker.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from corpora import write_noise_corpus

ROOT = Path(__file__).parents[1]
TRAIN_UTTERANCES = 20




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
    """One rank: train the recipe, then save what it saw and its weights to ``out/rank<r>.pt``."""
    import lightning as L

    from asr.cli.train import build_trainer
    from asr.config import load_recipe
    from asr.data.datamodule import ASRDataModule
    from asr.training.module import ASRModule
    from asr.training.prepare import prepare

    class Recording(ASRModule):
        def __init__(self, *args):
            super().__init__(*args)
            self.seen: list[tuple[int, tuple[str, ...]]] = []  # (epoch, utterance ids) per batch

        def training_step(self, batch, batch_idx):
            self.seen.append((self.current_epoch, batch.ids))
            return super().training_step(batch, batch_idx)

    recipe = load_recipe(None, recipe_overrides)
    L.seed_everything(recipe.seed)
    data = prepare(recipe)  # made by the test before launch: every rank only reads it
    module = Recording(recipe, data.tokenizer, data.mean, data.std)
    initial = {k: v.detach().clone() for k, v in module.model.state_dict().items()}
    trainer, _ = build_trainer(recipe)
    trainer.fit(module, datamodule=ASRDataModule(recipe, data.tokenizer, data.train, data.dev))
    state = {k: v.detach().clone() for k, v in module.model.state_dict().items()}
    saved = {"world": trainer.world_size, "seen": module.seen, "initial": initial, "state": state}
    torch.save(saved, out / f"rank{trainer.global_rank}.pt")


def test_two_process_ddp_shards_data_and_keeps_weights_identical(tmp_path):
    from asr.config import load_recipe
    from asr.training.prepare import prepare

    write_noise_corpus(tmp_path / "corpus", "train", TRAIN_UTTERANCES, seed=1)
    write_noise_corpus(tmp_path / "corpus", "dev", 3, seed=2)  # odd: the last validation step is padded
    prepare(load_recipe(None, overrides(tmp_path)))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__]
    done = subprocess.run(
        [*command, str(tmp_path), *overrides(tmp_path)], env=env, capture_output=True, text=True, timeout=300
    )
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


if __name__ == "__main__":
    worker(Path(sys.argv[1]), sys.argv[2:])
