"""Files from other tools: Kaldi ``text`` and ``wav.scp``-style files split on any
whitespace (a tab as often as a space), ids named twice are an error naming them, and ids on
one side only (references without audio, audio without a reference) are counted and listed.
One parser (:mod:`asr.text.kaldi`) serves ``--ref``, ``*.scp`` inputs and LibriSpeech
``*.trans.txt`` transcripts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from asr.text.kaldi import IdLinesError, parse_id_lines, read_id_lines, unmatched

WORDS = ["RED", "BLUE", "CAT", "DOG", "SUN", "MOON", "TREE", "STONE"]
pytestmark = pytest.mark.usefixtures("one_thread")


def test_any_whitespace_separates_the_id_and_the_transcript_keeps_its_own():
    lines = ["a\tRED CAT", "b  BLUE\tDOG ", "\ufeffc", "", "  \t", "d \t SUN\x85MOON", "e\r"]
    assert parse_id_lines(lines, "x") == {"a": "RED CAT", "b": "BLUE\tDOG", "\ufeffc": "", "d": "SUN\x85MOON", "e": ""}


def test_a_file_with_windows_line_ends_and_a_byte_order_mark_reads_as_plain(tmp_path):
    path = tmp_path / "text"
    path.write_bytes("\ufeffu1\tRED CAT\r\nu2 BLUE\u2028DOG\r\n\r\n".encode())
    assert read_id_lines(path) == {"u1": "RED CAT", "u2": "BLUE\u2028DOG"}  # U+2028 is no line end here


def test_duplicate_ids_are_one_error_naming_them_and_their_lines():
    with pytest.raises(IdLinesError) as err:
        parse_id_lines(["a X", "b Y", "a Z", "b W", "c V"], "ref.txt")
    assert str(err.value) == "ref.txt: 2 utterance ids appear more than once: 'a' (lines 1, 3), 'b' (lines 2, 4)"


def test_bytes_that_are_not_utf8_name_the_file_and_line(tmp_path):
    path = tmp_path / "text"
    path.write_bytes(b"a RED\nb CAT\xff\n")
    with pytest.raises(IdLinesError, match=r"text:2: not UTF-8 text \(byte 0xff\)$"):
        read_id_lines(path)


def test_ids_on_one_side_only_are_counted_and_listed():
    refs = {"a": "X", "b": "Y", "c": "Z"}
    assert unmatched(refs, ["a", "d"]) == [
        "warning: 2 references have no audio, not scored: b, c",
        "warning: 1 inputs have no reference, not scored: d",
    ]
    assert unmatched(refs, ["a", "b", "c"]) == []


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """The tiny model, six utterances of noise and their references."""
    from asr.bench.fuzz_core import write_tiny_model

    folder = tmp_path_factory.mktemp("interop")
    rng = np.random.default_rng(3)
    audio = []
    for i in range(6):
        audio.append(folder / f"utt{i}.flac")
        sf.write(audio[-1], 0.1 * rng.standard_normal(8000), 16000)
    refs = {f"utt{i}": " ".join(rng.choice(WORDS, size=3)) for i in range(6)}
    return write_tiny_model(folder / "model.pt"), audio, refs


def wer_line(capsys, model, audio, ref) -> str:
    from asr.cli.transcribe import main

    code = main(["--model", str(model), "--ref", str(ref), "--no-progress", *map(str, audio)])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0, out
    return out[-1]


def test_a_kaldi_reference_file_with_tabs_scores_as_the_one_with_spaces(scored, tmp_path, capsys):
    model, audio, refs = scored
    spaces, tabs = tmp_path / "spaces.txt", tmp_path / "tabs.txt"
    spaces.write_text("".join(f"{i} {t}\n" for i, t in refs.items()))
    tabs.write_text("".join(f"{i}\t{t}\n" for i, t in refs.items()))
    line = wer_line(capsys, model, audio, spaces)
    assert line.startswith("WER ") and "18 words, 6 utterances" in line  # every reference word was read
    assert wer_line(capsys, model, audio, tabs) == line


def test_a_reference_file_naming_an_id_twice_is_a_usage_error(scored, tmp_path, capsys):
    from asr.cli.transcribe import main

    model, audio, _ = scored
    ref = tmp_path / "text"
    ref.write_text("utt0 RED\nutt1 CAT\nutt0\tDOG\n")
    assert main(["--model", str(model), "--ref", str(ref), str(audio[0])]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {ref}: 1 utterance ids appear more than once: 'utt0' (lines 1, 3)\n"


def test_wav_scp_inputs_split_on_tabs_and_report_what_they_cannot_use(tmp_path):
    from asr.cli.inputs import manifest_inputs as _manifest_inputs

    scp = tmp_path / "wav.scp"
    scp.write_text("first\t/data/a.flac\nsecond  /data/b c.flac\nalone\n")
    errors: list[str] = []
    inputs = _manifest_inputs(scp, errors)
    assert [(i, str(p)) for i, p in inputs] == [("first", "/data/a.flac"), ("second", "/data/b c.flac")]
    assert errors == [f"{scp}: alone: no audio path"]


def test_manifest_inputs_report_duplicates_and_bytes_that_are_not_utf8(tmp_path):
    from asr.cli.inputs import manifest_inputs as _manifest_inputs

    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(json.dumps({"id": "x", "audio": f"{n}.flac"}) for n in ("a", "b")) + "\n")
    errors: list[str] = []
    assert _manifest_inputs(manifest, errors) == [("x", tmp_path.__class__("a.flac"))]
    assert errors == [f"{manifest}: utterance id 'x' appears more than once; transcribed once"]
    manifest.write_bytes(b'{"audio": "a.flac"}\n\xff\n')
    errors = []
    assert _manifest_inputs(manifest, errors) == [] and errors == [f"{manifest}:2: not UTF-8 text (byte 0xff)"]


def test_librispeech_transcripts_with_tabs_and_manifests_with_faults(tmp_path):
    from asr.data.manifest import ManifestError, read_manifest, scan_librispeech, write_manifest

    chapter = tmp_path / "train" / "1" / "2"
    chapter.mkdir(parents=True)
    for utt in ("1-2-0000", "1-2-0001"):
        sf.write(chapter / f"{utt}.flac", np.zeros(1600), 16000)
    (chapter / "1-2.trans.txt").write_text("1-2-0000\tRED CAT\n1-2-0001 \t BLUE DOG\n")
    entries, problems = scan_librispeech(tmp_path / "train")
    assert [(e.id, e.text) for e in entries] == [("1-2-0000", "RED CAT"), ("1-2-0001", "BLUE DOG")] and not problems

    manifest = write_manifest(tmp_path / "m.jsonl", entries + entries[:1])
    with pytest.raises(ManifestError, match=r"m.jsonl:3: utterance id '1-2-0000' already on line 1$"):
        read_manifest(manifest)
    for bad, why in ((b"\xff\n", "not UTF-8"), (b'{"id": "a", "audio": "x", "duration": NaN, "text": ""}\n', "duration"),
                     (b"[1]\n", "a list, not an object"), (b'{"id": 1, "audio": "x", "duration": 1, "text": ""}\n', "id")):  # fmt: skip
        manifest.write_bytes(bad)
        with pytest.raises(ManifestError, match=why):
            read_manifest(manifest)
