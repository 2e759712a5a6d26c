"""Model FLOPs counted from the architecture (multiply-adds x 2 of every matmul and conv).

Element-wise work (norms, activations, softmax, dropout) and the log-mel front end are not
counted, as in the usual model-FLOP-utilization convention; a training step counts 3x the
forward (the backward pass computes two products per forward product). The counts equal
what ``torch.utils.flop_counter.FlopCounterMode`` sees in a forward pass (tests/test_bench.py).
"""

from __future__ import annotations

from typing import Sequence

import torch

from asr.config import FeatureConfig, ModelConfig
from asr.model.features import num_frames

TRAINING_FACTOR = 3  # forward + backward (gradients of inputs and of weights)


def forward_flops(model: ModelConfig, features: FeatureConfig, vocab_size: int, batch: int, frames: int) -> dict:
    """FLOPs of one forward pass over a (batch, frames) padded batch of log-mel frames,
    by part: {"subsampling", "linear", "attention", "conv_module", "head", "total"}."""
    C, D, Fm = model.subsampling_channels, model.d_model, features.n_mels
    t1, f1 = (frames - 1) // 2, (Fm - 1) // 2  # after the first 3x3 stride-2 conv
    t2, f2 = (t1 - 1) // 2, (f1 - 1) // 2  # after the second
    t2 = max(t2, 0)
    out = {
        "subsampling": 2 * batch * (t1 * f1 * C * 9 + t2 * f2 * C * C * 9 + t2 * C * f2 * D),
        # q, k, v, output projection, and the two feed-forward matrices, per layer
        "linear": 2 * batch * t2 * (4 * D * D + 2 * D * model.ff_dim) * model.n_layers,
        # QK^T and (weights)V: 2 x T^2 x D multiply-adds per sequence and layer
        "attention": 2 * batch * 2 * t2 * t2 * D * model.n_layers,
        "conv_module": 0,
        "head": 2 * batch * t2 * D * vocab_size,
    }
    if model.conv_kernel > 0:  # pointwise D -> 2D, depthwise K taps, pointwise D -> D
        out["conv_module"] = 2 * batch * t2 * (2 * D * D + D * model.conv_kernel + D * D) * model.n_layers
    out["total"] = sum(out.values())
    return out


def utterance_flops(
    model: ModelConfig, features: FeatureConfig, vocab_size: int, feature_frames: Sequence[int]
) -> float:
    """Useful forward FLOPs of utterances each computed alone (no padding)."""
    return float(sum(forward_flops(model, features, vocab_size, 1, n)["total"] for n in feature_frames))


def feature_frames(samples: int, features: FeatureConfig) -> int:
    """Log-mel frames of ``samples`` samples, as the front end counts them."""
    return int(num_frames(torch.tensor(samples), features))
