"""Streams batched across clients get what each gets alone.

Model: one ``forward_chunk`` over streams that started at different times (different
positions, cache fill, trimmed caches, fresh segments) gives each row the log-probs of that
stream encoded by itself, for every option that claims exact streaming. Server: concurrent
clients of a batching server get the transcripts and word times of an unbatched one, while
a hostile client beside them gets its one error.
"""

from __future__ import annotations

import dataclasses
import threading

import pytest
import torch

from asr.config import ModelConfig
from asr.model import CTCModel
from asr.inference.torch_backend import TorchAcoustic
from asr.serving.batching import ChunkBatcher
from asr.serving.client import read_pcm, stream_pcm
from models import tiny_untrained_model
from test_server import TIMEOUT, assert_one_error, config, recognizer, run_all, running, send_then_read, speech  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")
CHUNK, LEFT_CHUNKS = 4, 2  # frames per chunk; chunks of left context (caches fill, then are trimmed)
STARTS = (0, 1, 4, 8)  # the chunk step at which each stream starts (the last: one chunk)
STEPS = 9

OPTIONS = {  # every ModelConfig option that streams exactly
    "base": {},
    "rope": {"pos_enc": "rope"},
    "causal conv": {"conv_kernel": 5, "conv_causal": True},
    "centred conv": {"conv_kernel": 5, "conv_causal": False, "macaron": True},
    "dw8": {"subsampling": "dw8"},
    "whisper": {"subsampling": "conv1d2", "pos_enc": "whisper"},
}


def model_with(**options) -> CTCModel:
    recipe, tokenizer, _ = tiny_untrained_model()
    cfg = dataclasses.replace(recipe.model, **options)
    torch.manual_seed(1)
    return CTCModel(cfg, recipe.features, recipe.specaug, tokenizer.vocab_size).eval()


def log_probs(model: CTCModel, y: torch.Tensor) -> torch.Tensor:
    return model.head(y).float().log_softmax(dim=-1)  # (B, C, V)


@pytest.mark.parametrize("name", OPTIONS)
@torch.inference_mode()
def test_batched_chunks_equal_each_stream_alone(name):
    model = model_with(**OPTIONS[name])
    D, keep = model.head.in_features, LEFT_CHUNKS * CHUNK
    torch.manual_seed(2)
    frames = [torch.randn(1, (STEPS - s) * CHUNK, D) for s in STARTS]  # (1, T, D) per stream
    alone = []
    for x in frames:  # each stream by itself, the single-stream call
        cache, out = None, []
        for t in range(0, x.shape[1], CHUNK):
            y, cache = model.encoder.forward_chunk(x[:, t : t + CHUNK], t, cache, keep)
            out.append(log_probs(model, y)[0])
        alone.append(torch.cat(out))  # (T, V)
    acoustic = TorchAcoustic(model)  # the batch through the inference interface
    caches = [None] * len(STARTS)
    batched = [[] for _ in STARTS]
    for step in range(STEPS):
        rows = [i for i, s in enumerate(STARTS) if s <= step]  # the streams running at this step
        offsets = [(step - STARTS[i]) * CHUNK for i in rows]  # (B,)
        x = torch.cat([frames[i][:, o : o + CHUNK] for i, o in zip(rows, offsets)])  # (B, C, D)
        got, kept = acoustic.chunk_log_probs(x, offsets, [caches[i] for i in rows], keep)  # (B, C, V)
        for b, i in enumerate(rows):
            caches[i] = kept[b]
            batched[i].append(got[b])
    assert {c[0].keys.shape[2] for c in caches} == {keep, CHUNK}, "caches trimmed and still filling"
    for i, (a, b) in enumerate(zip(alone, batched)):
        b = torch.cat(b)
        assert b.shape == a.shape
        assert torch.allclose(a, b, atol=1e-4, rtol=0), f"stream {i}: {(a - b).abs().max():.2e}"
        assert (a.argmax(-1) == b.argmax(-1)).all()


@torch.inference_mode()
def test_a_failing_chunk_fails_its_stream_only():
    """Three streams' chunks in one batch, one past the positions the model encodes: the
    other two get what they get alone, that one its own error."""
    model = model_with()
    D = model.head.in_features
    torch.manual_seed(3)
    x = torch.randn(1, CHUNK, D)
    history = model.encoder.forward_chunk(torch.randn(1, CHUNK, D), 0, None)[1]  # a cache of one chunk
    jobs = {"fresh": (0, None), "late": (CHUNK, history), "too far": (10**5, history)}  # name -> offset, cache
    batcher = ChunkBatcher(TorchAcoustic(model), threading.Semaphore(1), window_ms=300, max_batch=8)
    results = {}

    def run(name):
        try:
            offset, cache = jobs[name]
            results[name] = batcher.encode(x, [offset], [cache], -1)[0]
        except ValueError as err:
            results[name] = err

    threads = [threading.Thread(target=run, args=(name,)) for name in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    batcher.close()
    assert isinstance(results.pop("too far"), ValueError)
    for name, got in results.items():
        alone = log_probs(model, model.encoder.forward_chunk(x, *jobs[name])[0])
        assert torch.allclose(got, alone, atol=1e-5), name
    assert dict(batcher.sizes) == {1: 2}, "the failed batch was retried one chunk at a time"


def test_batching_server_equals_unbatched_beside_a_hostile_client(recognizer, speech):  # noqa: F811
    pcms = [read_pcm(p) for p in speech]
    pcms.append(pcms[0])  # four clients
    transcripts = []
    for limits in ({"max_batch": 1}, {"max_batch": 8, "batch_window_ms": 30.0}):
        with running(recognizer, workers=2, **limits) as (url, server):
            *good, hostile = run_all(
                *(stream_pcm(url, pcm, rate, realtime=False, packet_ms=170, timeout_s=TIMEOUT) for pcm, rate in pcms),
                send_then_read(url, config(), b"\x00" * 3200, "\x00\xffgarbage"),
            )
            assert_one_error(hostile, "not JSON")
            assert all(run.errors == [] and run.close_code == 1000 for run in good)
            transcripts.append([(run.text, run.done["words"]) for run in good])
            batches = None if server.batcher is None else dict(server.batcher.sizes)
    unbatched, batched_run = transcripts
    assert batched_run == unbatched
    assert unbatched[0][0] and unbatched[0] == unbatched[3], "texts are long and the same audio gives the same"
    assert max(batches) > 1, f"no chunks were batched: {batches}"
