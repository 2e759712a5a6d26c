"""The tokenizer and the feature statistics in exp_dir are reused only for the recipe values
they were made from: a changed tokenizer or filterbank is rebuilt and said in one line, and
refused where a model trained with the old one is in exp_dir (resuming it would not fit)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from asr.config import ConfigError, FeatureConfig, TokenizerConfig
from asr.training.prepare import prepare
from corpora import noise_recipe, write_noise_corpus


@pytest.fixture
def recipe(tmp_path):
    """A character tokenizer over a 6-utterance noise corpus, HTK filterbank."""
    root = tmp_path / "corpus"
    write_noise_corpus(root, "train", 6, 0)
    write_noise_corpus(root, "dev", 2, 1)
    return noise_recipe(root, tmp_path / "exp", {})


def test_an_unchanged_recipe_reuses_both(recipe, capsys):
    first = prepare(recipe)
    exp = recipe.exp_path
    stamps = {p.name: p.stat().st_mtime_ns for p in (exp / "tokenizer.model", exp / "feature_stats.pt")}
    capsys.readouterr()
    again = prepare(recipe)
    assert {p.name: p.stat().st_mtime_ns for p in (exp / "tokenizer.model", exp / "feature_stats.pt")} == stamps
    assert again.tokenizer.model_proto == first.tokenizer.model_proto and torch.equal(again.mean, first.mean)
    assert "rebuilt" not in capsys.readouterr().out


@pytest.mark.parametrize(
    "section, first, value, product, key",
    [
        ("tokenizer", TokenizerConfig(kind="char"), TokenizerConfig(kind="bpe"), "tokenizer.model", "tokenizer.kind"),
        ("tokenizer", TokenizerConfig(kind="bpe"), TokenizerConfig(kind="bpe", vocab_size=30), "tokenizer.model",
         "tokenizer.vocab_size"),
        ("features", FeatureConfig(), FeatureConfig(mel="slaney"), "feature_stats.pt", "features.mel"),
    ],
)  # fmt: skip
def test_a_changed_tokenizer_or_filterbank_is_rebuilt_and_said(recipe, capsys, section, first, value, product, key):
    recipe = replace(recipe, **{section: first})
    before = prepare(recipe)
    capsys.readouterr()
    changed = replace(recipe, **{section: value})
    after = prepare(changed)
    lines = [line for line in capsys.readouterr().out.splitlines() if "rebuilt" in line]
    assert len(lines) == 1 and key in lines[0] and str(recipe.exp_path / product) in lines[0]
    if section == "tokenizer":
        fresh = prepare(replace(changed, exp_dir=str(recipe.exp_path.parent / "fresh")))
        assert after.tokenizer.model_proto == fresh.tokenizer.model_proto != before.tokenizer.model_proto
    else:
        assert not torch.allclose(after.mean, before.mean)
    assert prepare(recipe).tokenizer.model_proto == before.tokenizer.model_proto  # and back again


def test_a_change_under_a_trained_model_is_refused_naming_key_and_file(recipe):
    prepare(recipe)
    (recipe.exp_path / "checkpoints").mkdir()
    (recipe.exp_path / "checkpoints" / "last.ckpt").write_bytes(b"trained with the character tokenizer")
    with pytest.raises(ConfigError) as refused:
        prepare(replace(recipe, tokenizer=TokenizerConfig(kind="unigram", vocab_size=30)))
    message = str(refused.value)
    assert "\n" not in message and message.startswith("config key 'tokenizer.kind'")
    assert str(recipe.exp_path / "tokenizer.model") in message and "exp_dir" in message
    with pytest.raises(ConfigError, match="config key 'features.mel'.*feature_stats.pt"):
        prepare(replace(recipe, features=FeatureConfig(mel="slaney")))
