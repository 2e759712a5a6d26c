"""Text normalization, tokenizer round trip and WER counts."""

import pytest

from asr.text.normalize import normalize_text
from asr.text.tokenizer import Tokenizer
from asr.text.wer import score, word_errors


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Don't stop, 'Bob'!", "DON'T STOP BOB"),
        ("  Hello,\tworld; again.  ", "HELLO WORLD AGAIN"),
        ("it's the dogs' toy", "IT'S THE DOGS TOY"),
        ("re-entrant x2", "RE ENTRANT X"),
        ("", ""),
    ],
)
def test_normalize_text(raw, expected):
    assert normalize_text(raw) == expected


def test_tokenizer_round_trip_and_blank():
    texts = ["THE CAT SAT ON THE MAT", "A DOG'S LIFE IS GOOD", "RETURN THE VALUE OF THE FUNCTION"] * 5
    tok = Tokenizer.train(texts, vocab_size=40, kind="bpe")
    for text in texts[:3] + ["THE DOG SAT"]:
        ids = tok.encode(text)
        assert 0 not in ids  # 0 is the CTC blank
        assert max(ids) < tok.vocab_size
        assert tok.decode(ids) == text
    assert tok.decode([0, *tok.encode("THE CAT"), 0]) == "THE CAT"  # blanks are ignored
    again = Tokenizer(tok.model_proto)  # rebuilt from bytes, as from a checkpoint
    assert again.encode("THE MAT") == tok.encode("THE MAT")


def test_char_tokenizer():
    tok = Tokenizer.train(["ABC ABD", "BAD CAB"], vocab_size=100, kind="char")
    assert tok.decode(tok.encode("CAB BAD")) == "CAB BAD"


def test_wer_counts_after_normalization():
    result = word_errors(["the cat sat on the mat", "Hello world"], ["THE CAT SAT ON MAT!", "hello, big world"])
    # deletion of THE; insertion of BIG; 8 reference words
    assert (result.substitutions, result.deletions, result.insertions, result.words) == (0, 1, 1, 8)
    assert result.wer == pytest.approx(2 / 8)


def test_score_counts_missing_hypothesis_as_deletions():
    refs = {"a": "ONE TWO THREE", "b": "FOUR FIVE", "c": "NOT ASKED"}
    result = score(refs, {"a": "one two three", "b": ""})
    assert (result.deletions, result.words, result.utterances) == (2, 5, 2)


def test_training_utterances_with_unknown_characters_are_skipped_and_named():
    from asr.config import RecipeConfig
    from asr.data.datamodule import filter_entries
    from asr.data.manifest import Entry

    tok = Tokenizer.train(["ABC ABD", "BAD CAB"], vocab_size=100, kind="char")  # knows A B C D only
    entries = [Entry("ok", "a.flac", 3.0, "CAB BAD"), Entry("odd", "b.flac", 3.0, "ZEBRA"), Entry("nil", "c.flac", 3.0, "")]
    kept, report = filter_entries(entries, RecipeConfig(), tok)
    assert [e.id for e in kept] == ["ok"]
    assert "skipped 1 utterances (characters the tokenizer does not know): odd" in report
    assert "skipped 1 utterances (empty transcript): nil" in report
