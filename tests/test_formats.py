"""Corpus layouts -> manifests (asr.corpus.formats): every reader is given the same three
utterances in its own layout, plus one broken row of each kind (a duplicate id, an empty
text, a missing file, unreadable audio), and must produce the same manifest and name the
same four problems. Then segments, commands, splits and the import command."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.cli import import_data
from asr.corpus.formats.build import build
from asr.corpus.formats.readers import ImportOptions, import_source
from asr.corpus.formats.rows import (BAD_LINE, DUPLICATE, EMPTY_TEXT, MISSING_FILE, NOT_ALLOWED, UNREADABLE,
                                     FormatError, Row)
from asr.corpus.formats.split import split_entries
from asr.data.manifest import Entry, read_manifest
from asr.text.tokenizer import Tokenizer

RATE = 16000
# id -> (seconds, transcript as written, speaker); the manifest holds the normalized text
GOOD = {"u1": (0.5, "Hello, world!", "ann"), "u2": (0.75, "Don't stop", "bob"), "u3": (1.0, "good  morning", "ann")}
EXPECTED = [("u1", 0.5, "HELLO WORLD"), ("u2", 0.75, "DON'T STOP"), ("u3", 1.0, "GOOD MORNING")]
BROKEN = {DUPLICATE: 1, EMPTY_TEXT: 1, MISSING_FILE: 1, UNREADABLE: 1}
SPEAKERS = {"u1": "ann", "u2": "bob", "u3": "ann"}


def tone(seconds: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype("float32")


def audio_files(folder: Path, suffix: str = ".wav") -> dict[str, Path]:
    """The three good utterances, ``mute`` (audio, no text) and ``junk`` (not audio) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for utt, (seconds, _, _) in GOOD.items():
        paths[utt] = folder / f"{utt}{suffix}"
        sf.write(paths[utt], tone(seconds), RATE)
    paths["mute"] = folder / f"mute{suffix}"
    sf.write(paths["mute"], tone(0.3), RATE)
    paths["junk"] = folder / f"junk{suffix}"
    paths["junk"].write_bytes(b"this is not audio " * 20)
    paths["gone"] = folder / f"gone{suffix}"  # never written
    return paths


def make_kaldi(root: Path) -> Path:
    paths = audio_files(root / "audio")
    src = root / "data"
    src.mkdir()
    (src / "wav.scp").write_text("".join(f"{u} {p}\n" for u, p in paths.items()))
    texts = [f"{u}\t{GOOD[u][1]}" for u in GOOD] + ["mute", "junk some words", "gone some words", "u2 said twice"]
    (src / "text").write_text("\n".join(texts) + "\n")
    (src / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in SPEAKERS.items()))
    return src


def make_nemo(root: Path) -> Path:
    paths = audio_files(root / "audio")
    lines = [{"audio_filepath": f"audio/{u}.wav", "text": GOOD[u][1], "duration": 9.9, "speaker": GOOD[u][2]}
             for u in GOOD]
    lines += [{"audio_filepath": str(paths[u]), "text": t, "duration": 1.0}
              for u, t in (("mute", ""), ("junk", "some words"), ("gone", "some words"), ("u2", "said twice"))]
    src = root / "manifest.json"
    src.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return src


def make_table(root: Path) -> Path:
    audio_files(root / "clips")
    rows = ["path,text,speaker"] + [f"clips/{u}.wav,\"{GOOD[u][1]}\",{GOOD[u][2]}" for u in GOOD]
    rows += ["clips/mute.wav,,", "clips/junk.wav,some words,", "clips/gone.wav,some words,", "clips/u2.wav,said twice,"]
    src = root / "corpus.csv"
    src.write_text("\n".join(rows) + "\n")
    return src


def make_commonvoice(root: Path) -> Path:
    audio_files(root / "clips", ".mp3")
    header = "client_id\tpath\tsentence_id\tsentence\tup_votes\tdown_votes"
    rows = [header] + [f"{GOOD[u][2]}\t{u}.mp3\tx\t{GOOD[u][1]}\t2\t0" for u in GOOD]
    rows += [f"c\t{u}.mp3\tx\t{t}\t2\t0" for u, t in (("mute", ""), ("junk", "w"), ("gone", "w"), ("u2", "again"))]
    (root / "validated.tsv").write_text("\n".join(rows) + "\n")
    return root


def make_ljspeech(root: Path) -> Path:
    audio_files(root / "wavs")
    lines = [f"{u}|{GOOD[u][1].upper()}|{GOOD[u][1]}" for u in GOOD]
    lines += ["mute||", "junk|some words|some words", "gone|some words|some words", "u2|said twice|said twice"]
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root


def make_folder(root: Path) -> Path:
    paths = audio_files(root)
    for utt in GOOD:
        paths[utt].with_suffix(".txt" if utt != "u2" else ".lab").write_text(GOOD[utt][1] + "\n")
    for utt in ("junk", "gone"):
        paths[utt].with_suffix(".txt").write_text("some words\n")
    sf.write(root / "u2.flac", tone(0.75), RATE)  # u2 a second time: a duplicate id (the first name kept)
    sf.write(root / "u2.wav", tone(2.0), RATE)
    return root


def make_lhotse(root: Path) -> Path:
    paths = audio_files(root / "audio")
    recordings, supervisions = [], []
    for utt, path in paths.items():
        seconds = GOOD.get(utt, (0.3,))[0]
        recordings.append({"id": f"rec-{utt}", "sources": [{"type": "file", "channels": [0], "source": str(path)}],
                           "sampling_rate": RATE, "num_samples": int(seconds * RATE), "duration": seconds})
    texts = {u: GOOD[u][1] for u in GOOD} | {"mute": "", "junk": "some words", "gone": "some words"}
    for utt, text in [*texts.items(), ("u2", "said twice")]:
        seconds = GOOD.get(utt, (0.3,))[0]
        supervisions.append({"id": utt, "recording_id": f"rec-{utt}", "start": 0.0, "duration": seconds,
                             "channel": 0, "text": text, "speaker": SPEAKERS.get(utt)})
    for name, items in (("recordings", recordings), ("supervisions", supervisions)):
        (root / f"corpus_{name}_train.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    return root


def make_hf(root: Path) -> Path:
    datasets = pytest.importorskip("datasets")
    paths = audio_files(root / "audio")
    ids = [*GOOD, "mute", "junk", "gone", "u2"]
    texts = [GOOD[u][1] for u in GOOD] + ["", "some words", "some words", "said twice"]
    audio = [None if u == "gone" else {"bytes": None, "path": str(paths[u])} for u in ids]  # gone: no audio at all
    data = datasets.Dataset.from_dict({"id": ids, "audio": audio, "sentence": texts,
                                       "speaker_id": [SPEAKERS.get(u, "") for u in ids]})
    data = data.cast_column("audio", datasets.Audio())
    data.save_to_disk(str(root / "saved"))  # stores each file's bytes in the dataset
    return root / "saved"


LAYOUTS = {  # format -> (maker, speakers known)
    "kaldi": (make_kaldi, True),
    "nemo": (make_nemo, True),
    "csv": (make_table, True),
    "commonvoice": (make_commonvoice, True),
    "ljspeech": (make_ljspeech, False),
    "folder": (make_folder, False),
    "lhotse": (make_lhotse, True),
    "hf": (make_hf, True),
}
OPTIONAL = {"lhotse": "lhotse", "hf": "datasets"}  # format -> the library it reads through


@pytest.mark.parametrize("fmt", list(LAYOUTS))
def test_every_layout_gives_the_same_manifest(fmt, tmp_path):
    if fmt in OPTIONAL and importlib.util.find_spec(OPTIONAL[fmt]) is None:
        pytest.skip(f"{OPTIONAL[fmt]} not installed (requirements-corpora.txt)")
    make, with_speakers = LAYOUTS[fmt]
    src = make(tmp_path / "src")
    imported = import_source(fmt, src, ImportOptions(workers=2), tmp_path / "out")
    found = [(e.id, e.duration, e.text) for e in imported.entries]
    assert found == EXPECTED, [str(p) for p in imported.problems]
    assert imported.counts() == BROKEN, [str(p) for p in imported.problems]
    assert all(Path(e.audio).is_file() for e in imported.entries)
    assert imported.speakers == (SPEAKERS if with_speakers else {})
    missing = next(p for p in imported.problems if p.kind == MISSING_FILE)
    assert "gone" in str(missing), "the row with the missing file is named"


def test_a_whole_source_in_the_wrong_layout_is_one_error(tmp_path):
    for fmt in ("kaldi", "ljspeech", "commonvoice"):
        with pytest.raises(FormatError, match=str(tmp_path)):
            import_source(fmt, tmp_path)
    (tmp_path / "t.csv").write_text("file_id,words\na.wav,hi\n")
    with pytest.raises(FormatError, match="no audio path column.*file_id, words"):
        import_source("csv", tmp_path / "t.csv")


def test_kaldi_segments_are_cut_out_of_their_recording(tmp_path):
    src = tmp_path / "data"
    src.mkdir()
    sf.write(tmp_path / "long.wav", tone(3.0), RATE)
    (src / "wav.scp").write_text(f"rec1 {tmp_path / 'long.wav'}\n")
    (src / "segments").write_text("a rec1 0.0 1.25\nb rec1 1.25 -1\nc rec1 2.5 9.0\nd rec1 zero one\ne rec9 0 1\n")
    (src / "text").write_text("a first part\nb second part\nc past the end\nd bad times\ne no recording\n")
    imported = import_source("kaldi", src, ImportOptions(workers=1), tmp_path / "out")
    assert [(e.id, e.duration) for e in imported.entries] == [("a", 1.25), ("b", 1.75)]
    first, _ = sf.read(imported.entries[0].audio)
    np.testing.assert_allclose(first, tone(3.0)[:20000], atol=1e-4)  # the samples of 0 .. 1.25 s, 16-bit
    assert imported.counts() == {MISSING_FILE: 1, UNREADABLE: 1, BAD_LINE: 1}
    assert "outside the file" in str(next(p for p in imported.problems if p.kind == UNREADABLE))


def test_nemo_offsets_cut_and_name_the_utterance(tmp_path):
    sf.write(tmp_path / "talk.wav", tone(2.0), RATE)
    (tmp_path / "m.json").write_text(
        '{"audio_filepath": "talk.wav", "offset": 0.5, "duration": 1.0, "text": "middle"}\nnot json\n')
    imported = import_source("nemo", tmp_path / "m.json", out=tmp_path / "out")
    assert [(e.id, e.duration, e.text) for e in imported.entries] == [("talk-00000500", 1.0, "MIDDLE")]
    assert imported.counts() == {BAD_LINE: 1}


def test_wav_scp_commands_run_only_when_allowed(tmp_path):
    src = tmp_path / "data"
    src.mkdir()
    sf.write(tmp_path / "a.wav", tone(0.5), RATE)
    (src / "wav.scp").write_text(f"a cat {tmp_path / 'a.wav'} |\nb exit 3 |\n")
    (src / "text").write_text("a piped\nb fails\n")
    refused = import_source("kaldi", src, out=tmp_path / "out")
    assert not refused.entries and refused.counts() == {NOT_ALLOWED: 2}
    assert not list((tmp_path / "out").glob("**/*.wav")), "nothing ran"
    allowed = import_source("kaldi", src, ImportOptions(allow_pipes=True), tmp_path / "out")
    assert [(e.id, e.duration) for e in allowed.entries] == [("a", 0.5)]
    assert allowed.counts() == {UNREADABLE: 1} and "exited 3" in str(allowed.problems[0])


def test_rows_needing_written_audio_need_an_output_folder():
    with pytest.raises(FormatError, match="--out"):
        build([Row("a", "/x.wav", "hi", start=1.0, end=2.0)])


def entries(n: int, speakers: int = 0) -> tuple[list[Entry], dict[str, str]]:
    made = [Entry(f"utt{i:04d}", f"/a/{i}.wav", 1.0, f"SENTENCE {i}") for i in range(n)]
    return made, ({e.id: f"spk{i % speakers}" for i, e in enumerate(made)} if speakers else {})


def test_dev_and_test_by_speaker_share_no_voice_with_training():
    made, speakers = entries(200, speakers=10)
    splits = split_entries(made, speakers, dev=0.1, test=0.1, seed=1)
    voices = [{speakers[e.id] for e in part} for part in (splits.train, splits.dev, splits.test)]
    assert splits.by == "speaker"
    assert not voices[0] & voices[1] and not voices[0] & voices[2] and not voices[1] & voices[2]
    assert len(splits.dev) == len(splits.test) == 20  # 20 utterances per speaker: exactly two voices each
    assert len(splits.train) + len(splits.dev) + len(splits.test) == 200


def test_without_speakers_the_split_follows_the_id_not_the_order():
    made, _ = entries(100)
    one = split_entries(made, {}, dev=10, test=5, seed=7)
    other = split_entries(list(reversed(made)), {}, dev=10, test=5, seed=7)
    assert one.by == "id hash" and (len(one.dev), len(one.test), len(one.train)) == (10, 5, 85)
    assert (one.dev, one.test) == (other.dev, other.test)
    assert split_entries(made, {}, dev=10, test=5, seed=8).test != one.test


def test_a_sentence_held_out_is_not_trained_on():
    made, _ = entries(50)
    made += [Entry(f"copy{i:04d}", "/b.wav", 1.0, e.text) for i, e in enumerate(made)]  # each sentence twice
    splits = split_entries(made, {}, dev=5, test=5)
    held = {e.text for e in splits.dev + splits.test}
    assert not held & {e.text for e in splits.train}
    assert splits.shared_text == len(made) - len(splits.train) - 10 > 0


def test_import_command_writes_manifests_and_names_what_the_tokenizer_cannot_spell(tmp_path, capsys):
    src = make_kaldi(tmp_path / "src")
    tokenizer = Tokenizer.train(["HELLO WORLD DO'T STOP GOOD MORIG"] * 5, 30, "char")  # no N: two words unspellable
    (tmp_path / "tok.model").write_bytes(tokenizer.model_proto)
    out = tmp_path / "out"
    code = import_data.main(["kaldi", str(src), "--out", str(out), "--dev", "1", "--test", "0",
                             "--model", str(tmp_path / "tok.model")])
    printed = capsys.readouterr().out
    assert code == 0
    assert "imported: 3 utterances" in printed and "4 rows left out" in printed
    assert "cannot spell: 2: " in printed and "DON'T (1)" in printed and "MORNING (1)" in printed
    loaded = {name: read_manifest(out / f"{name}.jsonl") for name in ("train", "dev", "test")}
    assert sorted(e.id for part in loaded.values() for e in part) == ["u1", "u2", "u3"]
    assert len(loaded["dev"]) == 1 and not loaded["test"]
    assert len((out / "problems.txt").read_text().splitlines()) == 4
    assert (out / "utt2spk").read_text() == "u1 ann\nu2 bob\nu3 ann\n"


def test_import_command_exit_codes(tmp_path, capsys):
    assert import_data.main(["ljspeech", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no metadata.csv" in capsys.readouterr().err
    (tmp_path / "metadata.csv").write_text("a|nothing here\n")
    assert import_data.main(["ljspeech", str(tmp_path), "--out", str(tmp_path / "o")]) == 1


@pytest.mark.parametrize("fmt", ["kaldi", "nemo", "csv", "ljspeech", "folder"])
def test_the_speed_benchmark_imports_every_row_it_made(fmt, tmp_path, capsys):
    from asr.corpus.formats import speed

    assert speed.main(["--rows", "50", "--format", fmt, "--workers", "2", "--dir", str(tmp_path)]) == 0
    assert "imported 50 of 50 rows (0 left out)" in capsys.readouterr().out
    assert not list(tmp_path.iterdir()), "the scratch folder is removed"


def test_lhotse_cuts_give_one_utterance_per_supervision(tmp_path):
    lhotse = pytest.importorskip("lhotse")
    sf.write(tmp_path / "long.wav", tone(3.0), RATE)
    recording = lhotse.Recording.from_file(tmp_path / "long.wav", recording_id="rec")
    supervisions = [lhotse.SupervisionSegment("a", "rec", 0.0, 1.25, text="first part", speaker="ann"),
                    lhotse.SupervisionSegment("b", "rec", 1.25, 1.75, text="second part", speaker="bob")]
    cuts = lhotse.CutSet.from_manifests(recordings=lhotse.RecordingSet.from_recordings([recording]),
                                        supervisions=lhotse.SupervisionSet.from_segments(supervisions))
    cuts.to_file(tmp_path / "corpus_cuts_train.jsonl.gz")
    imported = import_source("lhotse", tmp_path / "corpus_cuts_train.jsonl.gz", out=tmp_path / "out")
    assert [(e.id, e.duration, e.text) for e in imported.entries] == [("a", 1.25, "FIRST PART"),
                                                                      ("b", 1.75, "SECOND PART")]
    assert imported.speakers == {"a": "ann", "b": "bob"} and not imported.problems


def test_a_listing_that_is_not_utf8_is_one_error(tmp_path):
    (tmp_path / "m.json").write_bytes(b'{"text": "caf\xe9"}\n')
    with pytest.raises(FormatError, match=r"m.json: not UTF-8 text \(byte 0xe9"):
        import_source("nemo", tmp_path / "m.json")
