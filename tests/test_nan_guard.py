"""No attention row without a key, so no NaN: a padded query in a chunk of padding once had
no key at all, and SDPA kernels on CUDA answered such rows with NaN, which the backward pass
spread to every weight. Here the attention is replaced by a strict reference that gives NaN
on such rows, as those kernels did; the training step (bf16 autocast, dropout 0.1, unequal
lengths, both LibriSpeech recipes' blocks, chunks of one frame with no left context and
random chunks) must keep its loss and every gradient finite, every parameter with one.
Without the guard in ``TransformerEncoder.attention_mask`` these tests fail."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from asr.bench import gpu_cases
from asr.bench.gpu import librispeech_recipes
from asr.model.attention import SelfAttention
from asr.model.encoder import TransformerEncoder, padding_mask


def _strict_weights(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(QK^T) with -inf on masked keys: a row with no key is NaN, as in CUDA kernels."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, T, T)
    return scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)


def _strict_sdpa(q, k, v, attn_mask=None, dropout_p=0.0, **kwargs):
    mask = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool) if attn_mask is None else attn_mask
    return F.dropout(_strict_weights(q, k, mask), dropout_p) @ v


@pytest.fixture
def strict_attention(monkeypatch):
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", _strict_sdpa)
    monkeypatch.setattr(SelfAttention, "_softmax", staticmethod(_strict_weights))


@pytest.mark.parametrize("chunk, left", [(1, 0), (1, 3), (4, 0), (5, 1), (16, 8), (3, -1), (0, -1)])
def test_every_query_has_a_key_and_valid_frames_keep_their_chunks(chunk, left):
    lengths = torch.tensor([23, 1, 7, 0, 16])
    T = 23
    mask = TransformerEncoder.attention_mask(lengths, T, chunk, left)
    mask = mask.expand(len(lengths), 1, T, T)
    assert mask.any(dim=-1).all()  # no row fully masked
    valid = padding_mask(lengths, T)  # (B, T)
    assert not (mask[:, 0] & ~valid[:, None, :])[lengths > 0].any()  # padding is never a key of a real utterance
    if chunk > 0:  # a real frame sees exactly its own chunk and `left` before it, as in streaming
        block = torch.arange(T) // chunk
        allowed = block[None, :] <= block[:, None]
        if left >= 0:
            allowed &= block[None, :] >= block[:, None] - left
        for b in range(len(lengths)):
            rows = valid[b]
            assert torch.equal(mask[b, 0][rows], (allowed & valid[b][None, :])[rows])


@pytest.mark.parametrize("name", ["train_100h", "train_960h"])
@pytest.mark.parametrize("chunks", ["1/0", "random"])
def test_a_bf16_training_step_stays_finite_with_padding_and_chunks(strict_attention, name, chunks):
    recipe = librispeech_recipes(dry_run=True)[name]  # the recipe's blocks, a tiny model
    assert recipe.model.dropout == 0.1 and recipe.data.augment_device  # the recipe's, as training runs it
    row = gpu_cases.nan_check(recipe, torch.device("cpu"), chunks, gpu_cases.DRY_RUN, bf16=True)
    assert row["padded_share"] > 0.2  # the batch is padded
    assert all(math.isfinite(x) for x in row["loss"]), row
    assert row["nonfinite_grads"] == [] and row["without_grad"] == [], row
    assert row["ok"]


def test_the_strict_reference_does_give_nan_on_a_row_without_a_key(strict_attention):
    """The reference is strict: were any row fully masked, the check above would see NaN."""
    q = k = v = torch.randn(1, 1, 3, 4)
    mask = torch.tensor([[True, False, False], [False, False, False], [True, True, True]])
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.isnan(out[0, 0, 1]).all() and torch.isfinite(out[0, 0, [0, 2]]).all()
