"""Model files outlive recipe changes: a file saved by this code's first format keeps loading
and transcribing; fields of the training-only sections that the code no longer knows are
left out; a file of another format version is one line naming it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from asr.inference.checkpoint import FORMAT_VERSION, CheckpointError, load_parts, read_checkpoint
from asr.inference.recognizer import Recognizer, load_model
from models import tiny_untrained_model
from test_streaming import speechlike

SAVED = Path(__file__).parent / "data" / "model_format1.pt"  # tiny_untrained_model() as checkpoint_meta saved it


def resaved(tmp_path: Path, edit) -> Path:
    """The saved file with ``edit(data)`` applied, written anew."""
    data = read_checkpoint(SAVED)
    edit(data)
    path = tmp_path / "edited.pt"
    torch.save(data, path)
    return path


def test_a_file_saved_by_the_first_format_loads_and_transcribes_as_the_model_it_holds():
    recipe, tokenizer, model = tiny_untrained_model()
    loaded = load_model(SAVED)
    assert loaded.recipe == recipe and loaded.tokenizer.model_proto == tokenizer.model_proto
    wave = speechlike(2.0)
    want = Recognizer(recipe, tokenizer, model.eval()).transcribe(wave, trace=False)
    got = loaded.transcribe(wave, trace=False)
    assert got.text == want.text and got.words == want.words and len(got.text) > 5


def test_unknown_and_renamed_training_fields_are_left_out(tmp_path):
    def edit(data):
        config = data["config"]
        config["corpus"]["engine_list"] = ["espeak"]  # a field renamed since
        config["optim"]["lr"] = "fast"  # a field whose type changed: the section's defaults
        config["augment"]["reverb"] = {"rooms": 3}
        config["data"]["bucketing"] = True
        config["curriculum"] = {"stages": 2}  # a section this code has never heard of

    recipe, _, _ = load_parts(resaved(tmp_path, edit))
    assert recipe.model == tiny_untrained_model()[0].model
    assert recipe.optim == type(recipe.optim)()


@pytest.mark.parametrize("section", ["model", "features"])
def test_an_unknown_field_of_the_network_is_still_an_error(tmp_path, section):
    path = resaved(tmp_path, lambda data: data["config"][section].update(new_knob=1))
    with pytest.raises(CheckpointError, match=f"unknown config key '{section}.new_knob'"):
        load_parts(path)


@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, "1"])
def test_another_format_version_is_one_line_naming_it(tmp_path, version):
    path = resaved(tmp_path, lambda data: data.update(format_version=version))
    with pytest.raises(CheckpointError) as caught:
        load_model(path)
    assert str(caught.value) == f"{path}: checkpoint format version {version!r}, this code reads {FORMAT_VERSION}"
