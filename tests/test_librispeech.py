"""LibriSpeech download and recipe, end to end, against a local mirror.

Tiny archives in LibriSpeech's exact format (``LibriSpeech/<subset>/<spk>/<chap>/...``
in a tar.gz, speech made by espeak-ng) are served on 127.0.0.1 by a thread-based HTTP
server that honours Range requests and can cut a transfer or serve a corrupted copy. The
downloader must resume, verify md5 sums, refuse the corrupted copy without touching what
was prepared, and the 100-hour recipe (shrunk by overrides) must prepare, train, average
and evaluate on the result, ending in a WER table.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from asr.config import CorpusConfig
from asr.corpus.librispeech import ChecksumError, download, fetch_subset, read_md5_file

ROOT = Path(__file__).parents[1]
RECIPE = ROOT / "recipes" / "librispeech" / "train_100h.yaml"
README = ROOT / "recipes" / "librispeech" / "README.md"
SENTENCES = [
    "The quick brown fox jumps over the lazy dog",
    "A small model learns the sound of words",
    "Every morning the birds sing in the garden",
    "She read the letter twice before answering",
    "Rain fell softly on the quiet village",
    "The train leaves the station at noon",
    "He found an old map in the attic",
    "Bright stars filled the clear night sky",
    "They walked along the river after dinner",
    "Please close the door when you leave",
    "The library opens early on weekdays",
    "Cold water runs down from the mountain",
    "My brother plays the piano every evening",
    "The children laughed at the funny clown",
    "We planted three trees near the fence",
    "A gentle wind moved the tall grass",
    "The baker sells fresh bread each day",
    "Green leaves turn golden in the autumn",
]
SUBSETS = {  # subset -> sentences spoken in it (disjoint)
    "train-clean-100": SENTENCES[:10],
    "dev-clean": SENTENCES[10:12],
    "dev-other": SENTENCES[12:14],
    "test-clean": SENTENCES[14:16],
    "test-other": SENTENCES[16:18],
}
TINY = [
    "model.d_model=32",
    "model.n_heads=2",
    "model.n_layers=1",
    "model.ff_dim=64",
    "model.subsampling_channels=8",
    "tokenizer.vocab_size=40",
    "data.num_workers=0",
    "data.max_batch_seconds=20",
    "data.buckets=2",
    "optim.warmup_steps=2",
    "trainer.max_epochs=2",
    "trainer.precision=32-true",
    "trainer.accelerator=cpu",
    "trainer.devices=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _pack(folder: Path, subset: str, out: Path) -> Path:
    """LibriSpeech/<subset>/<spk>/<chap>/{*.flac,*.trans.txt} plus the top-level docs, tar.gz."""
    readme = folder / "README.TXT"
    readme.write_text("Tiny LibriSpeech-format archive made by espeak-ng for tests.\n")
    with tarfile.open(out, "w:gz") as tar:
        tar.add(readme, arcname="LibriSpeech/README.TXT")
        for path in sorted((folder / subset).rglob("*")):
            if path.is_file() and path.suffix in (".flac", ".txt"):  # not espeak's .done stamp
                tar.add(path, arcname=f"LibriSpeech/{subset}/{path.relative_to(folder / subset)}")
    return out


@pytest.fixture(scope="module")
def archives(tmp_path_factory) -> dict[str, Path]:
    """One tiny .tar.gz per subset, spoken by espeak-ng -> {subset: archive}."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: run 'bash scripts/setup.sh' (apt-get install espeak-ng)")
    from asr.corpus.synth import load_engines
    from asr.corpus.synth.corpus import generate_split
    from asr.corpus.synth.plan import plan_split

    src = tmp_path_factory.mktemp("speech")
    out = tmp_path_factory.mktemp("mirror")
    config = CorpusConfig(root=str(src), workers=2, train_voices=1)
    engines = load_engines(["espeak"])
    made = {}
    for number, (subset, sentences) in enumerate(SUBSETS.items()):
        plan = plan_split("train", sentences, engines, config, seed=number, base=2000 * (number + 1))
        generate_split(config, subset, plan)
        made[subset] = _pack(src, subset, out / f"{subset}.tar.gz")
    return made


class Mirror(BaseHTTPRequestHandler):
    """GET with ``Range: bytes=N-``; ``server.cut`` names files whose next transfer stops
    halfway; ``server.corrupt`` names files served with damaged bytes; ``server.ranges``
    False makes it ignore Range headers (always 200, whole file), as some servers do."""

    def do_GET(self):
        server = self.server
        name = self.path.lstrip("/")
        data = server.files.get(name)
        if data is None:
            self.send_error(404)
            return
        if name in server.corrupt:
            data = data[:100] + bytes(b ^ 0xFF for b in data[100:200]) + data[200:]
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", "")) if server.ranges else None
        start = int(match.group(1)) if match else 0
        if start >= len(data) and start:
            server.log.append((name, start, 0))
            self.send_error(416)
            return
        body = data[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if name in server.cut:  # promise the whole body, send half of it, hang up
            server.cut.discard(name)
            body = body[: len(body) // 2]
            self.close_connection = True
        server.log.append((name, start, len(body)))  # before sending: the client may check at once
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(archives):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Mirror)
    server.files = {path.name: path.read_bytes() for path in archives.values()}
    server.cut, server.corrupt, server.log, server.ranges = set(), set(), [], True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/"
    yield server
    server.shutdown()
    server.server_close()


def test_download_resumes_a_transfer_cut_in_the_middle(mirror, archives, tmp_path):
    name = "dev-clean.tar.gz"
    size = len(mirror.files[name])
    mirror.cut.add(name)
    dest = download(mirror.url + name, tmp_path / name)
    assert _md5(dest) == _md5(archives["dev-clean"])
    assert not (tmp_path / f"{name}.part").exists()
    (first, start1, sent1), (second, start2, sent2) = mirror.log
    assert first == second == name
    assert start1 == 0 and sent1 == size // 2  # the cut
    assert start2 == sent1 and sent2 == size - sent1  # resumed where it stopped, nothing fetched twice


def test_download_resumes_a_partial_file_left_by_an_earlier_run(mirror, archives, tmp_path):
    name = "test-clean.tar.gz"
    whole = mirror.files[name]
    (tmp_path / f"{name}.part").write_bytes(whole[:1000])
    dest = download(mirror.url + name, tmp_path / name)
    assert dest.read_bytes() == whole
    assert mirror.log == [(name, 1000, len(whole) - 1000)]


def test_download_starts_over_when_the_server_ignores_range(mirror, tmp_path):
    name = "dev-other.tar.gz"
    whole = mirror.files[name]
    (tmp_path / f"{name}.part").write_bytes(b"x" * 1000)  # would corrupt the file if appended to
    mirror.ranges = False
    assert download(mirror.url + name, tmp_path / name).read_bytes() == whole
    assert mirror.log == [(name, 0, len(whole))]


def test_corrupted_archive_is_refused_deleted_and_nothing_prepared_is_touched(mirror, archives, tmp_path):
    table = {subset: _md5(path) for subset, path in archives.items()}
    root = tmp_path / "LibriSpeech"
    fetch_subset("dev-clean", root, mirror.url, table["dev-clean"])
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.name != "archives"}
    mirror.corrupt.add("dev-other.tar.gz")
    with pytest.raises(ChecksumError) as caught:
        fetch_subset("dev-other", root, mirror.url, table["dev-other"])
    message = str(caught.value)
    assert message.startswith("dev-other.tar.gz: corrupted download refused")
    assert table["dev-other"] in message and "deleted" in message
    assert not (root / "dev-other").exists()
    assert not list((root / "archives").iterdir())  # neither the archive nor a .part is left
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.name != "archives"} == before


def test_recipe_downloads_prepares_trains_averages_and_evaluates(mirror, archives, tmp_path, capsys):
    from asr.training.average import checkpoint_info
    from asr.inference.checkpoint import load_parts
    from asr.cli import average, evaluate, prepare, train
    from asr.data.manifest import read_manifest

    md5_file = tmp_path / "md5sum.txt"
    md5_file.write_text("".join(f"{_md5(p)}  {p.name}\n" for p in archives.values()))
    assert read_md5_file(md5_file) == {s: _md5(p) for s, p in archives.items()}
    root, exp = tmp_path / "LibriSpeech", tmp_path / "exp"
    overrides = [f"corpus.root={root}", f"corpus.url={mirror.url}", f"corpus.md5_file={md5_file}", f"exp_dir={exp}"]

    # 1. A corrupted mirror copy of test-other: refused with one clear line, the rest is kept.
    mirror.corrupt.add("test-other.tar.gz")
    mirror.cut.add("train-clean-100.tar.gz")  # and the largest transfer is cut once
    assert prepare.main(["--config", str(RECIPE), *overrides]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: test-other.tar.gz: corrupted download refused (md5 "), err
    present = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != "archives")
    assert present == ["dev-clean", "dev-other", "test-clean", "train-clean-100"]
    assert not list((root / "archives").iterdir())
    kept = {p: p.stat().st_mtime_ns for p in root.rglob("*.flac")}

    # 2. The mirror is fixed: only test-other is fetched, then everything is prepared.
    mirror.corrupt.clear()
    mirror.log.clear()
    assert prepare.main(["--config", str(RECIPE), *overrides, *TINY]) == 0
    assert {name for name, _, _ in mirror.log} == {"test-other.tar.gz"}
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*.flac") if p in kept} == kept
    for subset, sentences in SUBSETS.items():
        assert len(read_manifest(root / f"{subset}.jsonl")) == len(sentences)
    assert (exp / "tokenizer.model").exists() and (exp / "feature_stats.pt").exists()
    out = capsys.readouterr().out
    assert "train train-clean-100: 10 utterances" in out

    # 3. Train the shrunk recipe, average its checkpoints, evaluate on the four test splits.
    mirror.log.clear()
    assert train.main(["--config", str(RECIPE), *overrides, *TINY]) == 0
    assert mirror.log == []  # nothing fetched again
    checkpoints = sorted((exp / "checkpoints").glob("*.ckpt"))
    assert len(checkpoints) == 2
    averaged = exp / "model_avg.pt"
    assert average.main(["--last", "2", "--out", str(averaged), str(exp / "checkpoints")]) == 0
    recipe, tokenizer, model = load_parts(averaged)  # self-describing
    assert recipe.model.d_model == 32 and recipe.corpus.kind == "librispeech"
    steps = {checkpoint_info(p).step for p in checkpoints}  # one step if the last epoch was the best
    assert len(torch.load(averaged, weights_only=True)["averaged_from"]) == len(steps)

    report = tmp_path / "eval"
    assert evaluate.main(["--model", str(averaged), "--out", str(report)]) == 0
    results = json.loads((report / "wer.json").read_text())["results"]
    assert list(results) == ["dev-clean", "dev-other", "test-clean", "test-other"]
    for split, r in results.items():
        refs = read_manifest(root / f"{split}.jsonl")
        assert r["words"] == sum(len(e.text.split()) for e in refs)
        assert r["utterances"] == len(refs)
        errors = r["substitutions"] + r["deletions"] + r["insertions"]
        assert r["wer"] == pytest.approx(errors / r["words"])
        hyp_ids = [line.split(" ")[0] for line in (report / f"{split}.hyp").read_text().splitlines()]
        assert hyp_ids == [e.id for e in refs]
    table = (report / "wer.md").read_text().splitlines()
    assert table[2].startswith("| split | utterances | words | WER % |")
    assert [row.split(" | ")[0] for row in table[4:]] == [f"| {s}" for s in results]


def _fake_checkpoint(path: Path, recipe, tokenizer, step: int, score: float, seed: int) -> dict:
    """A Lightning-format checkpoint of a freshly initialised model -> its weights."""
    from asr.inference.checkpoint import checkpoint_meta
    from asr.model import CTCModel

    torch.manual_seed(seed)
    model = CTCModel(recipe.model, recipe.features, recipe.specaug, tokenizer.vocab_size)
    state = model.state_dict()
    torch.save(
        {
            "asr": checkpoint_meta(recipe, tokenizer),
            "state_dict": {f"model.{k}": v for k, v in state.items()},
            "epoch": step // 10,
            "global_step": step,
            "callbacks": {"ModelCheckpoint{'monitor': 'val_wer'}": {"current_score": torch.tensor(score)}},
        },
        path,
    )
    return state


def test_average_of_last_or_best_checkpoints_is_the_mean_of_their_weights(tmp_path):
    from asr.training.average import average_checkpoints, select
    from asr.inference.checkpoint import load_parts
    from asr.config import recipe_from_dict
    from asr.text.tokenizer import Tokenizer

    recipe = recipe_from_dict({"model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "ff_dim": 32}})
    tokenizer = Tokenizer.train(["A CAT", "THE DOG", "A BIRD SINGS"], 30, "char")
    scores = {10: 0.3, 20: 0.5, 30: 0.4}  # step -> val_wer
    states = {}
    for step, score in scores.items():
        path = tmp_path / f"step{step}.ckpt"
        states[path.name] = _fake_checkpoint(path, recipe, tokenizer, step, score, seed=step)
    paths = sorted(tmp_path.glob("*.ckpt"))
    assert [i.path.name for i in select(paths, last=2)] == ["step20.ckpt", "step30.ckpt"]
    best = select(paths, best=2)
    assert [i.path.name for i in best] == ["step10.ckpt", "step30.ckpt"]  # lowest WER, in step order

    out = average_checkpoints(best, tmp_path / "model.pt")
    _, _, model = load_parts(out)
    averaged = model.state_dict()
    name = "head.weight"
    expected = (states["step10.ckpt"][name] + states["step30.ckpt"][name]) / 2
    assert not torch.equal(states["step10.ckpt"][name], states["step30.ckpt"][name])
    assert torch.allclose(averaged[name], expected, atol=1e-7)
    assert all(torch.allclose(averaged[k], (states["step10.ckpt"][k] + states["step30.ckpt"][k]) / 2, atol=1e-6)
               for k in averaged if averaged[k].is_floating_point())


def test_archive_with_a_member_outside_librispeech_is_refused_and_deleted(tmp_path):
    from asr.corpus.librispeech import DownloadError

    root = tmp_path / "LibriSpeech"
    (root / "archives").mkdir(parents=True)
    evil = tmp_path / "evil.txt"
    evil.write_text("written outside the corpus\n")
    archive = root / "archives" / "dev-clean.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(evil, arcname="LibriSpeech/dev-clean/1/2/1-2.trans.txt")
        tar.add(evil, arcname="LibriSpeech/../../escaped.txt")
    with pytest.raises(DownloadError, match="unexpected member 'LibriSpeech/../../escaped.txt'"):
        fetch_subset("dev-clean", root, "http://127.0.0.1:9/", _md5(archive))  # found locally: no download
    assert not archive.exists() and not (root / "dev-clean").exists()
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path.parent / "escaped.txt").exists()


def _readme_table() -> dict[str, dict[str, str]]:
    """The README's "Every value and the anchor it follows" table: key -> {recipe: cell}."""
    rows = {}
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"`[a-z]+\.[a-z_]+`", cells[0]):
            rows[cells[0].strip("`")] = {"train_100h": cells[1], "train_960h": cells[2]}
    return rows


def test_recipes_build_the_block_size_and_flops_their_readme_states():
    """Both recipes load, build a 20-30M model, and every key the README's table lists (the
    block options among them) has the value it states; so do the summary's parameter counts
    and GFLOPs. A lead who changes a key in a recipe must change the README with it."""
    import yaml

    from asr.bench.flops import flops_per_second
    from asr.config import load_recipe, recipe_to_dict
    from asr.model import CTCModel

    table = _readme_table()
    block = {"subsampling", "pos_enc", "macaron", "conv_kernel", "conv_causal", "chunk_train_prob",
             "max_chunk_frames", "max_left_chunks", "inter_ctc_weight", "cr_ctc_weight"}  # fmt: skip
    assert {f"model.{key}" for key in block} | {"specaug.time_masks", "optim.lr", "trainer.max_epochs"} <= set(table)
    summary = {}  # recipe -> its row in the README's first table (later tables repeat the name)
    for line in README.read_text().splitlines():
        if line.startswith("| `train_"):
            summary.setdefault(line.split("|")[1].strip(), line)
    for name in ("train_100h", "train_960h"):
        recipe = load_recipe(ROOT / "recipes" / "librispeech" / f"{name}.yaml")
        values = recipe_to_dict(recipe)
        for key, cells in table.items():
            section, field = key.split(".")
            assert values[section][field] == yaml.safe_load(cells[name]), f"{name}.yaml {key}"
        assert (recipe.model.subsampling, recipe.model.pos_enc, recipe.model.conv_causal) == ("dw8", "rope", False)
        vocab = recipe.tokenizer.vocab_size + 1
        model = CTCModel(recipe.model, recipe.features, recipe.specaug, vocab)
        params = sum(p.numel() for p in model.parameters())
        assert 20e6 <= params <= 30e6, f"{name}: {params} parameters"
        cells = [c.strip() for c in summary[f"`{name}.yaml`"].strip("|").split("|")]
        assert cells[2] == f"{params / 1e6:.1f}M"
        assert cells[3] == f"{flops_per_second(recipe.model, recipe.features, vocab, 12.3) / 1e9:.3f}"


def test_full_size_recipes_take_a_training_step_on_librispeech_format_audio(archives):
    """Each recipe's real model (not shrunk): one optimizer step on an utterance of the tiny
    train-clean-100 archive, through the step bench/gpu.sh times (CR-CTC's two views, a
    dynamic chunk draw, fp32 losses). The loss is finite and every trained weight moves."""
    import io

    import soundfile as sf

    from asr.bench.train import training_step
    from asr.config import load_recipe
    from asr.model import CTCModel

    with tarfile.open(archives["train-clean-100"]) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".flac"))
        audio, rate = sf.read(io.BytesIO(tar.extractfile(member).read()), dtype="float32")
    assert rate == 16000 and len(audio) > 16000
    waves, lengths = torch.from_numpy(audio)[None], torch.tensor([len(audio)])  # (1, N), (1,)
    for name in ("train_100h", "train_960h"):
        recipe = load_recipe(ROOT / "recipes" / "librispeech" / f"{name}.yaml")
        vocab = recipe.tokenizer.vocab_size + 1
        torch.manual_seed(0)
        model = CTCModel(recipe.model, recipe.features, recipe.specaug, vocab).train()
        before = {k: v.clone() for k, v in model.named_parameters()}
        tokens = torch.randint(1, vocab, (1, 6))  # 6 tokens: well under the ~2 s utterance's 80 ms frames
        optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.optim.lr, weight_decay=0.0)  # only gradients move weights
        step = training_step(model, recipe, optimizer, (waves, lengths, tokens, torch.tensor([6])), 1, bf16=False)
        loss = step()
        assert math.isfinite(loss) and loss > 0, name
        unchanged = [k for k, v in model.named_parameters() if torch.equal(v, before[k])]
        assert unchanged == [], f"{name}: {unchanged[:3]}"


def test_gpu_benchmark_command_reports_the_recipe_with_both_views_counted(tmp_path, capsys):
    """``python -m asr.bench.train`` (bench/gpu.sh's second command) on a CPU with one short
    step: the 960 h model's FLOPs include CR-CTC's second view, and the recipe's cost follows
    from its 50 epochs of 960.9 h at the measured rate."""
    from asr.bench import train
    from asr.bench.flops import TRAINING_FACTOR, feature_frames, forward_flops
    from asr.config import load_recipe

    path = ROOT / "recipes" / "librispeech" / "train_960h.yaml"
    out = tmp_path / "figures.json"
    argv = ["--config", str(path), "--batch-seconds", "3", "--steps", "1", "--warmup", "0", "--json", str(out)]
    assert train.main(argv) == 0
    (row,) = json.loads(out.read_text())
    recipe = load_recipe(path)
    frames = feature_frames(round(12.3 * 16000), recipe.features)  # one synthetic 12.3 s utterance
    one_view = forward_flops(recipe.model, recipe.features, 501, 1, frames)["total"]
    assert row["views"] == 2 and row["utterances_per_micro_batch"] == 1
    assert row["model_gflop_per_step"] == round(TRAINING_FACTOR * 2 * one_view / 1e9, 1)
    assert row["recipe_gpu_hours"] == pytest.approx(50 * 960.9 / row["audio_seconds_per_second"])
    printed = capsys.readouterr().out
    assert printed.startswith("train_960h: 25.22 M parameters; d 256 x 16, dw8, rope, macaron, conv 31 centred")
    assert "CR-CTC 0.2 (2 views)" in printed and "the recipe's 50 epochs of 960.9 h" in printed
