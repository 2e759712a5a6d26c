"""Tiny models the tests build themselves (imported by test modules; pytest puts tests/ on sys.path)."""

from __future__ import annotations

import torch

from asr.config import ModelConfig, RecipeConfig
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
