"""Tiny models the tests build themselves (imported by test modules; pytest puts tests/ on sys.path)."""

from __future__ import annotations

import torch

from asr.config import ModelConfig, RecipeConfig, SpecAugmentConfig
from asr.model import CTCModel
from asr.model.attention import SelfAttention
from asr.text.tokenizer import Tokenizer


def tiny_untrained_model() -> tuple[RecipeConfig, Tokenizer, CTCModel]:
    """A 2-layer untrained character model whose head is scaled up, so its output changes
    from frame to frame: texts are long and varied, and equal texts mean equal computations."""
    torch.manual_seed(0)
    tokenizer = Tokenizer.train(["THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG"], 40, "char")
    recipe = RecipeConfig(
        model=ModelConfig(d_model=32, n_heads=2, n_layers=2, ff_dim=64, subsampling_channels=8, dropout=0.0)
    )
    model = CTCModel(recipe.model, recipe.features, recipe.specaug, tokenizer.vocab_size)
    with torch.no_grad():
        model.head.weight.mul_(20)
    return recipe, tokenizer, model


def explicit_attention(model: CTCModel) -> CTCModel:
    """A little attention dropout: training mode then takes the explicit softmax(QK^T)V products
    (SDPA otherwise), whose FLOPs torch's counter sees."""
    for module in model.modules():
        if isinstance(module, SelfAttention):
            module.dropout = 1e-4
    return model



def small_chunk_trained(tokenizer: Tokenizer, train: list, steps: int, rng) -> tuple[RecipeConfig, CTCModel]:
    """A small model trained in seconds on (waveform, text) pairs: chunk training (as the demo
    recipe) so that its streamed output holds up, no dropout, no SpecAugment; feature
    statistics from the training audio; ``steps`` batches of 8 drawn with ``rng``."""
    from asr.data.batch import pad_1d
    from asr.model.ctc_model import ctc_loss

    torch.manual_seed(0)
    recipe = RecipeConfig(
        model=ModelConfig(
            d_model=64, n_heads=2, n_layers=2, ff_dim=128, subsampling_channels=16, dropout=0.0, chunk_train_prob=0.5
        ),
        specaug=SpecAugmentConfig(freq_masks=0, time_masks=0),
    )
    model = CTCModel(recipe.model, recipe.features, recipe.specaug, tokenizer.vocab_size)
    with torch.no_grad():
        audio = torch.cat([wave for wave, _ in train])
        feats, _ = model.features(audio[None], torch.tensor([audio.numel()]))  # (1, T, F)
        model.cmvn.set_stats(feats[0].mean(0), feats[0].std(0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        batch = rng.sample(train, 8)
        waves, lengths = pad_1d([wave for wave, _ in batch], torch.float32)
        tokens, token_lengths = pad_1d([torch.tensor(tokenizer.encode(t)) for _, t in batch], torch.long)
        log_probs, out_lengths = model(waves, lengths)
        loss = ctc_loss(log_probs, out_lengths, tokens, token_lengths)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
    return recipe, model.eval()
