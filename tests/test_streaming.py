"""Streaming equals whole-signal computation: block reading and resampling, the front end,
the cached chunk encoder against the chunk attention mask, and whole transcripts; long
audio is cut into segments at pauses; input that breaks off keeps what came before."""

from __future__ import annotations

import dataclasses

import numpy as np
from dataclasses import replace

import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

from asr.audio.read import AudioError, read_audio
from asr.config import ModelConfig, RecipeConfig
from asr.inference.recognizer import Recognizer
from asr.model import CTCModel
from asr.inference.stream import TranscribeOptions, transcribe_stream
from asr.inference.frontend import StreamingFrontend
from asr.audio.resample import StreamingResampler
from asr.audio.sources import file_blocks
from models import tiny_untrained_model


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    """A tiny untrained model whose head is scaled up so its output changes from frame to
    frame: texts are long and varied, so equal texts mean equal computations."""
    recipe, tokenizer, model = tiny_untrained_model()
    return Recognizer(recipe, tokenizer, model.eval())


def speechlike(seconds: float, seed: int = 0, rate: int = 16000) -> torch.Tensor:
    """Noise bursts with an envelope: not speech, but loud and quiet parts like it."""
    g = torch.Generator().manual_seed(seed)
    n = int(seconds * rate)
    envelope = (torch.sin(torch.arange(n) / rate * 2 * torch.pi * 1.3) > -0.3).float()
    return 0.3 * torch.randn(n, generator=g) * envelope


def feed(blocks_of, wave: torch.Tensor, sizes=(1, 399, 160 * 7, 5000, 3, 12345)):
    """Split ``wave`` into irregular blocks and pass each to ``blocks_of``."""
    out, start, k = [], 0, 0
    while start < wave.numel():
        out.append(blocks_of(wave[start : start + sizes[k % len(sizes)]]))
        start += sizes[k % len(sizes)]
        k += 1
    return out


@pytest.mark.parametrize("orig", [8000, 22050, 44100, 16000])
def test_block_resampling_equals_whole_signal(orig):
    wave = torch.randn(orig + 777, generator=torch.Generator().manual_seed(1))
    resampler = StreamingResampler(orig, 16000)
    streamed = torch.cat(feed(resampler.process, wave) + [resampler.flush()])
    whole = AF.resample(wave, orig, 16000)
    assert streamed.shape == whole.shape
    assert torch.allclose(streamed, whole, atol=1e-4)


def test_file_blocks_equal_reading_the_whole_file(tmp_path):
    stereo = np.stack([speechlike(2.5, 1, 44100).numpy(), speechlike(2.5, 2, 44100).numpy()], axis=1) * 0.5
    path = tmp_path / "stereo.flac"
    sf.write(path, stereo, 44100, subtype="PCM_16")
    blocks = list(file_blocks(path, 16000, block_seconds=0.3))
    assert len(blocks) > 5  # really read in pieces
    assert torch.allclose(torch.cat(blocks), read_audio(path), atol=1e-4)


def test_streaming_front_end_equals_whole_signal(recognizer):
    model = recognizer.model
    wave = speechlike(3.1)
    with torch.no_grad():
        feats, lens = model.features(wave[None], torch.tensor([wave.numel()]))
        whole, _ = model.subsampling(model.cmvn(feats), lens)  # (1, T', D)
    frontend = StreamingFrontend(recognizer.acoustic)
    outputs = feed(frontend.process, wave) + [frontend.flush()]
    streamed = torch.cat([o.frames for o in outputs])
    assert streamed.shape == whole[0].shape
    assert torch.allclose(streamed, whole[0], atol=1e-5)


@pytest.mark.parametrize(
    "chunk,left,conv,conv_from", [(4, 2, 0, 0), (3, -1, 0, 0), (5, 0, 0, 0), (16, 8, 0, 0), (4, 2, 5, 0), (3, 0, 15, 0),
                                  (4, 2, 5, 1)]  # conv_from 1: the second layer alone has the convolution module
)  # fmt: skip
def test_cached_chunk_encoder_equals_chunk_mask(recognizer, chunk, left, conv, conv_from):
    model = recognizer.model
    if conv:  # the causal convolution module carries its own state between chunks
        config = ModelConfig(d_model=32, n_heads=2, n_layers=2, ff_dim=64, subsampling_channels=8, dropout=0.0)
        config = dataclasses.replace(config, conv_kernel=conv, conv_from_layer=conv_from)
        model = CTCModel(config, RecipeConfig().features, RecipeConfig().specaug, model.head.out_features).eval()
    x = torch.randn(1, 47, 32, generator=torch.Generator().manual_seed(chunk))  # (B, T', D)
    lengths = torch.tensor([47])
    with torch.no_grad():
        masked = model.head(model.encoder(x, lengths, chunk_frames=chunk, left_chunks=left)).log_softmax(-1)
        cache, outs, keep = None, [], left * chunk if left >= 0 else -1
        for start in range(0, 47, chunk):
            y, cache = model.encoder.forward_chunk(x[:, start : start + chunk], start, cache, keep)
            outs.append(model.head(y).log_softmax(-1))
            if left >= 0:  # memory is bounded: only the left context is kept
                assert all(c.keys.shape[2] <= keep and c.values.shape[2] <= keep for c in cache)
    assert torch.allclose(torch.cat(outs, dim=1), masked, atol=1e-4)
    if left >= 0:  # and the mask really limits context: full attention differs
        full = model.head(model.encoder(x, lengths, chunk_frames=0)).log_softmax(-1)
        assert not torch.allclose(full, masked, atol=1e-3)


@pytest.mark.parametrize(
    "options",
    [
        TranscribeOptions(),
        TranscribeOptions(chunk_ms=160, left_chunks=2, rescore=False),
        TranscribeOptions(chunk_ms=640, beam_width=4, rescore=False),
        TranscribeOptions(chunk_ms=160, left_chunks=2),
        TranscribeOptions(chunk_ms=640, beam_width=4),
    ],
)
def test_stream_equals_batch(recognizer, options):
    """The chunked pass alone equals the chunk attention mask on a batch; with the second pass
    (rescore) a final result equals the full-context batch, and the partials stay chunked."""
    waves = [speechlike(3.3, 3), speechlike(1.2, 4)]
    batch = recognizer.transcribe_batch(waves, options)
    full = recognizer.transcribe_batch(waves, replace(options, chunk_ms=0))
    chunked = recognizer.transcribe_batch(waves, replace(options, rescore=False))
    for wave, expected, whole, masked in zip(waves, batch, full, chunked):
        events = list(recognizer.stream(feed(lambda b: b, wave), options))
        final = [e.segment for e in events if e.final]
        assert len(final) == 1 and final[0].text == expected.text and final[0].words == expected.words
        assert len(expected.text) > 10  # a real output, not an empty string on both sides
        if not options.chunk_ms:
            continue
        partial = [e for e in events if not e.final]
        if options.rescore:  # a partial result follows every whole chunk; the final is full context
            assert final[0].text == whole.text and final[0].words == whole.words
            if options.chunk_ms == 160 and wave is waves[0]:  # here the chunked pass alone reads it otherwise
                assert masked.text != whole.text
            assert len(partial) == int(final[0].end * 1000 // options.chunk_ms)
        else:  # a partial result follows every chunk, the last one the final text
            assert len(partial) == -(-final[0].end * 1000 // options.chunk_ms)
            assert partial[-1].segment.text == final[0].text


def tone_and_pauses(parts: list[tuple[float, bool]], rate: int = 16000) -> torch.Tensor:
    """(seconds, loud) pieces -> waveform; quiet pieces are near-silent noise."""
    g = torch.Generator().manual_seed(5)
    return torch.cat([torch.randn(int(s * rate), generator=g) * (0.3 if loud else 1e-5) for s, loud in parts])


@pytest.mark.parametrize("chunk_ms", [0, 320])
def test_long_audio_is_cut_at_pauses(recognizer, chunk_ms):
    parts = [(2.0, True), (0.8, False), (2.4, True), (0.8, False), (1.5, True)]
    wave = tone_and_pauses(parts)
    options = TranscribeOptions(chunk_ms=chunk_ms, min_segment_s=1.0, max_segment_s=8.0, pause_ms=400)
    segments = [e.segment for e in recognizer.stream([wave], options) if e.final]
    assert len(segments) == 3
    pauses = [(2.0, 2.8), (5.2, 6.0)]
    for segment, (quiet_start, quiet_end) in zip(segments, pauses):
        assert quiet_start < segment.end <= quiet_end  # each cut falls inside a pause
    assert segments[0].start == 0 and all(a.end == b.start for a, b in zip(segments, segments[1:]))


@pytest.mark.parametrize("chunk_ms", [0, 320])
def test_segments_never_exceed_the_maximum(recognizer, chunk_ms):
    wave = speechlike(7.0) + 0.01 * torch.randn(7 * 16000)  # no pause long enough anywhere
    options = TranscribeOptions(chunk_ms=chunk_ms, min_segment_s=1.0, max_segment_s=2.0)
    segments = [e.segment for e in recognizer.stream([wave], options) if e.final]
    assert len(segments) >= 4
    assert all(s.end - s.start <= 2.0 + 1e-6 for s in segments)
    assert segments[-1].end == pytest.approx(7.0, abs=0.1)


def test_truncated_file_keeps_what_was_read(recognizer, tmp_path):
    path = tmp_path / "whole.flac"
    sf.write(path, speechlike(6.0).numpy(), 16000, subtype="PCM_16")
    cut = tmp_path / "cut.flac"
    data = path.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    readable = []
    with pytest.raises(AudioError, match=f"{cut}: unreadable after"):
        for block in file_blocks(cut, 16000):
            readable.append(block)
    prefix = torch.cat(readable)
    assert 1.0 < prefix.numel() / 16000 < 5.0
    options = TranscribeOptions(chunk_ms=320)
    events = []
    with pytest.raises(AudioError):
        for event in transcribe_stream(recognizer.acoustic, recognizer.tokenizer, file_blocks(cut, 16000), options):
            events.append(event)
    kept = [e.segment for e in events if e.final]
    assert len(kept) == 1 and kept[0].text == recognizer.transcribe(prefix, options).text != ""


def test_truncated_wav_is_detected(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, speechlike(2.0).numpy(), 16000, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 16000])  # libsndfile alone would read the rest silently
    with pytest.raises(AudioError, match="truncated"):
        list(file_blocks(path, 16000))
