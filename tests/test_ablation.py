"""The equal-budget ablation command: trains each variant in its own pinned process for the
same minutes, then tabulates size, speed and WER, and draws one line per variant."""

from __future__ import annotations

import json
import os

import pytest

from asr.bench import ablation
from corpora import write_noise_corpus

TINY = [
    "corpus.kind=librispeech", "corpus.train_splits=[train]", "corpus.dev_splits=[dev]", "corpus.test_splits=[dev]",
    "tokenizer.kind=char", "model.d_model=16", "model.n_heads=2", "model.n_layers=1", "model.ff_dim=32",
    "model.subsampling_channels=4", "model.conv_kernel=0", "model.chunk_train_prob=0", "data.num_workers=0",
    "data.max_batch_seconds=8", "optim.warmup_steps=2", "trainer.max_epochs=3", "trainer.precision=32-true",
    "trainer.accelerator=cpu", "trainer.devices=1", "trainer.num_sanity_val_steps=0", "trainer.log_every_n_steps=1",
]  # fmt: skip


@pytest.mark.slow
def test_two_variants_train_for_the_same_budget_and_are_compared(tmp_path, monkeypatch):
    root = tmp_path / "corpus"
    write_noise_corpus(root, "train", 12, seed=1)
    write_noise_corpus(root, "dev", 3, seed=2)
    monkeypatch.setitem(ablation.VARIANTS, "tiny", (f"corpus.root={root}", *TINY))
    monkeypatch.setitem(ablation.VARIANTS, "wider", (f"corpus.root={root}", *TINY, "model.d_model=24"))
    out = tmp_path / "abl"
    core = str(min(os.sched_getaffinity(0)))
    assert ablation.main(["--out", str(out), "--variants", "tiny,wider", "--minutes", "0.1", "--cores", core]) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"tiny", "wider"}
    assert results["wider"]["parameters"] > results["tiny"]["parameters"]
    assert results["wider"]["gflops_per_audio_s"] > results["tiny"]["gflops_per_audio_s"]
    for r in results.values():
        assert r["steps"] > 0 and r["inference_rtf"] > 0 and 0 <= r["final_wer"]["dev"] <= 500
        assert r["curves"]["dev"], "one point per validation"
    table = (out / "ablation.md").read_text().splitlines()
    assert table[0].startswith("| variant |") and "WER dev (%)" in table[0] and len(table) == 4
    assert (out / "ablation.png").stat().st_size > 5000
    # a second call trains nothing again: the table comes from what is there
    mtime = (out / "runs" / "tiny" / "model.pt").stat().st_mtime
    assert ablation.main(["--out", str(out), "--variants", "tiny", "--minutes", "0.1", "--cores", core]) == 0
    assert (out / "runs" / "tiny" / "model.pt").stat().st_mtime == mtime


def test_an_unknown_variant_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        ablation.main(["--out", str(tmp_path), "--variants", "nonesuch"])
    assert "unknown variant 'nonesuch'" in capsys.readouterr().err


def test_a_variant_may_train_another_recipe_beside_the_given_one():
    """The pretrained group trains recipes/demo/whisper.yaml itself (not a copy of its keys)."""
    from asr.config import load_recipe

    demo = ablation.REPO / "recipes" / "demo" / "demo.yaml"
    recipe, rest = ablation.variant_recipe(demo, ablation.PRETRAINED_VARIANTS["whisper_head"])
    pinned = ("data.max_batch_seconds=100", "optim.warmup_steps=50", "data.cache_frozen_gb=0")  # as measured
    assert recipe == demo.parent / "whisper.yaml" and rest == (*pinned, "model.n_layers=4", "optim.lr=0.0025")
    head = load_recipe(recipe, rest)
    assert (head.model.init, head.model.n_layers, head.model.freeze_layers, head.optim.lr) == ("whisper-tiny.en", 4, 4, 0.0025)
    assert (head.data.max_batch_seconds, head.optim.warmup_steps, head.data.cache_frozen_gb) == (100, 50, 0)
    assert ablation.variant_recipe(demo, ("optim.lr=1",)) == (demo, ("optim.lr=1",))
