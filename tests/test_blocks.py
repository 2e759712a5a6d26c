"""Encoder block options (asr.config.ModelConfig): rotary positions, macaron feed-forwards,
causal and centred convolution modules, 8x subsampling, InterCTC and CR-CTC losses.

Each option on its own and all together: shapes and lengths, padding never reaching valid
frames, chunk-by-chunk streaming equal to the chunk-masked full pass, FLOP counts equal to
torch's counter, and checkpoints made before the options existed loading unchanged.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from asr.bench.flops import TRAINING_FACTOR, forward_flops, training_flops
from asr.config import ConfigError, FeatureConfig, ModelConfig, RecipeConfig, SpecAugmentConfig, recipe_to_dict
from asr.inference.checkpoint import load_parts
from asr.inference.options import TranscribeOptions
from asr.inference.recognizer import Recognizer
from asr.model import CTCModel
from asr.model.attention import SelfAttention
from asr.model.ctc_model import ctc_loss
from asr.model.encoder import TransformerEncoder
from asr.model.subsampling import Conv2dSubsampling4, DepthwiseSubsampling8
from asr.text.tokenizer import Tokenizer
from asr.training.losses import consistency_loss, training_loss
from models import explicit_attention
from test_streaming import feed, speechlike

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread

TINY = ModelConfig(d_model=32, n_heads=2, n_layers=3, ff_dim=64, subsampling_channels=8, dropout=0.0)
OPTIONS = {
    "base": {},
    "rope": {"pos_enc": "rope"},
    "macaron": {"macaron": True},
    "conv_causal": {"conv_kernel": 5},
    "conv_centred": {"conv_kernel": 7, "conv_causal": False},
    "dw8": {"subsampling": "dw8"},
    "whisper": {"subsampling": "conv1d2", "pos_enc": "whisper"},  # Whisper's layout (model.init)
    "all": {"pos_enc": "rope", "macaron": True, "conv_kernel": 7, "conv_causal": False, "subsampling": "dw8"},
}
VOCAB = 20


def make_model(name: str, seed: int = 0, **extra) -> CTCModel:
    torch.manual_seed(seed)
    config = dataclasses.replace(TINY, **{**OPTIONS[name], **extra})
    return CTCModel(config, FeatureConfig(), SpecAugmentConfig(), VOCAB).eval()


@pytest.mark.parametrize("name", OPTIONS)
def test_padded_batch_equals_each_utterance_alone(name):
    """Shapes and lengths, and padding never reaches valid frames, full context or chunked
    (the centred convolution zeroes padding; chunked, it must not read past the chunk)."""
    model = make_model(name)
    waves = [speechlike(s, seed=i) for i, s in enumerate((1.6, 1.03, 0.41))]
    batch = torch.zeros(3, waves[0].numel())
    for i, w in enumerate(waves):
        batch[i, : w.numel()] = w
    lengths = torch.tensor([w.numel() for w in waves])
    rate = model.subsampling.subsampling_rate
    with torch.no_grad():
        feats, feat_lens = model.features(batch, lengths)
        x, lens = model.subsampling(model.cmvn(feats), feat_lens)
        assert x.shape == (3, int(lens.max()), 32) and torch.equal(lens, model.subsampling.output_lengths(feat_lens))
        assert int(lens[0]) == {2: 77, 4: 38, 8: 18}[rate]  # 1.6 s: 158 log-mel frames
        for chunk in (0, 3):
            out = model.encoder(x, lens, chunk_frames=chunk)
            for i, w in enumerate(waves):
                f, fl = model.features(w[None], lengths[i : i + 1])
                xi, li = model.subsampling(model.cmvn(f), fl)
                alone = model.encoder(xi, li, chunk_frames=chunk)
                torch.testing.assert_close(out[i, : lens[i]], alone[0], atol=1e-5, rtol=1e-5)
        log_probs, out_lens = model(batch, lengths)
    assert log_probs.shape == (3, int(lens.max()), VOCAB) and torch.equal(out_lens, lens)
    assert model.frame_shift == pytest.approx(0.01 * rate)


@pytest.mark.parametrize("name", OPTIONS)
@pytest.mark.parametrize("chunk,left", [(4, 2), (3, -1), (1, 0), (6, 1)])
def test_chunk_by_chunk_stream_equals_the_chunk_masked_pass(name, chunk, left):
    """Every option claims streaming: chunks fed one at a time through the caches (rotary
    keys turned before they are cached, the convolution's left frames kept) give what one
    pass under the chunk mask gives, with memory bounded by the left context."""
    model = make_model(name)
    x = torch.randn(1, 29, 32, generator=torch.Generator().manual_seed(chunk))  # (B, T', D)
    keep = left * chunk if left >= 0 else -1
    with torch.no_grad():
        masked = model.encoder(x, torch.tensor([29]), chunk_frames=chunk, left_chunks=left)
        cache, outs = None, []
        for start in range(0, 29, chunk):
            y, cache = model.encoder.forward_chunk(x[:, start : start + chunk], start, cache, keep)
            outs.append(y)
            if left >= 0:
                assert all(c.keys.shape[2] <= keep for c in cache)
        full = model.encoder(x, torch.tensor([29]), chunk_frames=0)
    torch.testing.assert_close(torch.cat(outs, dim=1), masked, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(full, masked, atol=1e-3)  # the chunking really limits context


def test_centred_convolution_sees_the_future_only_within_its_chunk():
    model = make_model("conv_centred", conv_kernel=7)
    x = torch.randn(1, 12, 32, generator=torch.Generator().manual_seed(0))
    changed = x.clone()
    changed[:, 6] = torch.randn(32, generator=torch.Generator().manual_seed(1))  # first frame of the second chunk
    with torch.no_grad():
        conv = model.encoder.layers[0].conv
        full_a, full_b = conv(x), conv(changed)
        chunk_a, chunk_b = conv(x, chunk_frames=6), conv(changed, chunk_frames=6)
        causal = make_model("conv_causal", conv_kernel=7).encoder.layers[0].conv
        causal_a, causal_b = causal(x), causal(changed)
    assert not torch.allclose(full_a[:, 3:6], full_b[:, 3:6])  # centred, full context: 3 frames ahead
    assert torch.equal(full_a[:, :3], full_b[:, :3])
    assert torch.equal(chunk_a[:, :6], chunk_b[:, :6])  # chunked: nothing past the chunk's end
    assert torch.equal(causal_a[:, :6], causal_b[:, :6])


@pytest.mark.parametrize("offset", [1, 37, 10_000, 1_000_003])
def test_rotary_attention_weights_depend_only_on_offsets(offset):
    torch.manual_seed(0)
    attn = SelfAttention(32, 2, 0.0, rope=True).eval()
    x = torch.randn(2, 17, 32)
    mask = TransformerEncoder.attention_mask(torch.tensor([17, 11]), 17, chunk_frames=5)
    with torch.no_grad():
        at_zero, shifted = attn.weights(x, mask), attn.weights(x, mask, offset=offset)
        same_frames = attn.weights(x[:, :1].expand(2, 17, 32), mask)  # identical content at every frame
    torch.testing.assert_close(shifted, at_zero, atol=2e-6, rtol=1e-5)
    # positions alone still separate identical frames (without them every row would be uniform)
    rows = same_frames[0, :, 16]  # (H, T) weights of the last query
    assert (rows.max(dim=-1).values - rows.min(dim=-1).values > 1e-3).all()


def test_rotary_streams_past_the_absolute_table():
    """Sinusoids stop at 10,000 frames (400 s at 4x); rotary positions have no cap."""
    rope, absolute = make_model("rope").encoder, make_model("base").encoder
    x = torch.randn(1, 4, 32)
    with torch.no_grad():
        y, cache = rope.forward_chunk(x, 12_000, None)
        y2, _ = rope.forward_chunk(x, 0, None)
        with pytest.raises(ValueError, match="10000 positions"):
            absolute.forward_chunk(x, 12_000, None)
    torch.testing.assert_close(y, y2, atol=1e-5, rtol=1e-5)  # a chunk alone: only offsets matter
    assert cache[0].keys.shape == (1, 2, 4, 16)


def test_eight_times_subsampling_lengths_and_context():
    sub = DepthwiseSubsampling8(n_mels=80, channels=8, d_model=32)
    assert sub.output_lengths(torch.arange(0, sub.min_frames)).tolist() == [0] * sub.min_frames
    with torch.no_grad():
        for n in list(range(sub.min_frames, 80)) + [99, 100, 101, 127, 128, 129, 1000, 1001]:
            out, out_len = sub(torch.randn(1, n, 80), torch.tensor([n]))
            expected = max((((n - 1) // 2 - 1) // 2 - 1) // 2, 0)
            assert out.shape[1] == expected == int(out_len[0]), n
            assert expected >= n // 8 - 2
        assert int(sub.output_lengths(torch.tensor([sub.min_frames]))[0]) == 1
        assert int(sub.output_lengths(torch.tensor([sub.min_frames - 1]))[0]) == 0
        # declared right context: output frame t reads input frames 8t .. 8t + 14, no more
        feats = torch.randn(1, 100, 80)
        base, _ = sub(feats, torch.tensor([100]))
        for t in (0, 3, 7):
            last = 8 * t + sub.right_context
            inside, beyond = feats.clone(), feats.clone()
            inside[:, last] += 1.0
            beyond[:, last + 1 :] += 1.0
            assert not torch.allclose(sub(inside, torch.tensor([100]))[0][:, t], base[:, t])
            torch.testing.assert_close(sub(beyond, torch.tensor([100]))[0][:, : t + 1], base[:, : t + 1])
    assert (DepthwiseSubsampling8.subsampling_rate, Conv2dSubsampling4.subsampling_rate) == (8, 4)
    model = make_model("dw8")
    n = model.min_samples()
    with torch.no_grad():
        _, lens = model(torch.zeros(2, n), torch.tensor([n, n - 1]))
    assert lens.tolist() == [1, 0]


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.train(["THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG"], 40, "char")


@pytest.mark.parametrize("options", [TranscribeOptions(), TranscribeOptions(chunk_ms=160, left_chunks=2)])
def test_recognizer_streams_an_eight_times_model_like_a_batch(tokenizer, options):
    """The block-by-block front end, the chunked encoder and word times all read the model's
    80 ms frames: a stream's transcript equals the batch transcript."""
    torch.manual_seed(0)
    recipe = RecipeConfig(model=dataclasses.replace(TINY, **OPTIONS["all"]))
    model = CTCModel(recipe.model, recipe.features, recipe.specaug, tokenizer.vocab_size)
    with torch.no_grad():
        model.head.weight.mul_(20)  # outputs that change from frame to frame: long, varied texts
    recognizer = Recognizer(recipe, tokenizer, model.eval())
    wave = speechlike(3.3, 3)
    expected = recognizer.transcribe_batch([wave], options)[0]
    events = list(recognizer.stream(feed(lambda b: b, wave), options))
    final = [e.segment for e in events if e.final]
    assert len(final) == 1 and final[0].text == expected.text and final[0].words == expected.words
    assert len(expected.text) > 10
    assert final[0].end == pytest.approx(3.3, abs=0.2)  # 80 ms frames, timed as such


def _batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    waves = torch.stack([speechlike(1.2, seed), speechlike(1.2, seed + 1)])
    lengths = torch.tensor([19200, 15000])
    tokens = torch.randint(1, VOCAB, (2, 5), generator=g)
    return waves, lengths, tokens, torch.tensor([5, 3])


@pytest.mark.parametrize(
    "extra", [{"inter_ctc_layers": (1, 2), "inter_ctc_weight": 0.3}, {"cr_ctc_weight": 0.2},
              {"inter_ctc_layers": (2,), "inter_ctc_weight": 0.5, "cr_ctc_weight": 0.2, "chunk_train_prob": 1.0}],
)  # fmt: skip
def test_auxiliary_losses_are_finite_in_bf16_and_reach_the_first_layer(extra):
    model = make_model("conv_causal", **extra).train()
    waves, lengths, tokens, token_lengths = _batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = training_loss(model, model.encoder.config, waves, lengths, tokens, token_lengths)
    assert loss.dtype == torch.float32 and torch.isfinite(loss) and loss > 0
    loss.backward()
    first = model.encoder.layers[0].attn.qkv.weight.grad
    assert first is not None and torch.isfinite(first).all() and first.abs().sum() > 0
    assert model.subsampling.conv[0].weight.grad.abs().sum() > 0


def test_losses_combine_as_documented():
    """Without SpecAugment or dropout (eval mode) the pieces can be recomputed by hand: InterCTC
    mixes (1 - w) CTC + w mean(InterCTC); CR-CTC of two identical views adds nothing."""
    waves, lengths, tokens, token_lengths = _batch()
    plain = make_model("base")
    inter = make_model("base", inter_ctc_layers=(1, 2), inter_ctc_weight=0.25)
    cr = make_model("base", cr_ctc_weight=0.2)
    with torch.no_grad():
        log_probs, lens = plain(waves, lengths)
        reference = ctc_loss(log_probs, lens, tokens, token_lengths)
        assert torch.equal(training_loss(plain, plain.encoder.config, waves, lengths, tokens, token_lengths), reference)
        out = inter.forward_views(waves, lengths, 1, (1, 2))
        inter_losses = [ctc_loss(lp, lens, tokens, token_lengths) for lp in out.inter_log_probs]
        by_hand = 0.75 * reference + 0.25 * sum(inter_losses) / 2
        got = training_loss(inter, inter.encoder.config, waves, lengths, tokens, token_lengths)
        torch.testing.assert_close(got, by_hand)
        torch.testing.assert_close(training_loss(cr, cr.encoder.config, waves, lengths, tokens, token_lengths), reference)


def test_consistency_loss_is_the_symmetric_kl_over_valid_frames():
    torch.manual_seed(0)
    a, b = torch.randn(2, 6, 5).log_softmax(-1), torch.randn(2, 6, 5).log_softmax(-1)
    lengths = torch.tensor([6, 4])
    kl = lambda p, q: (p.exp() * (p - q)).sum(-1)  # KL(p || q) per frame  # noqa: E731
    by_hand = sum(0.5 * (kl(b[i], a[i]) + kl(a[i], b[i]))[:n].sum() for i, n in enumerate(lengths.tolist())) / 2
    torch.testing.assert_close(consistency_loss(a, b, lengths), by_hand)
    leaf = a.clone().requires_grad_()
    consistency_loss(leaf, b, lengths).backward()
    assert leaf.grad[1, 4:].abs().sum() == 0 and leaf.grad[0].abs().sum() > 0  # padding carries no gradient


@pytest.mark.parametrize("name", OPTIONS)
def test_flop_count_matches_torch_flop_counter(name):
    """Training mode with dropout on a CPU computes attention as explicit products, which the
    counter sees (it does not count SDPA's fused CPU kernel): the same FLOPs."""
    model = explicit_attention(make_model(name).train())
    feats, lengths = torch.randn(3, 157, 80), torch.tensor([157, 120, 90])
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        x, lens = model.subsampling(feats, lengths)
        model.head(model.encoder(x, lens, chunk_frames=0))
    counted = forward_flops(model.encoder.config, FeatureConfig(), VOCAB, 3, 157)
    assert counted["total"] == counter.get_total_flops()


def test_training_flops_count_both_views_and_the_inter_heads():
    model = make_model("conv_centred", inter_ctc_layers=(1, 2), inter_ctc_weight=0.3, cr_ctc_weight=0.2).train()
    explicit_attention(model)
    waves, lengths = torch.randn(2, 16000), torch.tensor([16000, 16000])
    with torch.no_grad():
        with FlopCounterMode(display=False) as counter:
            model.forward_views(waves, lengths, 2, (1, 2))
        with FlopCounterMode(display=False) as front_end:  # the mel filterbank is a product too: not model FLOPs
            model.features(waves, lengths)
    frames = int(model.features.num_frames(torch.tensor(16000)))
    expected = training_flops(model.encoder.config, FeatureConfig(), VOCAB, 2, frames)
    assert TRAINING_FACTOR * (counter.get_total_flops() - front_end.get_total_flops()) == expected


# what a checkpoint of a one-layer model with a convolution module held before the options existed
OLD_KEYS = {
    "cmvn.mean", "cmvn.std", "features.mel.spectrogram.window", "features.mel.mel_scale.fb",
    "subsampling.conv.0.weight", "subsampling.conv.0.bias", "subsampling.conv.2.weight", "subsampling.conv.2.bias",
    "subsampling.out.weight", "subsampling.out.bias", "head.weight", "head.bias", "encoder.norm.weight",
    "encoder.norm.bias",
} | {
    f"encoder.layers.0.{name}.{kind}" for kind in ("weight", "bias") for name in (
        "norm_attn", "attn.qkv", "attn.proj", "norm_ff", "ff.0", "ff.3", "conv.norm_in", "conv.pointwise_in",
        "conv.depthwise", "conv.norm_mid", "conv.pointwise_out",
    )
}  # fmt: skip


def test_a_checkpoint_from_before_the_options_loads_unchanged(tokenizer, tmp_path):
    recipe = RecipeConfig(model=dataclasses.replace(TINY, n_layers=1, conv_kernel=5))
    torch.manual_seed(0)
    model = CTCModel(recipe.model, recipe.features, recipe.specaug, tokenizer.vocab_size).eval()
    assert set(model.state_dict()) == OLD_KEYS  # the defaults build the old model, weight for weight
    config = recipe_to_dict(recipe)
    new_keys = {"subsampling", "pos_enc", "macaron", "conv_causal", "inter_ctc_layers", "inter_ctc_weight",
                "cr_ctc_weight"}  # fmt: skip
    config["model"] = {k: v for k, v in config["model"].items() if k not in new_keys}  # as old checkpoints stored it
    path = tmp_path / "old.pt"
    torch.save({"format_version": 1, "config": config, "tokenizer": tokenizer.model_proto,
                "state_dict": model.state_dict()}, path)  # fmt: skip
    loaded_recipe, _, loaded = load_parts(path)
    assert loaded_recipe.model == recipe.model
    wave = speechlike(1.5)
    with torch.no_grad():
        expected, _ = model(wave[None], torch.tensor([wave.numel()]))
        got, _ = loaded(wave[None], torch.tensor([wave.numel()]))
    assert torch.equal(got, expected)


def test_bad_options_name_their_key():
    bad_values = [
        {"pos_enc": "relative"}, {"subsampling": "conv6"}, {"conv_kernel": 4, "conv_causal": False},
        {"inter_ctc_layers": (3,)}, {"inter_ctc_weight": 1.0}, {"cr_ctc_weight": -0.1},
    ]  # fmt: skip
    for bad in bad_values:
        key = next(iter(bad)) if "conv_causal" not in bad else "conv_kernel"
        with pytest.raises(ConfigError, match=f"'model.{key}'"):
            dataclasses.replace(TINY, **bad)
