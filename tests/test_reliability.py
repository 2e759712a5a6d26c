"""Faults injected on purpose: checkpoints crafted to run code or corrupted, writes that fail
as on a full disk, training data that goes bad (missing or unreadable audio, transcripts
empty or only of unknown characters, too long or too short), non-finite losses, running out of memory, and two transcription
processes writing the same output files at once. Each must be refused or reported in one
line, and lose nothing that was already written.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import pickle
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.inference.checkpoint import CheckpointError, read_checkpoint
from asr.audio.atomic import atomic_write, atomic_write_text
from corpora import WORDS, noise_recipe, write_noise_corpus

ROOT = Path(__file__).parents[1]
DEMO = ROOT / "recipes" / "demo" / "demo.yaml"
pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread


def run_main(main, argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error: ")]


# untrusted checkpoints ------------------------------------------------------------------


class Payload:
    """Pickles as a call of ``Path.touch(marker)``: loading it unsafely creates the marker."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def hostile_files(folder: Path, marker: Path) -> list[Path]:
    """The same payload as a torch zip checkpoint and as bare pickles (old and new protocol)."""
    payload = {"asr": Payload(marker), "config": {}, "state_dict": {"w": torch.zeros(2)}}
    files = [folder / "hostile.ckpt", folder / "hostile-p2.pt", folder / "hostile-p4.pt"]
    torch.save(payload, files[0])
    files[1].write_bytes(pickle.dumps(payload, protocol=2))
    files[2].write_bytes(pickle.dumps(payload, protocol=4))
    return files


def test_the_hostile_payload_is_live(tmp_path):
    """Without weights_only the files below do run code: the refusals that follow matter."""
    marker = tmp_path / "MARKER"
    for path in hostile_files(tmp_path, marker):
        if path.suffix == ".ckpt":
            torch.load(path, weights_only=False)
        else:
            pickle.loads(path.read_bytes())
        assert marker.exists(), path
        marker.unlink()


def test_checkpoint_that_would_run_code_is_refused_everywhere(tmp_path, capsys):
    from asr.cli.train import main as train
    from asr.cli.transcribe import main as transcribe
    from asr.training.module import SafeCheckpointIO

    marker = tmp_path / "MARKER"
    messages = []
    for path in hostile_files(tmp_path, marker):
        with pytest.raises(CheckpointError) as refused:
            read_checkpoint(path)
        messages.append(str(refused.value))
        assert str(refused.value).startswith(f"{path}: refused: ") and "\n" not in str(refused.value)
        with pytest.raises(CheckpointError):  # what Lightning resumes through
            SafeCheckpointIO().load_checkpoint(path, weights_only=False)

        code, out, err = run_main(transcribe, ["--model", str(path), "any.wav"], capsys)
        assert code == 2 and error_lines(err) == [f"error: {refused.value}"]

        exp = tmp_path / f"exp-{path.stem}"
        code, out, err = run_main(train, ["--config", str(DEMO), f"exp_dir={exp}", "--resume", str(path)], capsys)
        assert code == 2 and error_lines(err) == [f"error: {refused.value}"]
        assert not exp.exists()  # refused before any data preparation
    assert not marker.exists()
    assert "loading it would call getattr, which could run code" in messages[0]  # torch's zip format says what


def _with_config(tiny_model: Path, path: Path, **model) -> Path:
    data = read_checkpoint(tiny_model)
    data["config"]["model"].update(model)
    torch.save(data, path)
    return path


def test_weights_that_do_not_fit_the_config_name_the_file_and_first_tensor(tiny_model, tmp_path):
    from asr.inference.checkpoint import load_parts

    wider = _with_config(tiny_model, tmp_path / "wider.pt", ff_dim=64)
    with pytest.raises(CheckpointError) as err:
        load_parts(wider)
    assert str(err.value) == (f"{wider}: weights do not match the config: 'encoder.layers.0.ff.0.weight' is "
                              "(32, 16) in the file, (64, 16) in the model its config describes")  # fmt: skip
    deeper = _with_config(tiny_model, tmp_path / "deeper.pt", n_layers=2)
    with pytest.raises(CheckpointError, match=r"deeper.pt: weights do not match the config: 'encoder\.layers\.1\."):
        load_parts(deeper)


def test_a_config_asking_for_a_huge_model_is_refused_before_anything_is_allocated(tiny_model, tmp_path):
    """100 billion weights (400 GB) would be killed for memory if they were allocated; a
    model just under the encoder bound is described on the meta device, counted and refused."""
    from asr.inference.checkpoint import MAX_PARAMETERS, load_parts

    huge = _with_config(tiny_model, tmp_path / "huge.pt", d_model=8192, ff_dim=32768, n_layers=100)
    with pytest.raises(CheckpointError, match=r"huge.pt: its config describes no model that can be built \(over "):
        load_parts(huge)
    described = _with_config(tiny_model, tmp_path / "described.pt", d_model=4096, n_heads=8, ff_dim=8192, n_layers=11,
                             subsampling_channels=8192)  # 1.5 G in the encoder (under the bound), 1.3 G in convolutions
    start = time.monotonic()
    with pytest.raises(CheckpointError) as err:
        load_parts(described)
    assert f"parameters, over the limit of {MAX_PARAMETERS:,}; refused before building it" in str(err.value)
    assert time.monotonic() - start < 20  # no 2 GB of weights initialized


def test_corrupt_checkpoints_are_one_line_naming_the_file(tiny_model, tmp_path, capsys):
    from asr.cli.transcribe import main as transcribe

    whole = tiny_model.read_bytes()
    cases = {
        "truncated.pt": whole[: len(whole) // 2],
        "garbage.pt": np.random.default_rng(0).bytes(4096),
        "empty.pt": b"",
        "foreign.pt": None,  # a valid torch file that is not a model
    }
    for name, data in cases.items():
        path = tmp_path / name
        if data is None:
            torch.save({"weights": torch.ones(3)}, path)
        else:
            path.write_bytes(data)
        with pytest.raises(CheckpointError) as refused:
            read_checkpoint(path)
        assert str(refused.value).startswith(f"{path}: ") and "\n" not in str(refused.value), refused.value
        code, _, err = run_main(transcribe, ["--model", str(path), "any.wav"], capsys)
        assert code == 2 and error_lines(err) == [f"error: {refused.value}"]


def test_an_exported_model_cannot_resume_training(tiny_model, tmp_path, capsys):
    from asr.cli.train import main as train

    code, _, err = run_main(train, ["--config", str(DEMO), f"exp_dir={tmp_path}", "--resume", str(tiny_model)], capsys)
    assert code == 2
    assert error_lines(err) == [f"error: {tiny_model}: not a training checkpoint (an exported model cannot resume)"]


# crash-safe writes --------------------------------------------------------------------


def disk_full(monkeypatch, name_part: str) -> None:
    """Make the flush of any temporary file whose name contains ``name_part`` fail with ENOSPC."""
    import asr.audio.atomic

    real = asr.audio.atomic._fsync

    def fsync(path: Path) -> None:
        if name_part in path.name and path.name.endswith(".tmp"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path)

    monkeypatch.setattr(asr.audio.atomic, "_fsync", fsync)


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.tmp")]


def test_a_write_that_fails_half_way_keeps_the_old_file(tmp_path):
    target = tmp_path / "manifest.jsonl"
    target.write_text("old\n")

    def half_then_full(tmp: Path) -> None:
        tmp.write_text("new, but only ha")
        assert target.read_text() == "old\n"  # a crash now would leave the old file
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))

    with pytest.raises(OSError) as failed:
        atomic_write(target, half_then_full)
    assert failed.value.errno == errno.ENOSPC and failed.value.filename == str(target)  # names the target
    assert target.read_text() == "old\n" and not leftovers(tmp_path)


def test_atomic_files_get_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "out.txt", "x")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600


def test_lightning_checkpoints_are_written_atomically(tmp_path, monkeypatch):
    """The trainer train.py builds saves through SafeCheckpointIO; a save that fails on a full
    disk leaves the previous last.ckpt whole."""
    from asr.training.run import build_trainer
    from asr.config import recipe_from_dict
    from asr.training.module import SafeCheckpointIO

    recipe = recipe_from_dict({"exp_dir": str(tmp_path), "trainer": {"accelerator": "cpu"}})
    trainer, _ = build_trainer(recipe)
    io = trainer.strategy.checkpoint_io
    assert isinstance(io, SafeCheckpointIO)

    last = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"asr": {}, "global_step": 100, "state_dict": {"w": torch.ones(4)}}, last)
    real_save = torch.save

    def save_half(obj, f, *args, **kwargs):  # the disk fills up in the middle of the file
        real_save(obj, f, *args, **kwargs)
        data = Path(f).read_bytes()
        Path(f).write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(f))

    monkeypatch.setattr(torch, "save", save_half)
    with pytest.raises(OSError, match="No space left"):
        io.save_checkpoint({"asr": {}, "global_step": 200, "state_dict": {"w": torch.zeros(4)}}, last)
    kept = io.load_checkpoint(last)
    assert kept["global_step"] == 100 and kept["state_dict"]["w"].eq(1).all()
    assert not leftovers(tmp_path)


@pytest.mark.parametrize("product", ["train.jsonl", "tokenizer.model", "feature_stats.pt"])
def test_data_preparation_interrupted_by_a_full_disk_leaves_nothing_half_written(
    product, noise_corpus, monkeypatch, tmp_path
):
    """A cached product is trusted by the next run, so a failed write must leave none."""
    import shutil

    from asr.config import recipe_from_dict
    from asr.training.prepare import prepare

    root = tmp_path / "corpus"
    shutil.copytree(noise_corpus, root, ignore=shutil.ignore_patterns("*.jsonl"))
    recipe = recipe_from_dict(
        {
            "exp_dir": str(tmp_path / "exp"),
            "corpus": {"kind": "librispeech", "root": str(root), "train_splits": ["train"],
                       "dev_splits": ["dev"], "test_splits": ["dev"]},  # fmt: skip
            "tokenizer": {"kind": "char"},
        }
    )
    with monkeypatch.context() as patch:
        disk_full(patch, product)
        with pytest.raises(OSError) as failed:
            prepare(recipe)
    assert failed.value.errno == errno.ENOSPC and Path(failed.value.filename).name == product
    assert not list(tmp_path.rglob(product)) and not leftovers(tmp_path)
    prepared = prepare(recipe)  # the next run rebuilds it
    assert len(prepared.train) == 8 and (recipe.exp_path / "feature_stats.pt").exists()


def test_a_full_disk_loses_one_transcript_not_the_run(tiny_model, short_audio, tmp_path, monkeypatch, capsys):
    from asr.cli.transcribe import main as transcribe

    out_dir = tmp_path / "out"
    disk_full(monkeypatch, short_audio[1].stem)
    argv = ["--model", str(tiny_model), "--format", "json", "--output-dir", str(out_dir), *map(str, short_audio)]
    code, out, err = run_main(transcribe, argv, capsys)
    lost = out_dir / f"{short_audio[1].stem}.json"
    assert code == 1
    reason = "No space left on device"
    assert error_lines(err) == [f"error: {lost}: cannot write the result for {short_audio[1].stem} ({reason})"]
    written = sorted(p.stem for p in out_dir.glob("*.json"))
    assert written == sorted(p.stem for p in short_audio if p != short_audio[1])
    for path in out_dir.glob("*.json"):
        assert json.loads(path.read_text())["id"] == path.stem
    assert not leftovers(out_dir)


def test_an_id_cannot_write_outside_the_output_folder(tiny_model, short_audio, tmp_path, capsys):
    from asr.cli.transcribe import main as transcribe

    manifest = tmp_path / "list.jsonl"
    manifest.write_text(json.dumps({"id": "../escaped", "audio": str(short_audio[0])}) + "\n")
    argv = ["--model", str(tiny_model), "--output-dir", str(tmp_path / "out"), str(manifest)]
    code, _, err = run_main(transcribe, argv, capsys)
    assert code == 1 and len(error_lines(err)) == 1 and "not a plain file name" in err
    assert not (tmp_path / "escaped.txt").exists()


# concurrency --------------------------------------------------------------------------


def test_two_processes_writing_the_same_outputs_never_corrupt_them(tiny_model, short_audio, tmp_path):
    """Two transcribe.py runs (greedy and beam search, so their files may differ) write the
    same --output-dir at once while a reader checks every file it can see: each must always
    parse, and end up as one run's whole result."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    inputs = [str(p) for p in short_audio]  # each output written once by each process, at the same time
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "asr.cli.transcribe", "--model", str(tiny_model), "--format", "json"]
    procs = [
        subprocess.Popen([*base, *extra, "--output-dir", str(out_dir), *inputs], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        for extra in (["--greedy"], ["--beam", "4"])
    ]
    seen, bad = 0, []

    def watch() -> None:  # every file visible while the writers run must be whole
        nonlocal seen
        while any(p.poll() is None for p in procs):
            time.sleep(0.002)  # leave the writers some CPU
            for path in out_dir.glob("*.json"):
                try:
                    text = path.read_text()
                except FileNotFoundError:
                    continue
                seen += 1
                try:
                    json.loads(text)
                except json.JSONDecodeError:
                    bad.append((path.name, text))

    reader = threading.Thread(target=watch)
    reader.start()
    results = [p.communicate(timeout=600) for p in procs]
    reader.join()
    assert [p.returncode for p in procs] == [0, 0], results
    assert not bad, bad[:3]
    assert seen > 0  # the reader did look while they were writing
    texts = [dict(line.split("\t", 1) for line in out.splitlines()) for out, _ in results]
    for audio in short_audio:
        data = json.loads((out_dir / f"{audio.stem}.json").read_text())
        assert data["id"] == audio.stem and data["text"] in (texts[0][audio.stem], texts[1][audio.stem])
    assert not leftovers(out_dir)


# bad training data ---------------------------------------------------------------------


def test_scan_reports_unreadable_audio_and_empty_transcripts(tmp_path):
    from asr.data.manifest import scan_librispeech

    folder = tmp_path / "train" / "1" / "2"
    folder.mkdir(parents=True)
    rate = 16000
    for utt in ("1-2-0", "1-2-1", "1-2-3"):
        sf.write(folder / f"{utt}.flac", np.zeros(rate), rate)
    (folder / "1-2-1.flac").write_bytes(b"not audio at all")
    (folder / "1-2.trans.txt").write_text(
        "1-2-0 HELLO THERE\n1-2-1 UNREADABLE AUDIO\n1-2-2 MISSING AUDIO\n1-2-3 1984 !!! \u65e5\u672c\n"
    )
    entries, problems = scan_librispeech(tmp_path / "train", workers=2)
    assert [e.id for e in entries] == ["1-2-0"]
    by_id = {line.split(":")[0]: line for line in problems}
    assert set(by_id) == {"1-2-1", "1-2-2", "1-2-3"}
    assert "unreadable audio" in by_id["1-2-1"] and str(folder / "1-2-1.flac") in by_id["1-2-1"]
    assert "unreadable audio" in by_id["1-2-2"] and str(folder / "1-2-2.flac") in by_id["1-2-2"]
    assert by_id["1-2-3"] == "1-2-3: empty transcript"  # digits and CJK normalize to nothing


def test_filter_reports_what_cannot_train_with_ids():
    from asr.config import recipe_from_dict
    from asr.data.datamodule import filter_entries
    from asr.data.manifest import Entry
    from asr.text.tokenizer import Tokenizer

    recipe = recipe_from_dict({"tokenizer": {"kind": "char"}, "data": {"max_duration": 10.0}})
    tokenizer = Tokenizer.train(["ABCDEFGHIJKLMNOPQRSTUVWXYZ '"], 64, "char")
    entries = [
        Entry("ok", "a.flac", 3.0, "HELLO"),
        Entry("empty", "b.flac", 3.0, ""),
        Entry("long", "c.flac", 30.0, "HELLO"),
        Entry("short", "d.flac", 0.3, "A LONG SENTENCE FOR A TENTH OF A SECOND"),
    ]
    kept, report = filter_entries(entries, recipe, tokenizer)
    assert [e.id for e in kept] == ["ok"]
    assert sorted(report) == sorted(
        [
            "skipped 1 utterances (empty transcript): empty",
            "skipped 1 utterances (longer than data.max_duration=10.0s): long",
            "skipped 1 utterances (too short for its transcript under CTC): short",
        ]
    )


def test_loader_leaves_out_unreadable_audio_and_says_why(tmp_path):
    from asr.data.batch import Unusable, UtteranceDataset, collate
    from asr.data.manifest import Entry
    from asr.text.tokenizer import Tokenizer

    tokenizer = Tokenizer.train(["ABC CAB BAC"], 64, "char")
    sf.write(tmp_path / "good.flac", np.zeros(8000), 16000)
    (tmp_path / "bad.flac").write_bytes(b"garbage")
    entries = [
        Entry("good", str(tmp_path / "good.flac"), 0.5, "ABC"),
        Entry("gone", str(tmp_path / "gone.flac"), 0.5, "ABC"),
        Entry("bad", str(tmp_path / "bad.flac"), 0.5, "CAB"),
    ]
    dataset = UtteranceDataset(entries, tokenizer)
    items = [dataset[i] for i in range(3)]
    assert [type(item) is Unusable for item in items] == [False, True, True]
    batch = collate(items)
    assert batch.ids == ("good",) and batch.waves.shape == (1, 8000)
    assert batch.tokens.tolist() == [tokenizer.encode("ABC")]
    assert batch.skipped[0] == f"gone: {tmp_path / 'gone.flac'}: no such file"
    assert batch.skipped[1].startswith(f"bad: {tmp_path / 'bad.flac'}: not readable audio")
    empty = collate(items[1:])  # a batch with nothing usable left
    assert empty.ids == () and empty.waves.shape[0] == 0 and len(empty.skipped) == 2


def tiny_training_args(corpus: Path, exp: Path) -> list[str]:
    return [
        "--config", str(DEMO), f"exp_dir={exp}", "corpus.kind=librispeech", f"corpus.root={corpus}",
        "corpus.train_splits=[train]", "corpus.dev_splits=[dev]", "corpus.test_splits=[dev]",
        "tokenizer.kind=char", "model.d_model=16", "model.n_heads=2", "model.n_layers=1", "model.ff_dim=32",
        "model.subsampling_channels=4", "model.subsampling=conv4", "model.conv_kernel=0", "model.chunk_train_prob=0", "data.num_workers=0",
        "data.max_batch_seconds=3", "data.buckets=1", "optim.warmup_steps=2", "trainer.max_epochs=2",
        "trainer.precision=32-true", "trainer.accelerator=cpu", "trainer.devices=1", "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "trainer.num_sanity_val_steps=0",
    ]  # fmt: skip


def last_metrics(exp: Path) -> dict[str, float]:
    """Latest value of every column in the newest metrics.csv."""
    newest = max((exp / "logs").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1]))
    values: dict[str, float] = {}
    with newest.open() as f:
        for row in csv.DictReader(f):
            values.update({k: float(v) for k, v in row.items() if v != ""})
    return values


@pytest.fixture(scope="module")
def faulty_run(noise_corpus, tmp_path_factory):
    """One tiny training run (2 epochs) in which one training file disappears after the
    manifest was made and the loss is NaN on two steps. -> (exp dir, return code, stdout,
    stderr, id of the missing utterance)."""
    import contextlib
    import io
    import shutil

    import asr.training.losses
    import asr.training.prepare
    from asr.cli.train import main as train

    corpus = tmp_path_factory.mktemp("faulty") / "corpus"
    shutil.copytree(noise_corpus, corpus, ignore=shutil.ignore_patterns("*.jsonl"))
    exp = corpus.parent / "exp"
    gone = sorted((corpus / "train").rglob("*.flac"))[3]
    real_prepare, real_loss = asr.training.prepare.prepare, asr.training.losses.ctc_loss
    training_losses = 0

    def prepare_then_lose_a_file(recipe):
        prepared = real_prepare(recipe)
        gone.unlink()  # found missing only when the loader reaches it
        return prepared

    def nan_on_two_steps(*args):
        nonlocal training_losses
        loss = real_loss(*args)
        if torch.is_grad_enabled():  # training, not validation
            training_losses += 1
            if training_losses in (2, 3):
                return loss * float("nan")
        return loss

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        patch.setattr(asr.training.prepare, "prepare", prepare_then_lose_a_file)
        patch.setattr(asr.training.losses, "ctc_loss", nan_on_two_steps)  # the training loss
        code = train(tiny_training_args(corpus, exp))
    return exp, code, out.getvalue(), err.getvalue(), gone.stem


def test_missing_audio_during_training_is_reported_once_and_skipped(faulty_run):
    exp, code, out, err, gone = faulty_run
    assert code == 0, err
    left_out = [line for line in err.splitlines() if line.startswith("warning: utterance left out")]
    assert len(left_out) == 1  # named once, though both epochs met it
    assert left_out[0].startswith(f"warning: utterance left out: {gone}: ") and left_out[0].endswith(": no such file")
    metrics = last_metrics(exp)
    assert metrics["skipped_utterances_total"] == 1  # counted once over both epochs
    assert (exp / "model.pt").exists()


def test_non_finite_losses_skip_their_steps_and_are_counted(faulty_run):
    exp, code, out, err, _ = faulty_run
    warned = [line for line in err.splitlines() if line.startswith("warning: non-finite loss at step")]
    assert len(warned) == 2 and warned[1].endswith("step skipped, 2 so far")
    metrics = last_metrics(exp)
    # 2 non-finite losses, plus the missing file's batch (3 s batches hold one utterance each)
    # in each of the 2 epochs: nothing left to train on, so that step is skipped too
    assert metrics["skipped_steps_total"] == 4 and metrics["skipped_batches_total"] == 4
    assert np.isfinite(metrics["val_loss"])


def test_repeated_non_finite_losses_stop_the_run_with_a_clear_message(faulty_run, monkeypatch, capsys):
    import asr.training.losses
    import asr.training.module
    from asr.cli.train import main as train

    exp, *_ = faulty_run
    corpus = exp.parent / "corpus"
    monkeypatch.setattr(asr.training.module, "MAX_BAD_STEPS", 3)
    monkeypatch.setattr(asr.training.losses, "ctc_loss", lambda log_probs, *_: log_probs.sum() * float("nan"))
    code, _, err = run_main(train, tiny_training_args(corpus, exp), capsys)
    assert code == 1
    [line] = error_lines(err)
    stopped = r"error: 3 non-finite losses in a row \(last at step \d+\); stopping \(lower optim\.lr\?\)"
    assert re.fullmatch(stopped, line)


def test_a_skipped_step_leaves_the_weights_alone(noise_corpus, tmp_path, monkeypatch):
    """Skipping means no optimizer update at all (no weight decay, no moment update)."""
    import copy

    import lightning as L

    import asr.training.losses
    from asr.data.datamodule import ASRDataModule
    from asr.training.module import ASRModule
    from asr.training.prepare import prepare

    recipe = noise_recipe(noise_corpus, tmp_path / "exp", {"max_batch_seconds": 3.0, "buckets": 1, "num_workers": 0})
    data = prepare(recipe)
    module = ASRModule(recipe, data.tokenizer, data.mean, data.std)
    before = copy.deepcopy(module.state_dict())
    monkeypatch.setattr(asr.training.losses, "ctc_loss", lambda log_probs, *_: log_probs.sum() * float("nan"))
    trainer = L.Trainer(
        max_steps=3,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        accelerator="cpu",
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )
    trainer.fit(module, datamodule=ASRDataModule(recipe, data.tokenizer, data.train, data.dev))
    assert module.skipped_steps == 3
    after = module.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)


def test_out_of_memory_names_the_batch(faulty_run, monkeypatch, capsys):
    from asr.cli.train import main as train
    from asr.model import CTCModel

    exp, *_ = faulty_run
    corpus = exp.parent / "corpus"
    def forward_views(self, *args, **kwargs):  # the training step's forward pass
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(CTCModel, "forward_views", forward_views)
    code, _, err = run_main(train, tiny_training_args(corpus, exp), capsys)
    assert code == 1
    [line] = error_lines(err)
    assert line.startswith("error: out of memory in forward on a batch of ") and " s of audio (" in line
    assert "lower data.max_batch_seconds (now 3.0)" in line


def test_out_of_memory_in_backward_names_the_batch(monkeypatch):
    from asr.config import recipe_from_dict
    from asr.data.batch import collate
    from asr.training.module import ASRModule, BatchOutOfMemoryError
    from asr.text.tokenizer import Tokenizer

    recipe = recipe_from_dict({"tokenizer": {"kind": "char"}, "model": {"d_model": 16, "n_heads": 2, "n_layers": 1,
                               "ff_dim": 32, "subsampling_channels": 4}})  # fmt: skip
    tokenizer = Tokenizer.train(["AB BA"], 64, "char")
    module = ASRModule(recipe, tokenizer)
    waves = [torch.zeros(16000), torch.zeros(24000), torch.zeros(8000)]
    batch = collate([(f"u{i}", w, torch.tensor([1, 2]), "AB") for i, w in enumerate(waves)])
    monkeypatch.setattr(module, "log", lambda *args, **kwargs: None)  # no trainer here
    monkeypatch.setattr(module, "optimizers", lambda: torch.optim.SGD(module.parameters(), lr=0.1))
    loss = module.training_step(batch, 0)

    def backward(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")

    monkeypatch.setattr(torch.Tensor, "backward", backward)
    with pytest.raises(BatchOutOfMemoryError) as oom:
        module.backward(loss)
    assert isinstance(oom.value, torch.OutOfMemoryError)  # still an OOM to whoever catches those
    assert str(oom.value).startswith(
        "out of memory in backward on a batch of 3 utterances, 3.0 s of audio "
        "(4.5 s padded, longest 1.5 s; ids u0, u1, u2)"
    )


# fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def noise_corpus(tmp_path_factory) -> Path:
    """8 training and 2 dev utterances of 2-4 s of noise, LibriSpeech layout."""
    root = tmp_path_factory.mktemp("noise")
    write_noise_corpus(root, "train", 8, seed=1)
    write_noise_corpus(root, "dev", 2, seed=2)
    return root


@pytest.fixture(scope="module")
def short_audio(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("short")
    rng = np.random.default_rng(1)
    paths = [folder / f"utt{i:02d}.flac" for i in range(12)]
    for path in paths:
        sf.write(path, 0.1 * rng.standard_normal(8000), 16000)
    return paths


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """An untrained tiny model in the exported format (what it says does not matter here)."""
    from asr.inference.checkpoint import checkpoint_meta
    from asr.config import recipe_from_dict
    from asr.model import CTCModel
    from asr.text.tokenizer import Tokenizer

    torch.manual_seed(0)
    recipe = recipe_from_dict({"tokenizer": {"kind": "char"}, "model": {"d_model": 16, "n_heads": 2, "n_layers": 1,
                               "ff_dim": 32, "subsampling_channels": 4}})  # fmt: skip
    tokenizer = Tokenizer.train([" ".join(WORDS)], 64, "char")
    model = CTCModel(recipe.model, recipe.features, recipe.specaug, tokenizer.vocab_size)
    path = tmp_path_factory.mktemp("model") / "model.pt"
    torch.save({**checkpoint_meta(recipe, tokenizer), "state_dict": model.state_dict()}, path)
    return path
