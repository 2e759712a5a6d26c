"""Beam search with an n-gram LM and hotwords: an LM built by ``asr.cli.lm`` from a tiny text
settles an acoustic tie the way its counts say; hotwords bring back a word the acoustics
lose without touching an utterance that does not contain it; bad LM files are one error
naming the file; streaming through the recognizer equals whole-utterance decoding."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("flashlight.lib.text.decoder", reason="the beam search needs flashlight-text (requirements-lm.txt)")

from asr.cli import lm as lm_cli  # noqa: E402
from asr.decoding import greedy_decode  # noqa: E402
from asr.decoding.ctc_beam import CTCBeamDecoder  # noqa: E402
from asr.decoding.lm import LMError  # noqa: E402
from asr.decoding.options import DecodingOptions  # noqa: E402
from asr.text.tokenizer import Tokenizer  # noqa: E402


FIRST_TOOL = {"kenlm": "lmplz", "irstlm": "tlm"}


def installed(tool: str) -> bool:
    finder = lm_cli.irstlm_tool if tool == "tlm" else lm_cli.kenlm_tool
    try:
        finder(tool, None)
        return True
    except FileNotFoundError:
        return False


ESTIMATORS = [name for name, tool in FIRST_TOOL.items() if installed(tool)]
needs_estimator = pytest.mark.skipif(not ESTIMATORS, reason="no n-gram estimator (KenLM or IRSTLM) is installed")
needs_build_binary = pytest.mark.skipif(not installed("build_binary"), reason="KenLM's build_binary is not installed")


def require(estimator: str) -> None:
    """Skip a test of an absent estimator, but fail when neither is there: one must be."""
    if not ESTIMATORS:
        pytest.fail("neither KenLM's lmplz nor IRSTLM's tlm is installed: run scripts/setup.sh")
    if estimator not in ESTIMATORS:
        pytest.skip(f"{estimator} is not installed (only {', '.join(ESTIMATORS)})")


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.train(["THE CAT SAT ON THE COT", "ZED SAW A RED DOG"], 40, "char")


def emissions(tokenizer: Tokenizer, frames: list[dict[str, float]]) -> torch.Tensor:
    """One frame per dict (piece -> probability; the rest shares what is left), each followed
    by a blank frame -> (T, V) log-probs."""
    vocab = tokenizer.vocab_size
    pieces = {tokenizer.piece(i): i for i in range(vocab)}
    rows = []
    for frame in frames:
        for spec in (frame, {"<b>": 0.95}):
            row = torch.full((vocab,), (1 - sum(spec.values())) / (vocab - len(spec)))
            for piece, p in spec.items():
                row[pieces[piece]] = p
            rows.append(row)
    return torch.stack(rows).log()


def spell(tokenizer: Tokenizer, text: str, ambiguous: dict[str, dict[str, float]] | None = None) -> torch.Tensor:
    """Confident frames for each piece of ``text``; a character in ``ambiguous`` gets its dict."""
    frames = []
    for token in tokenizer.encode(text):
        piece = tokenizer.piece(token)
        frames.append((ambiguous or {}).get(piece, {piece: 0.9}))
    return emissions(tokenizer, frames)


def text_of(tokenizer, decoder, log_probs) -> str:
    return tokenizer.decode(decoder.decode(log_probs))


def build_lm(tmp_path: Path, name: str, lines: list[str], estimator: str = "auto", prune: tuple = ()) -> str:
    """-> the LM the CLI made: the KenLM binary where build_binary is installed, else the ARPA."""
    text = tmp_path / f"{name}.txt"
    text.write_text("\n".join(lines) + "\n")
    args = ["--out", str(tmp_path / name), "--text", str(text), "--order", "2", "--estimator", estimator]
    assert lm_cli.main([*args, "--prune", *map(str, prune)]) == 0
    binary = tmp_path / f"{name}.bin"
    return str(binary if binary.exists() else tmp_path / f"{name}.arpa")


def arpa_ngrams(path: Path, order: int) -> set[str]:
    """The n-grams (words joined by spaces) of one order of an ARPA file."""
    section = path.read_text().split(f"\\{order}-grams:\n")[1].split("\n\n")[0].split("\\end\\")[0]
    return {line.split("\t")[1] for line in section.splitlines() if line.strip()}


@pytest.mark.parametrize("estimator", ["kenlm", "irstlm"])
def test_tiny_lm_settles_a_tie_the_way_its_counts_say(tokenizer, tmp_path, estimator):
    require(estimator)
    tie = spell(tokenizer, "THE CAT", {"A": {"A": 0.45, "O": 0.45}})  # CAT or COT: the acoustics cannot tell
    cot = build_lm(tmp_path, "cot", ["THE COT"] * 9 + ["THE CAT"], estimator)
    cat = build_lm(tmp_path, "cat", ["THE CAT"] * 9 + ["THE COT"], estimator)
    assert text_of(tokenizer, CTCBeamDecoder(tokenizer, 8, DecodingOptions(lm=cot)), tie) == "THE COT"
    assert text_of(tokenizer, CTCBeamDecoder(tokenizer, 8, DecodingOptions(lm=cat)), tie) == "THE CAT"
    arpa = tmp_path / "cot.arpa"  # kept beside any binary, its words beside it: the decoder takes it as it is
    assert text_of(tokenizer, CTCBeamDecoder(tokenizer, 8, DecodingOptions(lm=str(arpa))), tie) == "THE COT"
    assert (tmp_path / "cot.arpa.words").read_text().split() == ["CAT", "COT", "THE"]
    assert {"<s> THE", "THE COT", "THE CAT", "COT </s>", "CAT </s>"} <= arpa_ngrams(arpa, 2)


@pytest.mark.parametrize("estimator", ["kenlm", "irstlm"])
def test_prune_drops_singletons_above_unigrams(tmp_path, estimator):
    require(estimator)
    build_lm(tmp_path, "lm", ["THE COT"] * 9 + ["THE CAT"], estimator, prune=(0, 1))
    bigrams = arpa_ngrams(tmp_path / "lm.arpa", 2)
    assert {"<s> THE", "THE COT", "COT </s>"} <= bigrams and not bigrams & {"THE CAT", "CAT </s>"}
    assert "CAT" in arpa_ngrams(tmp_path / "lm.arpa", 1)  # a unigram seen once stays: 0 for order 1


def test_a_missing_estimator_is_one_error_line_saying_how_to_get_it(tmp_path, capsys):
    text, empty = tmp_path / "lm.txt", tmp_path / "no-tools"
    text.write_text("THE CAT\n")
    empty.mkdir()
    base = ["--out", str(tmp_path / "lm"), "--text", str(text), "--kenlm-bin", str(empty), "--irstlm-bin", str(empty)]
    for estimator, says in (
        ("irstlm", f"error: tlm not found in {empty}: apt-get install irstlm or pass --irstlm-bin"),
        ("kenlm", f"error: lmplz not found in {empty}: build KenLM (scripts/setup.sh) or pass --kenlm-bin"),
        ("auto", "error: no n-gram estimator: neither KenLM's lmplz (scripts/setup.sh builds it; or --kenlm-bin) "
                 "nor IRSTLM's tlm (apt-get install irstlm; or --irstlm-bin)"),
    ):  # fmt: skip
        assert lm_cli.main([*base, "--estimator", estimator]) == 1
        assert capsys.readouterr().err == says + "\n"
    assert not (tmp_path / "lm.arpa").exists()


@pytest.mark.skipif("irstlm" not in ESTIMATORS, reason="IRSTLM is not installed")
def test_without_build_binary_the_arpa_is_the_lm(tmp_path, capsys):
    text, empty = tmp_path / "lm.txt", tmp_path / "no-kenlm"
    text.write_text("THE CAT\nTHE COT\n")
    empty.mkdir()
    args = ["--out", str(tmp_path / "lm"), "--text", str(text), "--estimator", "irstlm", "--kenlm-bin", str(empty)]
    assert lm_cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "irstlm, improved Kneser-Ney, no build_binary: ARPA only" in printed and f"{tmp_path / 'lm.arpa'} 0.00 MiB" in printed
    assert not (tmp_path / "lm.bin").exists() and (tmp_path / "lm.arpa.words").read_text() == "CAT\nCOT\nTHE\n"


def hotword_cases(tokenizer):
    missed = spell(tokenizer, "THE ZED", {"Z": {"S": 0.5, "Z": 0.4}})  # greedy hears "SED"
    control = spell(tokenizer, "THE CAT SAT")
    return missed, control


def test_hotword_recovers_a_missed_word_and_leaves_others(tokenizer):
    missed, control = hotword_cases(tokenizer)
    greedy = tokenizer.decode(greedy_decode(missed[None], torch.tensor([len(missed)]))[0])
    assert greedy == "THE SED"
    boosted = CTCBeamDecoder(tokenizer, 8, DecodingOptions(hotwords=("zed",)))
    assert text_of(tokenizer, boosted, missed) == "THE ZED"
    assert text_of(tokenizer, boosted, control) == "THE CAT SAT"
    assert text_of(tokenizer, CTCBeamDecoder(tokenizer, 8), missed) == "THE SED"  # the bonus did it


@needs_estimator
def test_hotword_outside_the_lexicon_with_an_lm(tokenizer, tmp_path):
    missed, control = hotword_cases(tokenizer)
    lm = build_lm(tmp_path, "lm", ["THE CAT SAT", "THE SED SAT", "THE CAT"])  # no ZED anywhere
    plain = CTCBeamDecoder(tokenizer, 8, DecodingOptions(lm=lm))
    boosted = CTCBeamDecoder(tokenizer, 8, DecodingOptions(lm=lm, hotwords=("ZED",), hotword_weight=3.0))
    assert text_of(tokenizer, plain, missed) == "THE SED"
    assert text_of(tokenizer, boosted, missed) == "THE ZED"
    assert text_of(tokenizer, boosted, control) == text_of(tokenizer, plain, control) == "THE CAT SAT"


def test_missing_and_corrupt_lm_files_are_one_error_naming_them(tokenizer, tmp_path):
    missing = tmp_path / "missing.bin"
    with pytest.raises(LMError, match=f"^{missing}: no such language model file$"):
        CTCBeamDecoder(tokenizer, 8, DecodingOptions(lm=str(missing)))
    corrupt = tmp_path / "corrupt.bin"
    corrupt.write_bytes(b"\x00\x01 this is no language model\n")
    (tmp_path / "corrupt.bin.words").write_text("THE\nCAT\n")
    with pytest.raises(LMError) as err:
        CTCBeamDecoder(tokenizer, 8, DecodingOptions(lm=str(corrupt)))
    assert str(err.value).startswith(f"{corrupt}: not a KenLM language model") and "\n" not in str(err.value)
    truncated = tmp_path / "truncated.arpa"
    truncated.write_text("\\data\\\nngram 1=5\n\n\\1-grams:\n-1.0\tTHE\n")
    with pytest.raises(LMError, match=f"^{truncated}: not a KenLM language model"):
        CTCBeamDecoder(tokenizer, 8, DecodingOptions(lm=str(truncated)))


@needs_estimator
def test_streaming_with_lm_equals_whole_utterance(tmp_path):
    from models import tiny_untrained_model

    from asr.inference.options import TranscribeOptions
    from asr.inference.recognizer import Recognizer

    recipe, tokenizer, model = tiny_untrained_model()
    lm = build_lm(tmp_path, "lm", ["THE QUICK BROWN FOX", "THE LAZY DOG", "JUMPS OVER THE DOG"] * 3)
    recognizer = Recognizer(recipe, tokenizer, model)
    wave = torch.randn(3 * 16000, generator=torch.Generator().manual_seed(3)) * 0.1  # one 3 s segment
    texts = []
    for decoding in (DecodingOptions(hotwords=("QUICK FOX",)), DecodingOptions(lm=lm, lm_weight=0.5, word_score=1.0)):
        options = TranscribeOptions(chunk_ms=320, beam_width=8, decoding=decoding, rescore=False)
        streamed = recognizer.transcribe(wave, options, trace=False)  # chunk by chunk, partial results on the way
        whole = recognizer.transcribe_batch([wave], options)[0]  # all frames in one step
        assert streamed.text == whole.text
        texts.append(streamed.text)
    assert texts[0], "the untrained model must say something for the comparison to mean anything"
    assert set(texts[1].split()) <= {"THE", "QUICK", "BROWN", "FOX", "LAZY", "DOG", "JUMPS", "OVER"}


TINY_ARPA = (
    "\\data\\\nngram 1=4\nngram 2=3\n\n"
    "\\1-grams:\n-99\t<s>\t-0.3\n-0.5\t</s>\n-1.0\tTHE\t-0.3\n-0.7\tCAT\t-0.3\n\n"
    "\\2-grams:\n-0.1\t<s> THE\n-0.1\tTHE CAT\n-0.1\tCAT </s>\n\n\\end\\\n"
)


@pytest.fixture
def openslr11(tmp_path):
    """OpenSLR 11's layout on 127.0.0.1: a gzipped ARPA, a lexicon, and their md5sum.txt."""
    import functools
    import gzip
    import hashlib
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    served = tmp_path / "served"
    served.mkdir()
    (served / "3-gram.arpa.gz").write_bytes(gzip.compress(TINY_ARPA.encode()))
    (served / "librispeech-lexicon.txt").write_text("CAT\tK AE1 T\nTHE\tDH AH0\n")
    table = "".join(f"{hashlib.md5(p.read_bytes()).hexdigest()}  {p.name}\n" for p in sorted(served.iterdir()))
    (tmp_path / "md5sum.txt").write_text(table)
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(served))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", tmp_path / "md5sum.txt", served
    server.shutdown()


@needs_build_binary
def test_librispeech_lms_download_checked_and_decode(openslr11, tmp_path, tokenizer):
    url, md5, _ = openslr11
    out = tmp_path / "lm"
    files = ["3-gram.arpa.gz", "librispeech-lexicon.txt"]
    assert lm_cli.main(["--librispeech", str(out), "--url", url, "--md5-file", str(md5), "--files", *files]) == 0
    assert (out / "3-gram.bin").is_file() and (out / "librispeech-lexicon.txt").read_text().startswith("CAT")
    decoder = CTCBeamDecoder(tokenizer, 8, DecodingOptions(lm=str(out / "3-gram.bin"), lexicon=str(out / files[1])))
    assert text_of(tokenizer, decoder, spell(tokenizer, "THE CAT")) == "THE CAT"


def test_librispeech_lm_download_refuses_a_bad_checksum(openslr11, tmp_path, capsys):
    url, md5, served = openslr11
    (served / "librispeech-lexicon.txt").write_text("TAMPERED\n")
    out = tmp_path / "lm"
    args = ["--librispeech", str(out), "--url", url, "--md5-file", str(md5), "--files", "librispeech-lexicon.txt"]
    assert lm_cli.main(args) == 1
    assert "librispeech-lexicon.txt: corrupted download refused" in capsys.readouterr().err
    assert not (out / "librispeech-lexicon.txt").exists()
    assert lm_cli.main(["--librispeech", str(out), "--url", url, "--files", "librispeech-lexicon.txt"]) == 1


@pytest.mark.parametrize("estimator", ["kenlm", "irstlm"])
def test_a_relative_output_path_works(tmp_path, monkeypatch, estimator):
    """The main job writes exp/demo/lm/words3 from the repository root: a relative --out."""
    require(estimator)
    monkeypatch.chdir(tmp_path)
    Path("text.txt").write_text("THE COT\nTHE CAT\nTHE COT\n")
    args = ["--out", "exp/lm/words2", "--text", "text.txt", "--order", "2", "--estimator", estimator]
    assert lm_cli.main(args) == 0
    assert "THE COT" in arpa_ngrams(Path("exp/lm/words2.arpa"), 2)
    assert [p.name for p in Path("exp/lm").iterdir() if p.is_dir()] == []  # no scratch folder left


@needs_estimator
def test_a_word_lm_at_beam_1_is_one_clear_error_not_empty_text(tokenizer, tmp_path):
    """A word-LM search one hypothesis wide ends mid-word and drops words (the main job's model
    gave 9 empty results of 61 at beam 1): it is refused in one line; from 8 on it spells the words."""
    lm = build_lm(tmp_path, "lm", ["THE CAT SAT", "THE COT"])
    for beam in (1, 4):
        with pytest.raises(ValueError, match=f"needs a beam of at least 8, not {beam}: narrower ones drop whole words"):
            CTCBeamDecoder(tokenizer, beam, DecodingOptions(lm=lm))
    decoder = CTCBeamDecoder(tokenizer, 8, DecodingOptions(lm=lm))
    assert text_of(tokenizer, decoder, spell(tokenizer, "THE CAT SAT")) == "THE CAT SAT"


@needs_estimator
def test_an_arpa_lm_loads_quietly(tokenizer, tmp_path, capfd):
    build_lm(tmp_path, "lm", ["THE CAT SAT", "THE COT"])
    capfd.readouterr()
    decoder = CTCBeamDecoder(tokenizer, 8, DecodingOptions(lm=str(tmp_path / "lm.arpa")))
    assert text_of(tokenizer, decoder, spell(tokenizer, "THE CAT")) == "THE CAT"
    printed = capfd.readouterr()
    assert printed.err == "" and printed.out == ""


@needs_estimator
def test_hotwords_add_to_the_models_lm(tokenizer, tmp_path):
    """The model's tuned LM stays in the search when a caller adds hotwords, a beam width or weights."""
    from models import tiny_untrained_model

    from asr.inference.options import ModelDecoding, TranscribeOptions
    from asr.inference.recognizer import Recognizer

    lm = build_lm(tmp_path, "cot", ["THE COT"] * 9 + ["THE CAT"])
    recipe, _, model = tiny_untrained_model()
    recognizer = Recognizer(recipe, tokenizer, model, decoding=ModelDecoding(8, DecodingOptions(lm=lm, lm_weight=2.0)))
    leaning = spell(tokenizer, "THE CAT", {"A": {"A": 0.47, "O": 0.43}})  # the acoustics lean to CAT, the LM to COT
    assert recognizer.decode_text(leaning, TranscribeOptions(greedy=True)) == "THE CAT"
    assert recognizer.decode_text(leaning) == "THE COT"  # the model's default: beam 8 + its LM
    for asked in (DecodingOptions(hotwords=("ZED",), hotword_weight=1.0), DecodingOptions(lm_weight=2.0), None):
        options = TranscribeOptions(beam_width=8, decoding=asked)
        assert recognizer.decoding_plan(options)[1].lm == lm
        assert recognizer.decode_text(leaning, options) == "THE COT"
    assert recognizer.decode_text(leaning, TranscribeOptions(decoding=DecodingOptions(lm=""))) == "THE CAT"


def test_a_decoding_config_names_a_missing_lm_in_one_error(tmp_path):
    from asr.inference.options import decoding_defaults

    (tmp_path / "decoding.json").write_text('{"lm": "lm/words3.arpa", "lm_weight": 0.7, "beam_width": 32}')
    with pytest.raises(ValueError, match=r"decoding.json: not a usable decoding config: its lm .*arpa is missing"):
        decoding_defaults(tmp_path / "model.pt")
    (tmp_path / "lm").mkdir()
    (tmp_path / "lm" / "words3.arpa").write_text("")
    found = decoding_defaults(tmp_path / "model.pt")
    assert found.beam_width == 32 and found.decoding.lm == str(tmp_path / "lm" / "words3.arpa")


def test_an_exported_folder_carries_its_lm_and_can_move(tmp_path):
    import gzip

    from asr.cli.export import copy_decoding_defaults
    from asr.inference.options import decoding_defaults

    train = tmp_path / "exp"
    (train / "lm").mkdir(parents=True)
    (train / "lm" / "words3.arpa").write_text("arpa")
    (train / "lm" / "words3.arpa.words").write_text("THE\nCAT\n")
    config = '{"lm": "lm/words3.arpa", "lm_weight": 0.7, "word_score": 1, "beam_width": 16}'
    (train / "decoding.json").write_text(config)
    out = tmp_path / "onnx"
    out.mkdir()
    copy_decoding_defaults(train / "model.pt", out)
    moved = tmp_path / "elsewhere" / "model"
    moved.parent.mkdir()
    out.rename(moved)
    (train / "lm" / "words3.arpa").unlink()  # nothing points back into the training tree
    found = decoding_defaults(moved)
    assert Path(found.decoding.lm) == moved / "lm" / "words3.arpa.gz"  # an ARPA travels gzipped
    assert gzip.decompress(Path(found.decoding.lm).read_bytes()) == b"arpa"
    assert (moved / "lm" / "words3.arpa.gz.words").read_text() == "THE\nCAT\n"
    assert (found.beam_width, found.decoding.lm_weight, found.decoding.word_score) == (16, 0.7, 1)
