"""Pre-decoded shards (asr.data.shards, asr.cli.shards): what training reads by memory map is
what decoding and resampling would have given, and a damaged shard is named before training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.audio.read import read_audio
from asr.cli.shards import main as shards_main
from asr.config import recipe_from_dict
from asr.data.batch import UtteranceDataset, collate
from asr.data.manifest import Entry, scan_librispeech, write_manifest
from asr.data.shards import ShardError, ShardReader, from_pcm16, to_pcm16
from asr.text.tokenizer import Tokenizer
from corpora import WORDS, write_noise_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Manifest of six 16 kHz FLAC utterances, one 22.05 kHz stereo WAV (resampled on decode),
    and one file that cannot be read; -> (manifest, entries)."""
    root = tmp_path_factory.mktemp("shards")
    write_noise_corpus(root, "train", 6, seed=3)
    entries, _ = scan_librispeech(root / "train")
    rng = np.random.default_rng(0)
    sf.write(root / "wide.wav", 0.2 * rng.standard_normal((33075, 2)), 22050)  # 1.5 s, stereo
    (root / "bad.flac").write_bytes(b"not audio")
    entries += [Entry("wide", str(root / "wide.wav"), 1.5, "RED CAT"), Entry("bad", str(root / "bad.flac"), 1.0, "SUN")]
    manifest = write_manifest(root / "train.jsonl", entries)
    return manifest, entries


@pytest.fixture(scope="module")
def shard_dir(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "shards"
    assert shards_main(["--manifest", str(corpus[0]), "--out", str(out), "--shard-mib", "0.15"]) == 0
    return out


def test_round_trip_is_bit_exact_against_decode_and_resample(corpus, shard_dir, capsys):
    _, entries = corpus
    index = json.loads((shard_dir / "index.json").read_text())
    assert len(index["shards"]) >= 3  # 0.15 MiB shards: utterances spread over several files
    assert not list(shard_dir.glob(".*.tmp"))  # atomic writes leave no temporary file behind
    reader = ShardReader([shard_dir], 16000)
    assert "bad" not in reader and len(reader) == len(entries) - 1
    for entry in entries[:-1]:
        decoded = read_audio(entry.audio, 16000)
        got = reader.read(entry.id)
        assert got.dtype == torch.float32 and got.shape == decoded.shape
        if entry.id == "wide":  # resampled: exactly decode + resample quantized to 16 bits
            assert torch.equal(got, from_pcm16(to_pcm16(decoded)))
            assert float((got - decoded).abs().max()) <= 0.5 / 32768 + 1e-7
        else:  # a 16-bit source at the front end's rate comes back bit-exact
            assert torch.equal(got, decoded)


def test_dataset_reads_shards_and_decodes_the_rest(corpus, shard_dir):
    _, entries = corpus
    tokenizer = Tokenizer.train([" ".join(WORDS)], 40, "char")
    reader = ShardReader([shard_dir], 16000)
    moved = [Entry(e.id, "/nonexistent/" + e.id + ".flac", e.duration, e.text) for e in entries[:3]]
    dataset = UtteranceDataset(moved + [entries[3]], tokenizer, shards=reader)  # audio paths unused when sharded
    batch = collate([dataset[i] for i in range(4)])
    assert not batch.skipped and batch.ids == tuple(e.id for e in entries[:4])
    for row, entry in enumerate(entries[:4]):
        n = int(batch.wave_lengths[row])
        assert torch.equal(batch.waves[row, :n], read_audio(entry.audio, 16000))


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_a_damaged_shard_is_named_in_one_line(shard_dir, tmp_path, damage):
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in shard_dir.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    victim = copy / "shard-00001.pcm"
    if damage == "truncate":
        victim.write_bytes(victim.read_bytes()[:-100])
    else:
        victim.unlink()
    with pytest.raises(ShardError) as err:
        ShardReader([copy], 16000)
    message = str(err.value)
    assert str(victim) in message and "\n" not in message
    assert ("truncated" if damage == "truncate" else "missing") in message


def test_wrong_rate_and_missing_index_are_named(shard_dir, tmp_path):
    with pytest.raises(ShardError, match="8000 Hz"):
        ShardReader([shard_dir], 8000)
    with pytest.raises(ShardError, match=f"{tmp_path / 'index.json'}: no shard index"):
        ShardReader([tmp_path], 16000)


def test_cli_reports_what_it_left_out(corpus, tmp_path, capsys):
    assert shards_main(["--manifest", str(corpus[0]), "--out", str(tmp_path / "s")]) == 0
    out, err = capsys.readouterr()
    assert "bad left out" in err and "7 utterances" in out and "1 left out" in out
    assert shards_main(["--manifest", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "t")]) == 2


def test_recipe_keys_are_typed():
    recipe = recipe_from_dict({"data": {"shards": ["a", "b"], "augment_device": True}})
    assert recipe.data.shards == ("a", "b") and recipe.data.augment_device is True
    assert recipe_from_dict({}).data.augment_device is False


def test_training_reads_shards_and_augments_on_the_device(tmp_path, one_thread):
    """Two Lightning steps: the loader yields clean sharded audio (no file is decoded), the
    training step perturbs it (speed changes the lengths the model sees)."""
    import lightning as L

    from asr.data.datamodule import ASRDataModule
    from asr.training.module import ASRModule
    from asr.training.prepare import prepare
    from corpora import noise_recipe

    root = tmp_path / "corpus"
    write_noise_corpus(root, "train", 6, seed=1)
    write_noise_corpus(root, "dev", 2, seed=2)
    plain = noise_recipe(root, tmp_path / "exp", {"max_batch_seconds": 8.0, "num_workers": 0})
    data = prepare(plain)
    write_manifest(tmp_path / "train.jsonl", data.train)
    assert shards_main(["--manifest", str(tmp_path / "train.jsonl"), "--out", str(tmp_path / "shards")]) == 0
    for path in (root / "train").rglob("*.flac"):
        path.unlink()  # every training utterance must now come from the shards
    data_section = {"max_batch_seconds": 8.0, "num_workers": 0, "shards": [str(tmp_path / "shards")],
                    "augment_device": True, "speed_perturb": [0.8]}  # fmt: skip
    recipe = noise_recipe(root, tmp_path / "exp", data_section)
    module = ASRModule(recipe, data.tokenizer, data.mean, data.std)
    perturb, seen = module.device_augment.batch, []

    def recording(batch, key):  # what the training step hands to the device augmentation, and gets back
        out = perturb(batch, key)
        seen.append((batch.skipped, batch.wave_lengths, out.wave_lengths))
        return out

    module.device_augment.batch = recording
    trainer = L.Trainer(max_steps=2, accelerator="cpu", devices=1, limit_val_batches=0, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)  # fmt: skip
    trainer.fit(module, datamodule=ASRDataModule(recipe, data.tokenizer, data.train, data.dev))
    assert len(seen) == 2
    for skipped, clean, perturbed in seen:
        assert not skipped  # nothing left out: no decoding of the deleted files was attempted
        assert torch.all((perturbed - clean / 0.8).abs() <= 1)  # 0.8x speed: 1.25x the samples


def test_train_names_a_missing_shard_folder_in_one_line(tmp_path, capsys):
    from asr.cli.train import main as train_main

    root = tmp_path / "corpus"
    write_noise_corpus(root, "train", 3, seed=1)
    write_noise_corpus(root, "dev", 2, seed=2)
    missing = tmp_path / "no-shards"
    code = train_main([
        "--config", "recipes/demo/demo.yaml", f"exp_dir={tmp_path / 'exp'}", "corpus.kind=librispeech",
        f"corpus.root={root}", "corpus.test_splits=[dev]", "tokenizer.kind=char", f"data.shards=[{missing}]",
        "trainer.accelerator=cpu",
    ])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("error: ") and str(missing) in err[-1]
