"""ONNX export and onnxruntime inference: the exported graphs compute what torch computes
(log-probs within 1e-3, identical greedy text and word times) in full context and chunk by
chunk; ``load_model(DIR)`` and ``transcribe.py --model DIR`` give torch's transcripts; int8
graphs are quantized by onnxruntime, at export or at load; a broken directory is one error
line naming the file."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace

import pytest
import torch

pytest.importorskip("onnxscript", reason="ONNX export needs requirements-onnx.txt")
pytest.importorskip("onnxruntime", reason="ONNX inference needs requirements-onnx.txt")

from asr.audio.read import read_audio  # noqa: E402
from asr.data.batch import pad_1d  # noqa: E402
from asr.export.onnx import export_onnx  # noqa: E402
from asr.inference.checkpoint import CheckpointError, checkpoint_meta  # noqa: E402
from asr.inference.frontend import StreamingFrontend  # noqa: E402
from asr.inference.recognizer import Recognizer, load_model  # noqa: E402
from asr.inference.stream import TranscribeOptions  # noqa: E402
from asr.inference.torch_backend import TorchAcoustic  # noqa: E402
from asr.model import CTCModel  # noqa: E402
from models import tiny_untrained_model  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread
CHUNKED = TranscribeOptions(chunk_ms=160, left_chunks=2)  # 4 frames a chunk, 2 chunks of left context


@pytest.fixture(scope="module")
def torch_recognizer() -> Recognizer:
    """tests/models.py's tiny model (head scaled up: long varied texts, so equal texts mean
    equal computations) with a causal convolution module, whose state the stream caches."""
    recipe, tokenizer, _ = tiny_untrained_model()
    recipe = replace(recipe, model=replace(recipe.model, conv_kernel=5))
    torch.manual_seed(0)
    model = CTCModel(recipe.model, recipe.features, recipe.specaug, tokenizer.vocab_size)
    with torch.no_grad():
        model.head.weight.mul_(20)
    return Recognizer(recipe, tokenizer, model.eval())


@pytest.fixture(scope="module")
def onnx_dir(torch_recognizer, tmp_path_factory):
    r = torch_recognizer
    return export_onnx(r.recipe, r.tokenizer, r.model, tmp_path_factory.mktemp("export") / "onnx", int8=True)


@pytest.fixture(scope="module")
def onnx_recognizer(onnx_dir) -> Recognizer:
    return load_model(onnx_dir)


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> list:
    """Two espeak-ng sentences as 16 kHz files."""
    folder = tmp_path_factory.mktemp("speech")
    paths = []
    for i, text in enumerate(["The quick brown fox jumps over the lazy dog.", "Seven red boats sailed home at dawn."]):
        paths.append(folder / f"say{i}.wav")
        subprocess.run(["espeak-ng", "-w", str(paths[-1]), text], check=True)
    return paths


def words(transcript) -> list[tuple]:
    return [(w.text, w.start, w.end) for w in transcript.words]


def test_directory_holds_graphs_tokenizer_and_description(onnx_dir):
    import json

    meta = json.loads((onnx_dir / "model.json").read_text())
    assert meta["opset"] == 20 and meta["frame_shift"] == 0.04
    chunk = meta["graphs"]["chunk.onnx"]
    assert set(chunk["inputs"]) == {"frames", "offset", "keys", "values", "conv"}
    assert chunk["inputs"]["conv"][1][2] == 4  # kernel - 1 frames of convolution state
    assert isinstance(meta["graphs"]["model.onnx"]["inputs"]["features"][1][1], str)  # dynamic time
    assert {p.name for p in onnx_dir.iterdir()} >= {"model.onnx", "subsampling.onnx", "chunk.onnx",
                                                     "model.int8.onnx", "chunk.int8.onnx", "tokenizer.model"}


def test_full_context_batch_equals_torch(torch_recognizer, onnx_recognizer, speech):
    waves = [read_audio(p) for p in speech] + [read_audio(speech[0])[:7000]]  # a padded batch of three
    padded, lengths = pad_1d(waves, torch.float32)
    want, want_lens, _ = torch_recognizer._log_probs(padded, lengths, 0, -1)
    got, got_lens, _ = onnx_recognizer._log_probs(padded, lengths, 0, -1)
    assert torch.equal(got_lens, want_lens)
    for a, b, n in zip(got, want, want_lens.tolist()):
        assert (a[:n] - b[:n]).abs().max() < 1e-3
    for options in (TranscribeOptions(), CHUNKED):  # chunked: onnx streams each utterance; torch masks
        a, b = onnx_recognizer.transcribe_batch(waves, options), torch_recognizer.transcribe_batch(waves, options)
        assert [t.text for t in a] == [t.text for t in b] and len(a[0].text) > 10
        assert [words(t) for t in a] == [words(t) for t in b]


def test_long_file_windows_equal_torch(torch_recognizer, onnx_recognizer, speech):
    """A file longer than a segment goes through the windowed path (asr/inference/windows.py):
    the same windows, cuts and joined words from the full-context graph as from torch."""
    options = TranscribeOptions(max_segment_s=1.2, min_segment_s=1.0)  # windows of at most 1.2 s
    (a,), (b,) = (list(r.transcribe_files([speech[0]], options)) for r in (onnx_recognizer, torch_recognizer))
    assert len(b.transcript.segments) >= 3 and len(b.transcript.text) > 10
    assert a.transcript.text == b.transcript.text and words(a.transcript) == words(b.transcript)
    assert [(s.start, s.end) for s in a.transcript.segments] == [(s.start, s.end) for s in b.transcript.segments]


def test_streaming_chunks_equal_torch(torch_recognizer, onnx_recognizer, speech):
    ta, oa = torch_recognizer.acoustic, onnx_recognizer.acoustic
    wave = read_audio(speech[0])
    frames = StreamingFrontend(ta).process(wave).frames[None]  # (1, T', D)
    assert (StreamingFrontend(oa).process(wave).frames[None] - frames).abs().max() < 1e-4
    torch_cache = onnx_cache = None
    for start in range(0, frames.shape[1], 3):  # caches carried across chunks, 6 frames kept
        chunk = frames[:, start : start + 3]  # (1, 3, D)
        want, (torch_cache,) = ta.chunk_log_probs(chunk, [start], [torch_cache], 6)
        got, (onnx_cache,) = oa.chunk_log_probs(chunk, [start], [onnx_cache], 6)
        assert got.shape == want.shape and (got - want).abs().max() < 1e-3
    assert onnx_cache.keys.shape[3] == 6 and onnx_cache.conv.shape[2] == 4

    def events(recognizer):
        blocks = [wave[i : i + 2500] for i in range(0, wave.numel(), 2500)]
        return [(e.final, e.segment.text, e.segment.end) for e in recognizer.stream(blocks, CHUNKED)]

    assert events(onnx_recognizer) == events(torch_recognizer)


def test_streams_batched_as_torch(torch_recognizer, onnx_recognizer, speech):
    """Chunks of streams at different points (no cache, caches of one and of two chunks) in one
    call: each row equals its stream's chunk alone, and the torch model's batch."""
    ta, oa = torch_recognizer.acoustic, onnx_recognizer.acoustic
    frames = StreamingFrontend(ta).process(read_audio(speech[0])).frames[None][:, :16]  # (1, 16, D)
    history = {"torch": [None], "onnx": [None]}  # caches after 0, 1, 2 chunks of 4 frames
    for start in (0, 4):
        for name, acoustic in (("torch", ta), ("onnx", oa)):
            _, (cache,) = acoustic.chunk_log_probs(frames[:, start : start + 4], [start], history[name][-1:], -1)
            history[name].append(cache)
    x = torch.cat([frames[:, 8:12]] * 3)  # (3, 4, D)
    offsets = [0, 4, 8]
    want, _ = ta.chunk_log_probs(x, offsets, history["torch"], -1)
    got, caches = oa.chunk_log_probs(x, offsets, history["onnx"], -1)
    assert got.shape == want.shape and (got - want).abs().max() < 1e-3
    for b in range(3):
        alone, (cache,) = oa.chunk_log_probs(x[b : b + 1], offsets[b : b + 1], history["onnx"][b : b + 1], -1)
        assert torch.allclose(got[b], alone[0], atol=1e-5) and cache.keys.shape == caches[b].keys.shape


def test_the_servers_batcher_runs_onnx_streams_together(onnx_recognizer, speech):
    """Three streams through one ChunkBatcher on the ONNX model: chunks ran in batches, and
    each stream's events are those it gets alone."""
    import threading

    from asr.serving.batching import ChunkBatcher

    waves = [read_audio(p) for p in speech]
    alone = [list(onnx_recognizer.stream([w], CHUNKED)) for w in waves]
    batcher = ChunkBatcher(onnx_recognizer.acoustic, threading.Semaphore(1), window_ms=50, max_batch=8)
    together: list = [None] * len(waves)

    def run(i: int) -> None:
        blocks = (waves[i][s : s + 1280] for s in range(0, waves[i].numel(), 1280))  # 80 ms blocks
        together[i] = list(onnx_recognizer.stream(blocks, CHUNKED, batcher.encode))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(waves))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    batcher.close()
    assert max(batcher.sizes) > 1, batcher.sizes

    def timed(events):  # word confidences may move in the last float bit between batch sizes
        return [(e.final, e.segment.text, e.segment.end, [(w.text, w.start, w.end) for w in e.segment.words])
                for e in events]  # fmt: skip

    assert [timed(e) for e in together] == [timed(e) for e in alone]


def test_convolution_in_later_layers_only_streams_as_torch(torch_recognizer, speech, tmp_path):
    """model.conv_from_layer 1: layer 0 has no convolution module (a pretrained encoder's layer
    under a new one that has); its row of the chunk graph's conv state passes through unchanged."""
    r = torch_recognizer
    recipe = replace(r.recipe, model=replace(r.recipe.model, conv_from_layer=1))
    torch.manual_seed(1)
    model = CTCModel(recipe.model, recipe.features, recipe.specaug, r.tokenizer.vocab_size).eval()
    assert [layer.conv is not None for layer in model.encoder.layers] == [False, True]
    oa = load_model(export_onnx(recipe, r.tokenizer, model, tmp_path / "onnx", int8=False)).acoustic
    ta = TorchAcoustic(model)
    frames = StreamingFrontend(ta).process(read_audio(speech[1])).frames[None]  # (1, T', D)
    torch_cache = onnx_cache = None
    for start in range(0, frames.shape[1], 4):
        chunk = frames[:, start : start + 4]  # (1, 4, D)
        want, (torch_cache,) = ta.chunk_log_probs(chunk, [start], [torch_cache], 8)
        got, (onnx_cache,) = oa.chunk_log_probs(chunk, [start], [onnx_cache], 8)
        assert got.shape == want.shape and (got - want).abs().max() < 1e-3
    assert torch_cache[0].conv is None and torch.equal(torch.from_numpy(onnx_cache.conv[0]), torch.zeros(1, 4, 32))
    assert torch.allclose(torch.from_numpy(onnx_cache.conv[1]), torch_cache[1].conv, atol=1e-4)


def test_load_model_and_cli_transcribe_equal_torch(torch_recognizer, onnx_dir, speech, tmp_path, capsys):
    from asr.cli.transcribe import main

    onnx = load_model(onnx_dir)
    for path in speech:
        want, got = torch_recognizer.transcribe(path), onnx.transcribe(path)
        assert got.text == want.text and words(got) == words(want)
        assert torch.allclose(got.trace.log_probs, want.trace.log_probs, atol=1e-3)  # the pictures' data too
    torch_file = tmp_path / "model.pt"
    r = torch_recognizer
    torch.save({**checkpoint_meta(r.recipe, r.tokenizer), "state_dict": r.model.state_dict()}, torch_file)
    outputs = []
    for model in (torch_file, onnx_dir):
        assert main(["--model", str(model), "--format", "json", *map(str, speech)]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and '"words"' in outputs[0]


def test_int8_graphs_are_quantized_and_run(onnx_dir, onnx_recognizer, speech, tmp_path):
    import onnx

    ops = {n.op_type for n in onnx.load(str(onnx_dir / "chunk.int8.onnx")).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops
    int8 = load_model(onnx_dir, precision="int8")
    wave = read_audio(speech[1])
    full = onnx_recognizer.transcribe(wave)
    quantized = int8.transcribe(wave)
    assert quantized.text and not torch.equal(quantized.trace.log_probs, full.trace.log_probs)
    # the probabilities move a little, not the argmax of most frames
    agree = (quantized.trace.log_probs.argmax(-1) == full.trace.log_probs.argmax(-1)).float().mean()
    assert agree > 0.8
    # quantized at load where the export wrote no int8 graphs: the same graphs
    plain = tmp_path / "plain"
    shutil.copytree(onnx_dir, plain, ignore=shutil.ignore_patterns("*.int8.onnx"))
    again = load_model(plain, precision="int8").transcribe(wave)
    assert torch.equal(again.trace.log_probs, quantized.trace.log_probs)
    with pytest.raises(ValueError, match="bf16"):
        load_model(onnx_dir, precision="bf16")


@pytest.mark.parametrize("damage", ["truncate chunk.onnx", "remove subsampling.onnx", "remove model.json",
                                    "remove tokenizer.model", "garble model.json"])
def test_broken_directory_is_one_error_naming_the_file(onnx_dir, tmp_path, damage, capsys):
    from asr.cli.transcribe import main

    broken = tmp_path / "broken"
    shutil.copytree(onnx_dir, broken)
    action, name = damage.split()
    if action == "truncate":
        (broken / name).write_bytes((broken / name).read_bytes()[:5000])
    elif action == "remove":
        (broken / name).unlink()
    else:
        (broken / name).write_text("{not json")
    with pytest.raises(CheckpointError, match=name.replace(".", r"\.")) as err:
        load_model(broken)
    assert "\n" not in str(err.value)
    assert main(["--model", str(broken), str(broken / "x.wav")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and name in lines[0]
