"""Pictures: the numbers behind each figure, and each figure rendered to PNG without a
display. The model is a small one with random weights (the checks are about what the
pictures show, not about what the model learned); the utterance is spoken by espeak-ng."""

from __future__ import annotations

import importlib
import io
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.audio.read import to_mono_16k
from asr.inference.checkpoint import checkpoint_meta
from asr.config import ModelConfig, RecipeConfig, SpecAugmentConfig
from asr.decoding import greedy_decode
from asr.inference.recognizer import Recognizer
from asr.model import CTCModel
from asr.inference.trace import AttentionCapture, attention_weights
from asr.plot.attention import attention_map, plot_attention
from asr.plot.curves import plot_training, read_metrics
from asr.inference.trace import record
from asr.plot.transcript import plot_transcript, show_transcript, transcript_view
from asr.inference.stream import TranscribeOptions
from asr.text.tokenizer import Tokenizer

SENTENCE = "the quick brown fox jumps over the lazy dog"


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread


def word_tokenizer() -> Tokenizer:
    """One piece per word of SENTENCE: every token the model emits is a word."""
    import sentencepiece as spm

    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([SENTENCE.upper()]), model_writer=proto, model_type="word", vocab_size=9,
        hard_vocab_limit=False, unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1, minloglevel=2,
    )  # fmt: skip
    return Tokenizer(proto.getvalue())


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    """Two layers of 4 heads with the causal conv module, random weights, word tokens."""
    torch.manual_seed(0)
    tokenizer = word_tokenizer()
    recipe = RecipeConfig(
        model=ModelConfig(
            d_model=32, n_heads=4, n_layers=2, ff_dim=64, dropout=0.0, subsampling_channels=8, conv_kernel=5
        ),
        specaug=SpecAugmentConfig(freq_masks=0, time_masks=0),
    )
    model = CTCModel(recipe.model, recipe.features, recipe.specaug, tokenizer.vocab_size)
    with torch.no_grad():  # untrained, yet speaking like a CTC model: mostly blank, words between
        model.head.bias[0] += 1.0
        model.head.bias[1] -= 10.0  # and never <unk>
    return Recognizer(recipe, tokenizer, model.eval())


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    """About 2.5 s of espeak-ng speech at 16 kHz."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: run 'bash scripts/setup.sh'")
    raw = tmp_path_factory.mktemp("audio") / "raw.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "170", "-w", str(raw), SENTENCE], check=True)
    samples, rate = sf.read(raw, dtype="float32")
    path = raw.with_name("fox.wav")
    sf.write(path, to_mono_16k(samples, rate).numpy(), 16000)
    return path


@pytest.fixture(scope="module")
def traced(recognizer, wav):
    return record(recognizer, wav)


def test_trace_holds_what_the_transcription_computed(recognizer, wav, traced):
    """The recorded waveform, features and log-probs are those of the file, and decoding
    the recorded log-probs gives the transcript (they are what the decoder saw)."""
    result, trace = traced
    audio, _ = sf.read(wav, dtype="float32")
    n_fft, hop = 400, 160
    assert len(audio) - hop < trace.wave.numel() <= len(audio)  # all but the last part-frame
    assert torch.equal(trace.wave, torch.from_numpy(audio[: trace.wave.numel()]))
    model = recognizer.model
    feats, _ = model.features(trace.wave[None], torch.tensor([trace.wave.numel()]))
    assert trace.logmel.shape == feats[0].shape == ((trace.wave.numel() - n_fft) // hop + 1, 80)
    torch.testing.assert_close(trace.logmel, feats[0], atol=1e-4, rtol=1e-5)
    frames = int(model.subsampling.output_lengths(torch.tensor([trace.logmel.shape[0]])))
    assert trace.log_probs.shape == (frames, recognizer.tokenizer.vocab_size)
    torch.testing.assert_close(trace.log_probs.logsumexp(-1), torch.zeros(frames), atol=1e-5, rtol=0)
    tokens = greedy_decode(trace.log_probs[None], torch.tensor([frames]))[0]
    assert recognizer.tokenizer.decode(tokens) == result.text
    assert len(trace.attention) == 2 and len(trace.attention[0]) == 1  # 2 layers, 1 segment
    assert trace.attention[0][0].x.shape == (1, frames, 32)


def test_transcript_picture(traced, tmp_path):
    result, trace = traced
    view = transcript_view(result, trace, top_k=3, min_prob=0.2)
    # the words: boxes inside the audio, in time order, not overlapping
    assert len(view.words) >= 2 and view.words == result.words
    assert 0 <= view.words[0].start and view.words[-1].end <= view.duration
    for w, nxt in zip(view.words, view.words[1:]):
        assert w.start < w.end <= nxt.start
    assert view.duration == pytest.approx(view.wave.size / 16000, abs=0.01)
    # the posteriors: the tokens drawn are those in some frame's top 3 with p >= 0.2
    probs = trace.log_probs.exp()
    top = probs.topk(3, dim=-1)
    expected = {int(i) for i, p in zip(top.indices.flatten(), top.values.flatten()) if p >= 0.2 and i != 0}
    assert set(view.tokens) == expected and len(view.tokens) == len(expected)
    assert 0 < len(expected) < probs.shape[1] - 2  # a choice was made
    np.testing.assert_allclose(view.posteriors, probs[:, list(view.tokens)].numpy())
    np.testing.assert_allclose(view.blank, probs[:, 0].numpy())
    assert (view.blank + view.posteriors.sum(1) <= 1 + 1e-5).all()
    assert view.labels == tuple(trace.tokenizer.piece(t) for t in view.tokens)

    out = plot_transcript(result, tmp_path / "fox.png", trace)
    image = plt_image(out)
    assert image.shape[0] == 7 * 110 and image.shape[1] >= 8 * 110  # 7 inches high at 110 dpi
    assert image[..., :3].std() > 0.1  # something was drawn


def test_transcript_figure_labels_every_word(traced):
    """Drawn into a figure: one label per word, at the centre of its box, in order."""
    from matplotlib.figure import Figure

    from asr.plot.transcript import draw_transcript

    result, trace = traced
    view = transcript_view(result, trace)
    wave_ax, _, post_ax = draw_transcript(Figure(), view)
    labels = [t for t in wave_ax.texts if t.get_text() in {w.text for w in view.words} and t.get_bbox_patch()]
    assert [t.get_text() for t in labels] == [w.text for w in view.words]
    assert [t.get_position()[0] for t in labels] == pytest.approx([(w.start + w.end) / 2 for w in view.words])
    assert post_ax.get_xlim() == pytest.approx((0, view.duration))


def test_attention_picture(recognizer, traced, tmp_path):
    result, trace = traced
    frames = trace.log_probs.shape[0]
    for layer in (0, 1, -1):
        heads = [attention_map(result, layer, head, trace=trace) for head in range(4)]
        mean = attention_map(result, layer, trace=trace)
        for amap in [*heads, mean]:
            assert amap.weights.shape == (frames, frames)
            np.testing.assert_allclose(amap.weights.sum(1), 1.0, atol=1e-5)  # each query's distribution
            assert (amap.weights >= 0).all()
        np.testing.assert_allclose(mean.weights, np.mean([h.weights for h in heads], axis=0), atol=1e-6)
        assert mean.layer == layer % 2 and mean.head is None and mean.start == 0.0
    assert mean.words == result.words  # one segment: every word, on both axes
    assert not np.allclose(heads[0].weights, heads[1].weights)  # the heads differ: a head really was picked

    out = plot_attention(result, tmp_path / "att.png", layer=1, head=2, trace=trace)
    assert plt_image(out)[..., :3].std() > 0.1
    with pytest.raises(ValueError, match="layers 0..1"):
        attention_map(result, 2, trace=trace)
    with pytest.raises(ValueError, match="heads 0..3"):
        attention_map(result, 0, 4, trace=trace)


def test_attention_is_masked_beyond_the_utterance(recognizer, wav):
    """In a padded batch a short utterance's queries give no weight to the padding, and
    its weights are those it gets alone."""
    model = recognizer.model
    audio = torch.from_numpy(sf.read(wav, dtype="float32")[0])
    short = audio[: audio.numel() // 2]
    waves = torch.stack([audio, torch.cat([short, torch.zeros(audio.numel() - short.numel())])])
    with torch.inference_mode(), AttentionCapture(recognizer.acoustic.attention_blocks) as batch:
        _, lengths = model.encode(waves, torch.tensor([audio.numel(), short.numel()]))
    with torch.inference_mode(), AttentionCapture(recognizer.acoustic.attention_blocks) as alone:
        model.encode(short[None], torch.tensor([short.numel()]))
    n = int(lengths[1])
    assert n < int(lengths[0]) == batch.calls[0][0].x.shape[1]
    for layer, attn in enumerate(model.encoder.layers):
        weights = attention_weights(attn.attn, batch.calls[layer][0])  # (2, H, T', T')
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, int(lengths[0])))
        assert (weights[1, :, :, n:] == 0).all() and (weights[1, :, :n, :n] > 0).all()
        solo = attention_weights(attn.attn, alone.calls[layer][0])[0]  # (H, n, n)
        torch.testing.assert_close(weights[1, :, :n, :n], solo, atol=1e-5, rtol=1e-4)


def test_recomputed_weights_reproduce_each_layer(recognizer, wav):
    """weights @ V, heads merged and projected, then the rest of the layer, gives the
    layer's output in the very forward pass that made the transcript."""
    model = recognizer.model
    seen = {}  # layer -> (input, output) of the EncoderLayer
    hooks = [
        layer.register_forward_hook(lambda m, args, out, i=i: seen.__setitem__(i, (args[0], out)))
        for i, layer in enumerate(model.encoder.layers)
    ]
    try:
        with AttentionCapture(recognizer.acoustic.attention_blocks) as capture:
            recognizer.transcribe(wav)
    finally:
        for hook in hooks:
            hook.remove()
    with torch.inference_mode():
        for i, layer in enumerate(model.encoder.layers):
            x_in, out = seen[i]
            call = capture.calls[i][0]
            torch.testing.assert_close(call.x, layer.norm_attn(x_in))  # the captured input is LN(x)
            weights = attention_weights(layer.attn, call)  # (1, H, T', T')
            B, T, D = call.x.shape
            _, _, v = layer.attn._qkv(call.x)  # (1, H, T', Dh)
            attended = layer.attn.proj((weights @ v).transpose(1, 2).reshape(B, T, D))  # heads merged: (1, T', D)
            rebuilt = rest_of_layer(layer, x_in, attended)
            torch.testing.assert_close(rebuilt, out, atol=1e-5, rtol=1e-4)
            uniform = weights.new_full(weights.shape, 1 / T)  # a wrong attention must not pass
            wrong = rest_of_layer(layer, x_in, layer.attn.proj((uniform @ v).transpose(1, 2).reshape(B, T, D)))
            assert not torch.allclose(wrong, out, atol=1e-3)


def rest_of_layer(layer, x: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
    """EncoderLayer.forward after its attention block (eval mode: dropout is identity)."""
    x = x + attended
    if layer.conv is not None:
        x = x + layer.conv(x)
    return x + layer.ff(layer.norm_ff(x))


def test_chunked_streaming_records_no_attention(recognizer, wav):
    """forward_chunk bypasses the hooks: the trace says so rather than show a wrong map."""
    result, trace = record(recognizer, wav, TranscribeOptions(chunk_ms=160, rescore=False))
    assert trace.attention == ()
    with pytest.raises(ValueError, match="full-context"):
        attention_map(result, 0, trace=trace)
    tokens = greedy_decode(trace.log_probs[None], torch.tensor([trace.log_probs.shape[0]]))[0]
    assert recognizer.tokenizer.decode(tokens) == result.text  # the transcript picture still works
    assert transcript_view(result, trace).words == result.words


def test_streamed_finals_trace_their_full_context_pass(recognizer, wav):
    """With the second pass (rescore) a final comes from a full-context pass: the trace holds
    its log-probs and attention, not the partials' chunks."""
    result, trace = record(recognizer, wav, TranscribeOptions(chunk_ms=160))
    tokens = greedy_decode(trace.log_probs[None], torch.tensor([trace.log_probs.shape[0]]))[0]
    assert recognizer.tokenizer.decode(tokens) == result.text
    assert len(trace.attention) == 2 and trace.attention[0][0].x.shape[1] == trace.log_probs.shape[0]
    assert attention_map(result, 1, trace=trace).weights.shape == (trace.log_probs.shape[0],) * 2


def test_trace_is_bounded(recognizer, wav):
    result, trace = record(recognizer, wav, max_seconds=1.0)
    assert trace.seconds == pytest.approx(1.0, abs=0.03) and trace.log_probs.shape[0] == 25  # 40 ms frames
    assert transcript_view(result, trace).duration == pytest.approx(1.0, abs=0.03)


def test_cli(recognizer, wav, tmp_path, capsys):
    from asr.cli.plot import main

    model_path = tmp_path / "model.pt"
    meta = checkpoint_meta(recognizer.recipe, recognizer.tokenizer)
    torch.save({**meta, "state_dict": recognizer.model.state_dict()}, model_path)
    assert main(["transcript", "--model", str(model_path), str(wav), "--out", str(tmp_path / "t.png")]) == 0
    assert main(["attention", "--model", str(model_path), str(wav), "--head", "1", "--out", str(tmp_path / "att")]) == 0
    written = capsys.readouterr().out.split()
    assert written == [str(tmp_path / "t.png"), *(str(tmp_path / "att" / f"fox.layer{i}.head1.png") for i in range(2))]
    for path in written:
        assert plt_image(path)[..., :3].std() > 0.1
    assert main(["attention", "--model", str(model_path), str(wav), "--layer", "5", "--out", str(tmp_path)]) == 1
    assert "layers 0..1" in capsys.readouterr().err
    missing = tmp_path / "missing.wav"
    assert main(["transcript", "--model", str(model_path), str(missing), "--out", str(tmp_path / "m.png")]) == 1
    assert "missing.wav: no such file" in capsys.readouterr().err


def test_training_curves(tmp_path):
    """A Lightning-style metrics.csv (sparse rows) is read back exactly and drawn."""
    log = tmp_path / "metrics.csv"
    log.write_text(
        "epoch,lr-AdamW/pg1,step,train_loss,val_loss,val_wer\n"
        ",0.0005,19,,,\n"
        "0,,19,80.5,,\n"
        ",0.001,39,,,\n"
        "0,,39,42.25,,\n"
        "0,,39,,30.0,0.75\n"
        "1,,79,12.5,,\n"
        "1,,79,,10.0,0.25\n"
    )
    series = read_metrics(log)
    assert series == {
        "lr-AdamW/pg1": [(19, 0.0005), (39, 0.001)],
        "train_loss": [(19, 80.5), (39, 42.25), (79, 12.5)],
        "val_loss": [(39, 30.0), (79, 10.0)],
        "val_wer": [(39, 0.75), (79, 0.25)],
    }
    out = plot_training(series, tmp_path / "curves.png", "tiny")
    image = plt_image(out)
    assert image.shape[:2] == (8 * 110, 7 * 110) and image[..., :3].std() > 0.1
    from asr.cli.plot import main

    assert main(["curves", str(log), "--out", str(tmp_path / "cli.png")]) == 0 and (tmp_path / "cli.png").stat().st_size


def test_without_matplotlib(recognizer, wav, tmp_path, monkeypatch, capsys):
    """Everything but drawing works without matplotlib; drawing says how to install it."""
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for name in [m for m in sys.modules if m.startswith("asr.plot") or m == "asr.cli.plot"]:
        monkeypatch.delitem(sys.modules, name)
    # the modules import afresh, with matplotlib unavailable
    plot = importlib.import_module("asr.plot")
    transcript = importlib.import_module("asr.plot.transcript")
    attention = importlib.import_module("asr.plot.attention")
    trace_mod = importlib.import_module("asr.inference.trace")
    cli = importlib.import_module("asr.cli.plot")
    curves = importlib.import_module("asr.plot.curves")

    result, trace = trace_mod.record(recognizer, wav)
    assert transcript.transcript_view(result, trace).words == result.words
    assert attention.attention_map(result, 0, 0, trace=trace).weights.shape[0] == trace.log_probs.shape[0]
    for draw in (
        lambda: transcript.plot_transcript(result, tmp_path / "t.png", trace),
        lambda: transcript.show_transcript(result, trace),
        lambda: attention.plot_attention(result, tmp_path / "a.png", 0, trace=trace),
        lambda: curves.plot_training({}, tmp_path / "c.png"),
    ):
        with pytest.raises(plot.PlotUnavailable, match=r"matplotlib: \S*pip install matplotlib$"):
            draw()
    assert not list(tmp_path.glob("*.png"))
    assert cli.main(["transcript", "--model", "nowhere.pt", str(wav), "--out", str(tmp_path / "t.png")]) == 1
    assert "pictures need matplotlib" in capsys.readouterr().err  # said before any model is loaded


def test_show_uses_the_session_backend(traced):
    import matplotlib.pyplot as plt

    result, trace = traced
    fig = show_transcript(result, trace)  # headless: a non-interactive backend, nothing opens
    assert len(fig.axes) == 3
    plt.close(fig)


def plt_image(path) -> np.ndarray:
    """A PNG's pixels: (H, W, 4) floats in [0, 1]."""
    import matplotlib.image

    return matplotlib.image.imread(path)
