"""Everyday-English text sources: cleaning rules on hand-written examples, the normalize_text
round trip, evaluation prompts out, seeded disjoint splits, and >= 500 sentences per source."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from asr.corpus.text_sources import (
    SOURCES,
    clean_sentences,
    drop_eval_prompts,
    everyday_sentences,
    spell_numbers,
    split_sentences,
    year_words,
)
from asr.corpus.text_sources.cleaning import unique_sorted
from asr.corpus.text_sources.prompts import EvalPrompts
from asr.text import normalize_text


def _clean(text: str) -> list[str]:
    return list(clean_sentences(text))


def test_stage_notes_and_markup_are_dropped():
    assert _clean("We will not fail. (Applause.) And we will win this war today!") == [
        "We will not fail.", "And we will win this war today!"]
    assert _clean("[laughter] That is a good one, isn't it?") == ["That is a good one, isn't it?"]
    assert _clean('<w lemma="x">Jesus</w> <w>wept</w> <w>again</w>, <note>a note</note>then slept.') == [
        "Jesus wept again, then slept."]


def test_attributions_urls_and_emails_are_dropped():
    assert _clean("Never trust a man who cannot spell.\n\t\t-- Mark Twain") == ["Never trust a man who cannot spell."]
    assert _clean("Read it at http://example.com today. Mail me at bob@example.org now. That is all there is.") == [
        "That is all there is."]


def test_numbers_years_and_currency_are_spelled_out():
    assert year_words(1999) == "nineteen ninety nine"
    assert year_words(1905) == "nineteen oh five"
    assert year_words(2007) == "two thousand seven"
    assert year_words(1800) == "eighteen hundred"
    assert spell_numbers("In 1999 it cost $5 & rose 3%") == (
        "In nineteen ninety nine it cost five dollars and rose three percent")
    assert spell_numbers("the 21st time, $2.50 each, 1,234 people") == (
        "the twenty first time, two dollars and fifty cents each, one thousand two hundred thirty four people")
    assert spell_numbers("the 1960s and $3 million") == "the nineteen sixties and three million dollars"


def test_rejects_are_counted_by_rule():
    dropped = Counter()
    text = "Hi. The USA is big. Call 5551234567890 now please. Tokyo is 東京 in Japan."
    kept = list(clean_sentences(text, dropped))
    assert kept == []
    assert dropped == Counter({"length": 1, "acronym/caps": 1, "digits": 1, "symbols/non-latin": 1})


def test_kept_sentences_survive_normalize_text_whole():
    text = ("Mr. Smith paid $12 on the 3rd of May, 2004 -- for a café au lait! "
            "\u201cDon't stop,\u201d she said; 'tis true. Rock & roll lives on in 1985.")
    kept = _clean(text)
    assert len(kept) == 3
    for sentence in kept:
        words = normalize_text(sentence).split()
        assert 3 <= len(words) <= 20
        assert all(word.replace("'", "").isalpha() and word.isupper() for word in words)
    assert normalize_text(kept[0]) == (
        "MISTER SMITH PAID TWELVE DOLLARS ON THE THIRD OF MAY TWO THOUSAND FOUR FOR A CAFE AU LAIT")


def test_duplicates_collapse_on_the_normalized_form():
    assert unique_sorted(["Hello there, friend.", "hello there friend!", "A new one here."]) == [
        "A new one here.", "Hello there, friend."]


def test_eval_prompts_are_dropped_including_extra_and_near_copies():
    prompts = ["The birch canoe slid on the smooth planks."]
    sentences = [
        "the birch canoe slid on the smooth planks!",  # identical after normalization
        "The birch canoe slid on the smooth lake at dawn.",  # same first six words
        "At dawn the canoe slid on the smooth planks.",  # same last six words
        "Our own test set has this sentence.",  # dropped through extra
        "A canoe is a small boat.",
    ]
    kept = drop_eval_prompts(sentences, extra=["our own test set has this sentence"], prompts=prompts)
    assert kept == ["A canoe is a small boat."]


def test_installed_prompt_lists_drop_their_own_sentences(capsys):
    found = EvalPrompts.find()
    lines = capsys.readouterr().out.splitlines()
    assert len([line for line in lines if line.startswith("eval prompts:")]) == 3
    if not found.counts["harvard"]:
        pytest.skip("no Harvard sentence list installed (r-cran-stringr)")
    assert found.counts["harvard"] == 720
    assert "THE BIRCH CANOE SLID ON THE SMOOTH PLANKS" in found.prompts
    assert drop_eval_prompts(["The birch canoe slid on the smooth planks.", "Keep me here please."],
                             prompts=found.prompts) == ["Keep me here please."]


def test_splits_are_disjoint_seeded_and_keep_a_heldout_pool():
    by_source = {
        "a": [f"Sentence number {i} of a." for i in range(60)] + ["Shared by both sources."],
        "b": [f"Sentence number {i} of b." for i in range(40)] + ["shared by both sources!"],
    }
    by_source = {name: [spell_numbers(s) for s in sents] for name, sents in by_source.items()}
    splits = split_sentences(by_source, dev=5, test=6, seed=1, heldout=7)
    keys = {name: {normalize_text(s) for s in sents} for name, sents in splits.items()}
    assert sum(len(k) for k in keys.values()) == len(set().union(*keys.values())) == 60 + 40 + 1
    assert (len(splits["dev"]), len(splits["test"]), len(splits["heldout"])) == (10, 12, 14)
    assert splits == split_sentences(by_source, dev=5, test=6, seed=1, heldout=7)
    assert splits["test"] != split_sentences(by_source, dev=5, test=6, seed=2, heldout=7)["test"]


def test_everyday_sentences_is_a_seeded_sample(tmp_path, monkeypatch):
    from asr.corpus.text_sources import sources

    fake = sources.TextSource("fake", "CC0", "test", lambda: [f"This is sentence {i}." for i in range(50)])
    monkeypatch.setitem(sources.SOURCES, "fake", fake)
    first = everyday_sentences(["fake"], per_source=10, seed=3, cache_dir=tmp_path)
    assert (tmp_path / "fake.txt").exists()
    assert len(first["fake"]) == 10 and first == everyday_sentences(["fake"], 10, 3, cache_dir=tmp_path)
    assert first != everyday_sentences(["fake"], 10, 4, cache_dir=tmp_path)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_each_installed_source_yields_500_sentences(name):
    try:
        raw = list(itertools.islice(SOURCES[name].loader(), 6000))
    except FileNotFoundError as err:
        pytest.skip(f"{SOURCES[name].package} is not installed: {err}")
    kept = unique_sorted(s for text in raw for s in clean_sentences(text))
    assert len(kept) >= 500
    for sentence in kept:
        assert 3 <= len(normalize_text(sentence).split()) <= 20
        assert not any(ch.isdigit() for ch in sentence)
