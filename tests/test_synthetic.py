"""The synth recipe's text plan (sources shared evenly, splits disjoint, test transcripts
kept out of training) and corpus mixing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from asr.config import CorpusConfig
from asr.corpus.synthetic import corpus_sentences
from asr.text import normalize_text
from asr.training.prepare import mixed_entries
from corpora import write_noise_corpus

SOURCES = ("docstrings", "fortunes")


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> CorpusConfig:
    from asr.corpus.text_sources import SOURCES as KNOWN, load_sentences

    for name in SOURCES:
        try:
            load_sentences(name)
        except FileNotFoundError:
            pytest.fail(f"text source {name} ({KNOWN[name].package}) is not installed: run bash scripts/setup.sh")
    return CorpusConfig(kind="synth", text_sources=SOURCES, train_sentences=200, dev_sentences=20, test_sentences=20,
                        heldout_sentences=30, seed=5)  # fmt: skip


def test_sources_share_the_splits_and_splits_are_disjoint(config):
    splits = corpus_sentences(config, exclude=set())
    assert {split: len(items) for split, items in splits.items()} == {"train": 200, "dev": 20, "test": 20, "heldout": 30}
    for split in ("train", "dev", "test", "heldout"):
        sources = [source for source, _ in splits[split]]
        assert {sources.count(name) for name in SOURCES} == {len(sources) // 2}, split  # evenly shared
    text = {split: {normalize_text(s) for _, s in items} for split, items in splits.items()}
    for other in ("dev", "test", "heldout"):
        assert not text["train"] & text[other], other
    assert corpus_sentences(config, exclude=set()) == splits  # a function of the seed
    assert corpus_sentences(replace(config, seed=6), exclude=set()) != splits


def test_test_transcripts_never_reach_the_training_text(config):
    before = corpus_sentences(config, exclude=set())
    banned = {normalize_text(s) for _, s in before["train"][:5]}
    after = corpus_sentences(config, exclude=banned)
    assert not banned & {normalize_text(s) for _, s in after["train"]}
    assert len(after["train"]) == 200  # refilled from the source, not shrunk


def test_a_train_share_synthesizes_fewer_training_sentences_and_keeps_the_test_sets(config):
    whole = corpus_sentences(config, exclude=set())
    half = corpus_sentences(replace(config, train_share=0.5), exclude=set())
    assert len(half["train"]) == 100
    assert {source for source, _ in half["train"]} == set(SOURCES)
    for split in ("dev", "test", "heldout"):
        assert half[split] == whole[split], split
    with pytest.raises(ValueError, match="corpus.train_share"):
        corpus_sentences(replace(config, train_share=0.0), exclude=set())


def test_mixing_repeats_and_samples_by_weight(tmp_path, capsys):
    write_noise_corpus(tmp_path, "extra", 10, seed=1)
    twice = mixed_entries((f"{tmp_path / 'extra'}:2",), seed=0)
    assert len(twice) == 20 and len({e.id for e in twice}) == 10
    half = mixed_entries((f"{tmp_path / 'extra'}:0.5",), seed=0)
    assert len(half) == 5 and half == mixed_entries((f"{tmp_path / 'extra'}:0.5",), seed=0)
    assert "x 2 -> 20" in capsys.readouterr().out
    with pytest.raises(ValueError, match="no such folder"):
        mixed_entries((f"{tmp_path / 'missing'}:1",), seed=0)
