"""Output formats (text, JSON, SRT, WebVTT), the detailed WER report, and the CLI options
that produce them (--format, --output-dir, manifests, --report, --alignment)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.decoding.alignment import Word
from asr.inference.checkpoint import checkpoint_meta
from asr.inference.recognizer import Transcript
from asr.inference.outputs import alignment_text, error_report, render, subtitle_cues, timestamp, to_srt, to_vtt
from asr.inference.stream import Segment
from asr.text.wer import word_errors
from models import tiny_untrained_model


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread


WORDS = [Word("HELLO", 0.5, 0.9, 0.9), Word("THERE", 1.0, 1.4, 0.8), Word("GENERAL", 3.0, 3.6, 0.7)]


def test_timestamps_format():
    assert timestamp(0) == "00:00:00,000"
    assert timestamp(3661.5) == "01:01:01,500"
    assert timestamp(59.9996, ".") == "00:01:00.000"  # rounds to the millisecond, carrying over
    assert timestamp(7325.042, ".") == "02:02:05.042"


def test_cues_break_at_pauses_length_and_duration():
    assert [c.text for c in subtitle_cues(WORDS)] == ["HELLO THERE", "GENERAL"]  # 1.6 s pause
    many = [Word(f"W{i}", i * 0.5, i * 0.5 + 0.4, 1.0) for i in range(30)]
    cues = subtitle_cues(many, max_chars=20, max_seconds=5.0)
    assert all(len(c.text) <= 20 for c in cues)
    assert " ".join(c.text for c in cues) == " ".join(w.text for w in many)  # nothing lost
    assert all(c.end - c.start <= 5.0 for c in subtitle_cues(many, max_chars=1000))


def test_srt_and_vtt():
    srt = to_srt(WORDS)
    assert srt == "1\n00:00:00,500 --> 00:00:01,400\nHELLO THERE\n\n2\n00:00:03,000 --> 00:00:03,600\nGENERAL\n"
    vtt = to_vtt(WORDS)
    assert vtt.startswith("WEBVTT\n\n00:00:00.500 --> 00:00:01.400\nHELLO THERE\n")


def test_json_has_timed_words_with_confidence():
    transcript = Transcript(
        "HELLO THERE GENERAL", 4.0, tuple(WORDS), (Segment(0.0, 4.0, "HELLO THERE GENERAL", tuple(WORDS)),)
    )
    data = json.loads(render("json", "utt1", transcript))
    assert data["id"] == "utt1" and data["text"] == "HELLO THERE GENERAL" and data["duration"] == 4.0
    assert data["words"][1] == {"word": "THERE", "start": 1.0, "end": 1.4, "confidence": 0.8}
    assert render("text", "utt1", transcript) == "utt1\tHELLO THERE GENERAL\n"


def test_error_report_agrees_with_wer_counts():
    refs = {"a": "the cat sat on the mat", "b": "hello world", "c": "one two three", "d": "x"}
    hyps = {"a": "the bat sat on mat", "b": "", "c": "one too three four", "d": "x"}
    report = error_report(refs, hyps)
    totals = word_errors([refs[k] for k in hyps], list(hyps.values()))
    ops = [op for utt in report.utterances for op in utt.ops]
    assert (ops.count("S"), ops.count("D"), ops.count("I")) == (
        totals.substitutions,
        totals.deletions,
        totals.insertions,
    )
    assert {(r, h) for r, h, _ in report.substitutions} == {("CAT", "BAT"), ("TWO", "TOO")}
    assert dict(report.deletions) == {"THE": 1, "HELLO": 1, "WORLD": 1}
    assert dict(report.insertions) == {"FOUR": 1}
    text = alignment_text(report)
    assert "c (S=1 D=0 I=1 N=3)\nREF: ONE TWO THREE ****\nHYP: ONE TOO THREE FOUR\n         S         I" in text


# the command line -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny untrained model file and three short audio files with references."""
    recipe, tokenizer, model = tiny_untrained_model()
    root = tmp_path_factory.mktemp("cli")
    model_path = root / "model.pt"
    torch.save({**checkpoint_meta(recipe, tokenizer), "state_dict": model.state_dict()}, model_path)
    rng = np.random.default_rng(0)
    audio = root / "audio" / "sub"
    audio.mkdir(parents=True)
    paths = []
    for i, seconds in enumerate([1.5, 2.5, 2.0]):
        path = audio / f"utt{i}.flac"
        sf.write(path, (0.3 * rng.standard_normal(int(seconds * 16000))).astype(np.float32), 16000, subtype="PCM_16")
        paths.append(path)
    ref = root / "ref.txt"
    ref.write_text("utt0 THE QUICK FOX\nutt1 JUMPS OVER\nutt2 THE LAZY DOG\n")
    return model_path, paths, ref


def test_subtitles_and_json_per_file(setup, tmp_path, capsys):
    from asr.cli.transcribe import main

    model_path, paths, _ = setup
    assert (
        main(["--model", str(model_path), "--format", "srt", "--output-dir", str(tmp_path), str(paths[0].parents[1])])
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in out] == ["utt0", "utt1", "utt2"]  # folder searched recursively
    for line in out:
        utt_id, text = line.split("\t")
        srt = (tmp_path / f"{utt_id}.srt").read_text()
        cues = re.findall(r"^\d+\n(\d\d:\d\d:\d\d,\d\d\d) --> (\d\d:\d\d:\d\d,\d\d\d)\n(.+)$", srt, re.M)
        assert " ".join(c[2] for c in cues) == text != ""
        assert all(a <= b for a, b, _ in cues)
    manifest = tmp_path / "list.jsonl"
    manifest.write_text("".join(json.dumps({"id": f"m{i}", "audio": str(p)}) + "\n" for i, p in enumerate(paths)))
    assert main(["--model", str(model_path), "--format", "json", str(manifest)]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in records] == ["m0", "m1", "m2"]
    for record, line in zip(records, out):
        assert record["text"] == line.split("\t")[1]  # same audio, same text in every format
        assert record["duration"] == pytest.approx(sf.info(paths[int(record["id"][1])]).duration, abs=1e-3)
        assert [w["word"] for w in record["words"]] == record["text"].split()
        assert all(0 <= w["start"] < w["end"] <= record["duration"] + 0.05 for w in record["words"])


def test_report_and_alignment_files(setup, tmp_path, capsys):
    from asr.cli.transcribe import main

    model_path, paths, ref = setup
    report, alignment = tmp_path / "wer.json", tmp_path / "align.txt"
    args = ["--model", str(model_path), "--ref", str(ref), "--report", str(report), "--alignment", str(alignment)]
    assert main([*args, *map(str, paths)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1].startswith("WER ")
    figures = json.loads(report.read_text())
    assert figures["words"] == 8 and {"top_substitutions", "top_deletions", "top_insertions"} <= set(figures)
    counted = sum(e["count"] for e in figures["top_substitutions"])
    assert counted == figures["substitutions"]  # fewer than 20 distinct errors: all listed
    blocks = alignment.read_text().split("\n\n")
    assert [b.split(" ")[0] for b in blocks] == ["utt0", "utt1", "utt2"]


def test_subtitles_need_an_output_dir_for_several_inputs(setup, capsys):
    from asr.cli.transcribe import main

    model_path, paths, _ = setup
    assert main(["--model", str(model_path), "--format", "vtt", *map(str, paths)]) == 2
    assert "needs --output-dir" in capsys.readouterr().err


def test_transcript_show_and_save_draw_the_figure(setup, tmp_path):
    """Transcript.show and .save, on what Recognizer.transcribe returns: a real PNG of the
    figure's size, and the same three panels (waveform, log-mel, posteriors) on screen."""
    import matplotlib

    matplotlib.use("Agg")  # headless: show() opens nothing
    import matplotlib.image
    import matplotlib.pyplot as plt

    from asr.inference.recognizer import load_model

    model_path, paths, _ = setup
    transcript = load_model(model_path).transcribe(paths[1])
    assert transcript.trace is not None and transcript.text
    saved = transcript.save(tmp_path / "utt1.png")
    assert saved == tmp_path / "utt1.png" and saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(saved)  # (H, W, 4)
    assert pixels.shape[2] == 4 and pixels.shape[0] > 300 and pixels.shape[1] > 500
    assert pixels[..., :3].std() > 0.05  # something is drawn, not a blank page
    fig = transcript.show()
    try:
        assert len(fig.axes) == 3
        assert fig.axes[2].get_xlim() == pytest.approx((0, transcript.duration), abs=0.05)  # time axis: the audio
        assert transcript.text[:20] in fig.get_suptitle()
    finally:
        plt.close(fig)


def test_two_files_with_one_name_are_named_not_overwritten(setup, tmp_path, capsys):
    """a/utt0.flac and b/utt0.flac would share the id utt0: the second is named and skipped,
    so --output-dir keeps the first's result and --ref scores each id once."""
    import shutil

    from asr.cli.transcribe import main

    model_path, paths, ref = setup
    other = tmp_path / "b"
    other.mkdir()
    shutil.copyfile(paths[1], other / "utt0.flac")  # other audio, same name as paths[0]
    listing = tmp_path / "list.txt"
    listing.write_text(f"{paths[0]}\n{other / 'utt0.flac'}\n")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code = main(["--model", str(model_path), "--greedy", "--output-dir", str(out_dir), f"@{listing}"])
    captured = capsys.readouterr()
    assert code == 1  # one input could not be transcribed as asked
    named = f"{other / 'utt0.flac'}: id 'utt0' is also {paths[0]}'s"
    assert captured.err.count("error: ") == 1 and named in captured.err
    assert [line.split("\t")[0] for line in captured.out.splitlines()] == ["utt0"]
    alone = main(["--model", str(model_path), "--greedy", str(paths[0])])
    assert (out_dir / "utt0.txt").read_text().strip().split("\t")[-1] == capsys.readouterr().out.split("\t")[1].strip()
    assert alone == 0
