"""Shapes, lengths and padding behaviour of the acoustic model."""

import pytest
import torch

from asr.config import FeatureConfig, ModelConfig, SpecAugmentConfig
from asr.model import CTCModel
from asr.model.encoder import TransformerEncoder
from asr.model.subsampling import Conv2dSubsampling4

SMALL = ModelConfig(d_model=32, n_heads=4, n_layers=2, ff_dim=64, dropout=0.0, subsampling_channels=8, conv_kernel=5)


@pytest.mark.parametrize("frames", [7, 8, 10, 11, 100, 101, 333])
def test_subsampling_shapes_and_lengths(frames):
    sub = Conv2dSubsampling4(n_mels=80, channels=8, d_model=32)
    feats = torch.randn(3, frames, 80)
    lengths = torch.tensor([frames, frames - 1, 7])
    out, out_lens = sub(feats, lengths)
    expected = ((frames - 1) // 2 - 1) // 2  # two kernel-3 stride-2 convolutions
    assert out.shape == (3, expected, 32)
    assert out_lens.tolist() == [expected, ((frames - 2) // 2 - 1) // 2, 1]
    assert expected >= frames // 4 - 2  # about 4x fewer frames


def test_subsampled_frames_never_read_padding():
    sub = Conv2dSubsampling4(n_mels=80, channels=8, d_model=32)
    feats = torch.randn(1, 50, 80)
    out_short, lens = sub(feats[:, :30], torch.tensor([30]))
    noisy = feats.clone()
    noisy[:, 30:] = 1e3  # garbage where the padding would be
    out_long, _ = sub(noisy, torch.tensor([30]))
    n = int(lens[0])
    torch.testing.assert_close(out_long[:, :n], out_short[:, :n])


def _model(seed=0):
    torch.manual_seed(seed)
    return CTCModel(SMALL, FeatureConfig(), SpecAugmentConfig(), vocab_size=20).eval()


def test_padded_batch_equals_each_utterance_alone():
    model = _model()
    waves = [torch.randn(n) * 0.1 for n in (16000, 9000, 4321)]
    batch = torch.zeros(3, 16000)
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
    with torch.no_grad():
        log_probs, lens = model(batch, torch.tensor([len(w) for w in waves]))
        for i, w in enumerate(waves):
            alone, alone_len = model(w.unsqueeze(0), torch.tensor([len(w)]))
            assert int(lens[i]) == int(alone_len[0])
            torch.testing.assert_close(log_probs[i, : lens[i]], alone[0], atol=1e-4, rtol=1e-4)


def test_output_frame_rate_is_40ms():
    model = _model()
    with torch.no_grad():
        log_probs, lens = model(torch.zeros(1, 160000), torch.tensor([160000]))  # 10 s
    assert log_probs.shape[-1] == 20
    assert model.frame_shift == pytest.approx(0.04)
    assert abs(int(lens[0]) - 250) <= 2  # 10 s / 40 ms
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(1, int(lens[0])))


def test_shortest_audio_gives_one_frame():
    model = _model()
    n = model.min_samples()
    with torch.no_grad():
        _, lens = model(torch.zeros(2, n), torch.tensor([n, n - 1]))
    assert lens.tolist() == [1, 0]


def test_chunk_mask_limits_context():
    mask = TransformerEncoder.attention_mask(torch.tensor([10, 6]), 10, chunk_frames=3, left_chunks=1)
    assert mask.shape == (2, 1, 10, 10)
    m = mask[0, 0]
    # frame 4 is in chunk 1 (frames 3-5): sees chunks 0 and 1, nothing after frame 5
    assert m[4].tolist() == [True] * 6 + [False] * 4
    # frame 9 is in chunk 3 (frame 9): sees chunk 2 (6-8) and itself, not chunks 0-1
    assert m[9].tolist() == [False] * 6 + [True] * 4
    assert not mask[1, 0, :, 6:].any()  # padding of the second utterance is never a key


def test_chunked_attention_ignores_the_future():
    torch.manual_seed(0)
    encoder = TransformerEncoder(SMALL).eval()
    x = torch.randn(1, 12, 32)
    changed = x.clone()
    changed[:, 8:] = torch.randn(1, 4, 32)  # alter chunk 2 (frames 8-11) only
    with torch.no_grad():
        a = encoder(x, torch.tensor([12]), chunk_frames=4)
        b = encoder(changed, torch.tensor([12]), chunk_frames=4)
        full_a = encoder(x, torch.tensor([12]))
        full_b = encoder(changed, torch.tensor([12]))
    torch.testing.assert_close(a[:, :8], b[:, :8])  # earlier chunks cannot see it
    assert not torch.allclose(full_a[:, :8], full_b[:, :8])  # full context does


def test_ctc_loss_is_fp32_under_bf16_autocast():
    """bf16 log-probs (what a model under autocast may hand over) give the fp32 loss of the
    same values, with and without autocast around the call: CPU CTC has no bf16 kernel, so
    without the guard inside ctc_loss this raises (and on a GPU it would lose precision)."""
    from asr.model.ctc_model import ctc_loss

    torch.manual_seed(0)
    log_probs = torch.randn(2, 50, 20).log_softmax(-1).bfloat16()  # (B, T', V)
    lens, tokens, token_lens = torch.tensor([50, 40]), torch.tensor([[1, 2, 3], [4, 5, 0]]), torch.tensor([3, 2])
    reference = ctc_loss(log_probs.float(), lens, tokens, token_lens)
    for autocast in (False, True):
        leaf = log_probs.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = ctc_loss(leaf, lens, tokens, token_lens)
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
        torch.testing.assert_close(loss, reference, atol=0, rtol=0)  # the same fp32 arithmetic
        loss.backward()
        assert leaf.grad.dtype == torch.bfloat16 and torch.isfinite(leaf.grad.float()).all()
