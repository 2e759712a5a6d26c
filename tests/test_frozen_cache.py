"""The frozen front's cache (asr.training.frozen_cache, data.cache_frozen_gb): the cached path
computes what the whole model computes, a second pass over the same utterances skips the
augmentation and the front, the cache keeps within its bytes, and recipes whose front is not
a fixed function of the audio are refused with the key named."""

from __future__ import annotations

import pytest
import torch

from asr.config import ConfigError, recipe_from_dict, recipe_to_dict
from asr.data.batch import Batch, collate
from asr.text.tokenizer import Tokenizer
from asr.training.frozen_cache import FrozenCache
from asr.training.module import ASRModule
from test_augment import speak

TEXTS = ("The quick brown fox jumps over the lazy dog.", "Seven ships sailed at dawn.", "Call me back tomorrow.")


def recipe(**model):
    """A 3-layer model whose first 2 layers are frozen, noise added to every utterance, no masks."""
    values = {
        "tokenizer": {"kind": "char"},
        "model": {"d_model": 32, "n_heads": 2, "n_layers": 3, "ff_dim": 64, "subsampling_channels": 8,
                  "dropout": 0.0, "freeze_layers": 2, **model},
        "data": {"cache_frozen_gb": 0.01, "augment_device": True},
        "augment": {"noise_prob": 1.0},
        "specaug": {"freq_masks": 0, "time_masks": 0},  # random masks would differ between the two modules
    }  # fmt: skip
    return recipe_from_dict(values)


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.train([t.upper() for t in TEXTS], 64, "char")


@pytest.fixture(scope="module")
def batch(tmp_path_factory, tokenizer) -> Batch:
    """Three espeak-ng utterances of different lengths, padded to the longest."""
    folder = tmp_path_factory.mktemp("frozen")
    items = []
    for i, text in enumerate(TEXTS):
        text = text.upper().rstrip(".")
        items.append((f"u{i}", speak(folder, text), torch.tensor(tokenizer.encode(text)), text))
    return collate(items)


def _plain(recipe_) -> dict:
    """The recipe without the cache, as a dict."""
    values = recipe_to_dict(recipe_)
    values["data"]["cache_frozen_gb"] = 0.0
    return values


def module_for(recipe_, tokenizer, monkeypatch) -> ASRModule:
    torch.manual_seed(0)
    module = ASRModule(recipe_, tokenizer)
    monkeypatch.setattr(module, "log", lambda *args, **kwargs: None)  # no trainer here
    monkeypatch.setattr(module, "optimizers", lambda: torch.optim.SGD(module.parameters(), lr=0.1))
    return module


def test_front_then_trained_layers_equal_the_whole_model(batch, tokenizer):
    torch.manual_seed(0)
    module = ASRModule(recipe(), tokenizer)
    model = module.model.eval()
    log_probs, lengths = model(batch.waves, batch.wave_lengths)
    front, front_lengths = model.frozen_front(batch.waves, batch.wave_lengths)
    assert not front.requires_grad  # no graph through the frozen layers
    assert torch.equal(front_lengths, lengths)
    torch.testing.assert_close(model.from_frozen(front, front_lengths), log_probs, rtol=1e-5, atol=1e-5)
    model.from_frozen(front, front_lengths).sum().backward()
    trained = {name for name, p in model.named_parameters() if p.grad is not None}
    assert trained and all(name.startswith(("encoder.layers.2.", "encoder.norm.", "head.")) for name in trained)


def test_second_pass_reads_the_cache_and_skips_augmentation_and_front(batch, tokenizer, monkeypatch):
    cached = module_for(recipe(), tokenizer, monkeypatch)
    plain = module_for(recipe_from_dict(_plain(recipe())), tokenizer, monkeypatch)
    plain.model.load_state_dict(cached.model.state_dict())
    first = cached.training_step(batch, 0)
    assert len(cached.frozen_cache) == 3
    # the first pass is the plain training step, augmentation included (same batch key)
    torch.testing.assert_close(first, plain.training_step(batch, 0), rtol=1e-5, atol=1e-4)

    calls = []
    for name, owner in (("frozen_front", cached.model), ("batch", cached.device_augment)):
        real = getattr(owner, name)
        monkeypatch.setattr(owner, name, lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
    second = cached.training_step(batch, 1)  # another batch key: fresh augmentation, were it drawn
    assert calls == []
    torch.testing.assert_close(second, first)  # the first draw heard again
    assert not torch.allclose(plain.training_step(batch, 1), first)  # where the plain step draws anew


def test_cache_keeps_within_its_bytes():
    rows = [torch.randn(n, 4) for n in (5, 3, 7)]
    x = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)  # (3, 7, 4)
    cache = FrozenCache(max_bytes=(5 + 3) * 4 * 4)  # room for the first two rows only
    cache.put(("a", "b", "c"), x, torch.tensor([5, 3, 7]))
    assert len(cache) == 2 and cache.full and cache.bytes == (5 + 3) * 16
    assert cache.get(("a", "c")) is None  # c was turned away
    padded, lengths = cache.get(("b", "a"))
    assert lengths.tolist() == [3, 5] and padded.shape == (2, 5, 4)
    assert torch.equal(padded[0, :3], rows[1]) and torch.equal(padded[1], rows[0])
    assert torch.equal(padded[0, 3:], torch.zeros(2, 4))
    x.zero_()  # the cache holds copies
    assert torch.equal(cache.get(("a",))[0][0], rows[0])


@pytest.mark.parametrize(
    "model, why",
    [
        ({"freeze_layers": 0}, "needs model.freeze_layers > 0"),
        ({"chunk_train_prob": 0.5}, "needs model.chunk_train_prob 0"),
        ({"cr_ctc_weight": 0.2}, "needs plain CTC"),
        ({"inter_ctc_layers": [1], "inter_ctc_weight": 0.3}, "needs plain CTC"),
    ],
)
def test_refused_where_the_front_is_not_a_fixed_function(model, why, tokenizer):
    with pytest.raises(ConfigError) as error:
        ASRModule(recipe(**model), tokenizer)
    assert str(error.value).startswith(f"config key 'data.cache_frozen_gb': {why}")


def test_each_epoch_draws_fresh_masks_over_the_cached_front(batch, tokenizer, monkeypatch):
    """SpecAugment comes after the frozen front: the cache holds the unmasked front, and each
    pass over a held utterance masks it anew (masks in the cache would be heard every epoch)."""
    values = _plain(recipe())
    values["data"].update(cache_frozen_gb=0.01, augment_device=False)
    values["augment"]["noise_prob"] = 0.0  # the front is then a fixed function of the audio
    values["specaug"] = {"freq_masks": 2, "freq_width": 15, "time_masks": 2, "time_width": 0.2}
    module = module_for(recipe_from_dict(values), tokenizer, monkeypatch)
    model = module.model
    seen = []  # each utterance's input to the trained layers, masks applied, without padding
    real = model.encoder.forward_layers

    def record(x, lengths, start, stop):
        if start == 2:
            seen.append([row[:n].detach().clone() for row, n in zip(x, lengths.tolist())])
        return real(x, lengths, start, stop)

    monkeypatch.setattr(model.encoder, "forward_layers", record)
    module.training_step(batch, 0)
    module.training_step(batch, 1)  # from the cache
    assert len(seen) == 2 and not any(torch.equal(a, b) for a, b in zip(*seen))
    unmasked, lengths = model.eval().frozen_front(batch.waves, batch.wave_lengths)  # (B, T', D), (B,)
    for b, i in enumerate(batch.ids):
        torch.testing.assert_close(module.frozen_cache.outputs[i], unmasked[b, : lengths[b]])
    model.train()
    masked, _ = model.frozen_front(batch.waves, batch.wave_lengths)  # training mode: the front still masks nothing
    torch.testing.assert_close(masked, unmasked)
