"""Fine-tuning a model this project trained on a corpus imported from another layout:
``model.init`` with a model.pt (every weight, its tokenizer and feature statistics; recipe
keys that do not fit named in one error), ``corpus.kind: manifest`` and ``corpus.mix`` of
manifest files, and one end-to-end run through train.py with frozen bottom layers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.config import ConfigError, ModelConfig, recipe_from_dict
from asr.data.manifest import Entry, ManifestError, read_manifest, write_manifest
from asr.inference.checkpoint import checkpoint_meta
from asr.model import CTCModel
from asr.text.tokenizer import Tokenizer
from asr.training.prepare import mixed_entries, prepare
from asr.training.pretrained import PretrainedError, load_pretrained

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"d_model": 32, "n_heads": 2, "n_layers": 2, "ff_dim": 64, "subsampling_channels": 8, "dropout": 0.0}


def save_model(path: Path, values: dict | None = None) -> tuple[CTCModel, Tokenizer]:
    """A small model.pt with random weights, a char tokenizer and feature statistics of its own."""
    recipe = recipe_from_dict({"model": SMALL, "tokenizer": {"kind": "char"}, **(values or {})}, check_trainer=False)
    tokenizer = Tokenizer.train(["HELLO WORLD", "GOOD MORNING"], 30, "char")
    torch.manual_seed(0)
    model = CTCModel(recipe.model, recipe.features, recipe.specaug, tokenizer.vocab_size)
    model.cmvn.set_stats(torch.linspace(-5, 5, 80), torch.linspace(1, 2, 80))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**checkpoint_meta(recipe, tokenizer), "state_dict": model.state_dict()}, path)
    return model, tokenizer


def manifests(root: Path, names=("train", "dev", "test")) -> Path:
    """``root/<split>.jsonl`` of two short tones each, as import_data writes them."""
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        entries = []
        for i in range(2):
            path = root / f"{name}{i}.wav"
            sf.write(path, np.sin(np.arange(8000) / 5.0).astype("float32") * 0.1, 16000)
            entries.append(Entry(f"{name}{i}", str(path), 0.5, "HELLO WORLD"))
        write_manifest(root / f"{name}.jsonl", entries)
    return root


def test_model_init_takes_a_trained_model_path():
    assert ModelConfig(init="exp/demo/model.pt").init == "exp/demo/model.pt"
    assert ModelConfig(init="exp/demo/checkpoints/last.ckpt").init.endswith(".ckpt")
    with pytest.raises(ConfigError, match="model.init.*trained model's path"):
        ModelConfig(init="exp/demo")


def test_recipe_keys_that_do_not_fit_are_named_in_one_error(tmp_path):
    save_model(tmp_path / "model.pt")
    recipe = recipe_from_dict({"model": {**SMALL, "d_model": 48, "n_heads": 4, "init": str(tmp_path / "model.pt")},
                               "features": {"mel": "slaney"}, "tokenizer": {"kind": "char"}}, check_trainer=False)
    with pytest.raises(PretrainedError) as caught:
        load_pretrained(CTCModel(recipe.model, recipe.features, recipe.specaug, 30), recipe)
    message = str(caught.value)
    assert "3 recipe keys do not fit" in message
    for named in ("model.d_model 48 (the model has 32)", "model.n_heads 4", "features.mel 'slaney'"):
        assert named in message


def test_a_missing_or_unsafe_model_is_one_line(tmp_path):
    recipe = recipe_from_dict({"model": {**SMALL, "init": str(tmp_path / "none.pt")}}, check_trainer=False)
    with pytest.raises(PretrainedError, match="model.init.*none.pt.*not found"):
        load_pretrained(CTCModel(recipe.model, recipe.features, recipe.specaug, 30), recipe)


def test_every_weight_and_the_statistics_come_with_it_and_frozen_layers_stay(tmp_path):
    trained, tokenizer = save_model(tmp_path / "model.pt")
    recipe = recipe_from_dict({"model": {**SMALL, "init": str(tmp_path / "model.pt"), "freeze_layers": 1,
                                         "dropout": 0.2}, "tokenizer": {"kind": "char"}}, check_trainer=False)
    torch.manual_seed(1)
    model = CTCModel(recipe.model, recipe.features, recipe.specaug, tokenizer.vocab_size)
    said = load_pretrained(model, recipe)
    assert "all" in said and "1 layers frozen" in said
    for name, value in trained.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], value, msg=name)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert any(n.startswith("encoder.layers.0.") for n in frozen) and any(n.startswith("subsampling.") for n in frozen)
    assert not any(n.startswith("encoder.layers.1.") for n in frozen)


def test_prepare_reads_manifests_and_takes_the_models_tokenizer_and_statistics(tmp_path):
    trained, tokenizer = save_model(tmp_path / "base" / "model.pt")
    root = manifests(tmp_path / "mine")
    other = manifests(tmp_path / "original", names=("train",))
    recipe = recipe_from_dict({
        "exp_dir": str(tmp_path / "exp"),
        "corpus": {"kind": "manifest", "root": str(root), "test_splits": ["test", str(other / "train.jsonl")],
                   "mix": [f"{other / 'train.jsonl'}:0.5"]},
        "model": {**SMALL, "init": str(tmp_path / "base" / "model.pt")}, "tokenizer": {"kind": "char"},
    }, check_trainer=False)  # fmt: skip
    data = prepare(recipe)
    assert [e.id for e in data.train[:2]] == ["train0", "train1"] and len(data.train) == 3  # 2 + half of the mix
    assert [e.id for e in data.dev] == ["dev0", "dev1"]
    assert set(data.test) == {"test", "original-train"}
    assert data.tokenizer.model_proto == tokenizer.model_proto
    torch.testing.assert_close(data.mean, trained.cmvn.mean)
    torch.testing.assert_close(data.std, trained.cmvn.std)
    assert not (tmp_path / "exp" / "tokenizer.model").exists(), "nothing of its own made"


def test_a_missing_manifest_names_the_import_command(tmp_path):
    recipe = recipe_from_dict({"corpus": {"kind": "manifest", "root": str(tmp_path)}}, check_trainer=False)
    with pytest.raises(ManifestError, match=r"train.jsonl: no such manifest.*asr.cli.import_data"):
        prepare(recipe)
    manifests(tmp_path, names=("train",))
    write_manifest(tmp_path / "dev.jsonl", [])
    with pytest.raises(ManifestError, match=r"corpus.dev_splits \['dev'\].*no utterances"):
        prepare(recipe)


def test_mix_takes_manifest_files_with_weights(tmp_path):
    root = manifests(tmp_path, names=("train",))
    assert len(mixed_entries((f"{root / 'train.jsonl'}:2",), seed=0)) == 4
    assert len(mixed_entries((f"{root / 'train.jsonl'}:0.5",), seed=0)) == 1
    with pytest.raises(ValueError, match="no such folder or .jsonl manifest"):
        mixed_entries((f"{root / 'gone.jsonl'}:1",), seed=0)


@pytest.mark.slow
def test_fine_tune_an_imported_corpus_from_a_trained_model(tiny_corpus, tmp_path, capsys):
    """train.py twice: a base model on the espeak corpus, then fine-tuned from its model.pt on the
    same corpus imported through a CSV (corpus.kind manifest) with the original mixed in and the
    bottom layer frozen: the exported model keeps the base's tokenizer and frozen weights."""
    from asr.cli.import_data import main as import_data
    from asr.cli.train import main as train
    from asr.inference.checkpoint import load_parts
    from test_pipeline import DEMO, TINY, corpus_overrides

    base = tmp_path / "base"
    common = [*TINY, "optim.warmup_steps=5", "trainer.max_epochs=2", "trainer.check_val_every_n_epoch=2",
              "trainer.precision=32-true"]  # the same figures on every CPU
    assert train(["--config", str(DEMO), f"exp_dir={base}", *corpus_overrides(tiny_corpus), *common]) == 0
    rows = read_manifest(Path(tiny_corpus.root) / "train.jsonl") + read_manifest(Path(tiny_corpus.root) / "dev.jsonl")
    (tmp_path / "mine.csv").write_text("path,text\n" + "".join(f"{e.audio},{e.text.lower()}\n" for e in rows))
    assert import_data(["csv", str(tmp_path / "mine.csv"), "--out", str(tmp_path / "mine"), "--dev", "2",
                        "--test", "2", "--model", str(base / "model.pt")]) == 0
    assert f"words the tokenizer of {base / 'model.pt'} cannot spell: " in capsys.readouterr().out
    tuned = tmp_path / "tuned"
    overrides = [f"exp_dir={tuned}", "corpus.kind=manifest", f"corpus.root={tmp_path / 'mine'}", "corpus.eval_sets=[]",
                 f"corpus.mix=[{Path(tiny_corpus.root) / 'train'}:0.5]", f"model.init={base / 'model.pt'}",
                 "model.freeze_layers=1", "optim.lr=0.0005", *common]  # fmt: skip
    assert train(["--config", str(DEMO), *overrides]) == 0
    assert f"model.init {base / 'model.pt'}: all" in capsys.readouterr().out
    _, base_tokenizer, before = load_parts(base / "model.pt")
    recipe, tokenizer, after = load_parts(tuned / "model.pt")
    assert tokenizer.model_proto == base_tokenizer.model_proto and recipe.corpus.kind == "manifest"
    old, new = before.state_dict(), after.state_dict()
    for name in old:
        if name.startswith(("subsampling.", "encoder.layers.0.", "cmvn.")):
            torch.testing.assert_close(new[name], old[name], msg=name)
    assert not torch.equal(new["encoder.layers.1.ff.0.weight"], old["encoder.layers.1.ff.0.weight"])


def test_a_split_may_be_a_manifest_path_for_every_kind(tmp_path):
    from asr.training.prepare import split_manifest, split_name

    root = manifests(tmp_path / "mine", names=("test",))
    assert [e.id for e in split_manifest(tmp_path / "elsewhere", str(root / "test.jsonl"))] == ["test0", "test1"]
    assert [e.id for e in split_manifest(tmp_path, "mine/test.jsonl")] == ["test0", "test1"]  # from the root
    assert (split_name(str(root / "test.jsonl")), split_name("test-clean"), split_name("v1.0")) == (
        "mine-test", "test-clean", "v1.0")
    with pytest.raises(ManifestError, match="gone.jsonl: no such manifest"):
        split_manifest(tmp_path, "gone.jsonl")
