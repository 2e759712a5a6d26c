"""End to end on generated speech: corpus layout, Lightning fast_dev_run, a tiny model
trained until it transcribes its utterances, and transcribe.py's handling of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf
import torch

from asr.corpus.synth.espeak import HELDOUT_VARIANTS
from asr.corpus.synth.plan import corpus_plan as synth_plan
from asr.corpus.synthetic import docstring_sentences
from asr.data.manifest import read_manifest, scan_librispeech

ROOT = Path(__file__).parents[1]
DEMO = ROOT / "recipes" / "demo" / "demo.yaml"


def corpus_overrides(corpus) -> list[str]:
    return [
        "corpus.kind=espeak",  # the demo recipe's corpus is the multi-engine one; these tests use the espeak one
        "corpus.eval_sets=[]",
        f"corpus.root={corpus.root}",
        f"corpus.train_sentences={corpus.train_sentences}",
        f"corpus.dev_sentences={corpus.dev_sentences}",
        f"corpus.test_sentences={corpus.test_sentences}",
        f"corpus.train_voices={corpus.train_voices}",
        f"corpus.seed={corpus.seed}",
    ]


TINY = [
    "model.d_model=64",
    "model.n_heads=4",
    "model.n_layers=2",
    "model.ff_dim=128",
    "model.dropout=0.0",
    "model.subsampling_channels=16",
    "model.subsampling=conv4",  # 40 ms frames: characters fit CTC
    "model.conv_causal=true",
    "model.max_chunk_frames=25",
    "specaug.freq_masks=0",
    "specaug.time_masks=0",
    "tokenizer.kind=char",
    "data.num_workers=0",
    "data.max_batch_seconds=100",
    "data.buckets=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def test_corpus_layout_and_splits(tiny_corpus):
    root = Path(tiny_corpus.root)
    entries, problems = scan_librispeech(root / "train")
    assert not problems and len(entries) == 8
    for e in entries:
        speaker, chapter, _ = e.id.split("-")
        assert Path(e.audio) == root / "train" / speaker / chapter / f"{e.id}.flac"
        assert (root / "train" / speaker / chapter / f"{speaker}-{chapter}.trans.txt").exists()
        info = sf.info(e.audio)
        assert info.samplerate == 16000 and info.channels == 1 and e.duration > 0.5
        assert e.text == e.text.upper() and e.text
    from asr.corpus.synth import load_engines

    def corpus_plan(config):
        return synth_plan(config, docstring_sentences(config), load_engines(["espeak"]))

    plan = corpus_plan(tiny_corpus)
    texts = {split: {u.text for u in utts} for split, utts in plan.items()}
    assert not texts["train"] & texts["test"] and not texts["train"] & texts["dev"]
    train_variants = {u.voice.split("+")[1] for u in plan["train"]}
    test_variants = {u.voice.split("+")[1] for u in plan["test"]}
    assert not train_variants & test_variants and test_variants <= set(HELDOUT_VARIANTS)
    assert corpus_plan(tiny_corpus) == plan  # deterministic for a seed


def test_lightning_fast_dev_run(tiny_corpus, tmp_path):
    from asr.cli.train import main

    args = ["--config", str(DEMO), f"exp_dir={tmp_path}", *corpus_overrides(tiny_corpus), *TINY]
    assert main([*args, "trainer.fast_dev_run=true"]) == 0
    assert (tmp_path / "tokenizer.model").exists() and (tmp_path / "feature_stats.pt").exists()


@pytest.fixture(scope="module")
def trained(tiny_corpus, tmp_path_factory):
    """Train a tiny model on the 8 training utterances until it has learned them."""
    from asr.cli.train import main

    exp = tmp_path_factory.mktemp("exp")
    overrides = [
        f"exp_dir={exp}",
        *corpus_overrides(tiny_corpus),
        *TINY,
        "optim.lr=0.003",
        "optim.warmup_steps=20",
        "optim.final_lr_ratio=0.1",
        "trainer.max_epochs=250",
        # one validation, at the end: the dev utterances are never learned, so an earlier
        # validation that ties on dev WER would export weights that have not learned yet
        "trainer.check_val_every_n_epoch=250",
    ]
    assert main(["--config", str(DEMO), *overrides]) == 0
    entries = read_manifest(Path(tiny_corpus.root) / "train.jsonl")
    ref = exp / "train.ref"
    ref.write_text("".join(f"{e.id} {e.text}\n" for e in entries))
    return exp, entries, ref


def test_trained_model_transcribes_its_utterances(trained, tmp_path, capsys):
    from asr.cli.transcribe import main

    exp, entries, ref = trained
    report = tmp_path / "wer.json"
    code = main(["--model", str(exp / "model.pt"), "--ref", str(ref), "--report", str(report)] + [e.audio for e in entries])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    hyps = dict(line.split("\t") for line in out if "\t" in line)
    assert set(hyps) == {e.id for e in entries}
    figures = json.loads(report.read_text())
    assert figures["words"] == sum(len(e.text.split()) for e in entries)
    assert figures["wer"] <= 0.05, hyps
    assert out[-1].startswith("WER ")


def test_checkpoint_is_self_describing(trained):
    from asr import load_model

    exp, entries, _ = trained
    raw = torch.load(exp / "model.pt", weights_only=True)
    assert {"config", "tokenizer", "state_dict"} <= set(raw)
    assert "cmvn.mean" in raw["state_dict"]  # feature statistics travel with the weights
    best = next((exp / "checkpoints").glob("best-*.ckpt"))
    for path in (exp / "model.pt", best):  # both kinds of file load the same model
        assert load_model(path).transcribe(entries[0].audio).text == entries[0].text


def test_bad_files_are_reported_and_good_ones_still_transcribed(trained, tmp_path, capsys):
    from asr.cli.transcribe import main

    exp, entries, _ = trained
    (tmp_path / "notes.wav").write_text("this is not audio\n")
    (tmp_path / "empty.flac").write_bytes(b"")
    whole = Path(entries[0].audio).read_bytes()
    (tmp_path / "cut.flac").write_bytes(whole[: len(whole) // 3])
    bad = [tmp_path / "notes.wav", tmp_path / "empty.flac", tmp_path / "cut.flac", tmp_path / "missing.flac"]
    good = [entries[1].audio, entries[2].audio]
    code = main(["--model", str(exp / "model.pt"), str(bad[0]), good[0], *map(str, bad[1:]), good[1]])
    captured = capsys.readouterr()
    assert code == 1
    transcribed = [line.split("\t")[0] for line in captured.out.splitlines()]
    assert transcribed == [entries[1].id, entries[2].id]
    errors = captured.err.strip().splitlines()
    assert len(errors) == len(bad)
    for path, line in zip(bad, errors):
        assert line.startswith(f"error: {path}:"), line


def test_missing_model_is_one_clear_line(tmp_path, capsys):
    from asr.cli.transcribe import main

    assert main(["--model", str(tmp_path / "nope.pt"), "x.wav"]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'nope.pt'}: checkpoint not found"
