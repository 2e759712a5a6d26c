"""Recipes: overrides reach every field, unknown keys are errors that name the key."""

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from asr.config import ConfigError, load_recipe

DEMO = Path(__file__).parents[1] / "recipes" / "demo" / "demo.yaml"


def test_demo_recipe_loads_with_overrides():
    recipe = load_recipe(DEMO, ["model.d_model=256", "optim.lr=1e-3", "trainer.max_epochs=2", "data.speed_perturb=[0.9,1.1]"])
    assert recipe.model.d_model == 256
    assert recipe.optim.lr == pytest.approx(1e-3)
    assert recipe.trainer["max_epochs"] == 2
    assert recipe.data.speed_perturb == (0.9, 1.1)
    assert recipe.model.n_layers == load_recipe(DEMO).model.n_layers  # untouched fields stay


@pytest.mark.parametrize(
    "override, key",
    [
        ("model.d_modle=3", "model.d_modle"),
        ("modle.d_model=3", "modle"),
        ("trainer.max_epoch=3", "trainer.max_epoch"),
    ],
)
def test_unknown_key_is_named(override, key):
    with pytest.raises(ConfigError, match=f"unknown config key '{key}'"):
        load_recipe(DEMO, [override])


def test_unknown_key_in_yaml_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  d_model: 64\n  heads: 2\n")
    with pytest.raises(ConfigError, match="unknown config key 'model.heads'"):
        load_recipe(bad)


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match="'model.n_layers' expects int"):
        load_recipe(DEMO, ["model.n_layers=two"])


@pytest.mark.parametrize("value", ["-1", "7"])
def test_convolution_from_a_layer_the_model_lacks_is_named(value):
    with pytest.raises(ConfigError, match=f"'model.conv_from_layer': 0..6 expected, got {value}"):
        load_recipe(DEMO, [f"model.conv_from_layer={value}"])


def test_train_cli_reports_bad_key(capsys):
    from asr.cli.train import main

    assert main(["--config", str(DEMO), "optim.learning_rate=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: unknown config key 'optim.learning_rate'"


def test_time_budget_format_is_checked_before_any_work():
    """Lightning's Timer wants DD:HH:MM:SS with two digits each; found out only when the
    Trainer is built, after data preparation, unless the recipe is checked first."""
    assert load_recipe(DEMO, ["trainer.max_time=00:00:15:04"]).trainer["max_time"] == "00:00:15:04"
    with pytest.raises(ConfigError, match="trainer.max_time"):
        load_recipe(DEMO, ["trainer.max_time=00:00:15:4"])


def test_a_recipe_starts_from_its_base_and_changes_only_its_keys(tmp_path):
    whisper = load_recipe(DEMO.parent / "whisper.yaml")
    demo = load_recipe(DEMO)
    assert (whisper.model.init, whisper.model.d_model, whisper.features.mel) == ("whisper-tiny.en", 384, "slaney")
    assert whisper.corpus == replace(demo.corpus, train_sentences=12000, train_share=0.75)  # the corpus keys it changes
    assert whisper.augment == demo.augment and whisper.trainer == demo.trainer
    assert whisper.model.max_left_chunks == demo.model.max_left_chunks  # a model key it leaves alone
    (tmp_path / "a.yaml").write_text("base: b.yaml\nname: a\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_recipe(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: {demo: 1}\n")
    with pytest.raises(ConfigError, match="'base' must name a recipe file or a list of them"):
        load_recipe(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(ConfigError, match="cannot read recipe .*missing.yaml"):
        load_recipe(tmp_path / "d.yaml")


def test_a_recipe_may_start_from_several_files_later_ones_winning(tmp_path):
    """``base: [corpus.yaml, model.yaml]``: the Whisper recipes share one model file."""
    (tmp_path / "corpus.yaml").write_text("corpus:\n  train_sentences: 10\nmodel:\n  d_model: 64\n  n_layers: 3\n")
    (tmp_path / "model.yaml").write_text("model:\n  d_model: 96\n")
    (tmp_path / "r.yaml").write_text("base: [corpus.yaml, model.yaml]\nmodel:\n  n_heads: 2\n")
    recipe = load_recipe(tmp_path / "r.yaml")
    assert (recipe.corpus.train_sentences, recipe.model.d_model, recipe.model.n_layers, recipe.model.n_heads) == (10, 96, 3, 2)
    (tmp_path / "twice.yaml").write_text("base: [corpus.yaml, corpus.yaml]\n")  # the same file twice is no cycle
    assert load_recipe(tmp_path / "twice.yaml").model.d_model == 64
    (tmp_path / "empty.yaml").write_text("base: []\n")
    with pytest.raises(ConfigError, match="empty.yaml: 'base' must name"):
        load_recipe(tmp_path / "empty.yaml")
    (tmp_path / "self.yaml").write_text("base: [corpus.yaml, self.yaml]\n")
    with pytest.raises(ConfigError, match="'base: self.yaml' makes a cycle"):
        load_recipe(tmp_path / "self.yaml")
    synthetic = load_recipe(DEMO.parents[1] / "synthetic" / "whisper.yaml")
    whisper = load_recipe(DEMO.parent / "whisper.yaml")
    shared = yaml.safe_load((DEMO.parent / "whisper_encoder.yaml").read_text())
    own = yaml.safe_load((DEMO.parent / "whisper.yaml").read_text())["model"]  # the recipe's own keys win over both
    for key, value in shared["model"].items():  # the shared file's keys win over either corpus recipe's
        assert getattr(synthetic.model, key) == value and getattr(whisper.model, key) == own.get(key, value), key
    assert own and all(getattr(whisper.model, key) == value for key, value in own.items())
    assert synthetic.features == whisper.features and synthetic.optim.lr == whisper.optim.lr == shared["optim"]["lr"]
    assert synthetic.corpus == load_recipe(DEMO.parents[1] / "synthetic" / "synthetic.yaml").corpus


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.speed_perturb=[fast]", "config key 'data.speed_perturb' expects a list of float, got 'fast'"),
        ("optim.betas=[0.9]", r"config key 'optim.betas' expects \[float, float\], got \[0.9\]"),
        ("model.inter_ctc_layers=[a]", "config key 'model.inter_ctc_layers' expects a list of int, got 'a'"),
        ("model.inter_ctc_layers=[true]", "config key 'model.inter_ctc_layers' expects a list of int, got True"),
        ("corpus.engines=[1]", "config key 'corpus.engines' expects a list of str, got 1"),
        ("augment.room_min_size=[3, 3]", r"'augment.room_min_size' expects \[float, float, float\], got \[3, 3\]"),
        ("model.n_heads=5", "config key 'model.n_heads': must divide d_model 192, got 5"),
        ("model.n_heads=0", "config key 'model.n_heads': must divide d_model 192, got 0"),
    ],
)
def test_list_elements_and_head_count_are_checked_naming_the_key(override, message):
    """A list's elements, a fixed-length list's length and the head count are checked where
    the recipe is read, so a typo fails in one line naming the key, not later in a loader, an
    optimizer or an assert while the model is built."""
    with pytest.raises(ConfigError, match=message):
        load_recipe(DEMO, [override])


def test_list_elements_are_converted_to_the_declared_type():
    """YAML reads ``1e-3`` (no dot) as a string and ``1`` as an int; a float list holds floats."""
    recipe = load_recipe(DEMO, ["data.speed_perturb=[1, 1.1]", "optim.betas=[0.9, 1e-3]", "model.inter_ctc_layers=[2]"])
    assert recipe.data.speed_perturb == (1.0, 1.1) and isinstance(recipe.data.speed_perturb[0], float)
    assert recipe.optim.betas == (0.9, 1e-3)
    assert recipe.model.inter_ctc_layers == (2,)
