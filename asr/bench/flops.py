"""Model FLOPs counted from the architecture (multiply-adds x 2 of every matmul and conv).

Element-wise work (norms, activations, softmax, rotary positions, dropout) and the log-mel
front end are not counted, as in the usual model-FLOP-utilization convention; a training
step counts 3x the forward (the backward pass computes two products per forward product).
The counts equal what ``torch.utils.flop_counter.FlopCounterMode`` sees in a forward pass
of every ``ModelConfig`` option (tests/test_bench.py, tests/test_blocks.py). Attention is
counted over the whole padded sequence, chunked or not (the kernels compute it all).

    python -m asr.bench.flops --config recipes/demo/demo.yaml [model.macaron=true ...] [--seconds 5]

prints the parameters and the forward GFLOPs per second of audio of one utterance.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

import torch

from asr.config import FeatureConfig, ModelConfig
from asr.model.features import num_frames

TRAINING_FACTOR = 3  # forward + backward (gradients of inputs and of weights)


def _halve(n: int) -> int:
    """Length after one kernel-3 stride-2 unpadded convolution."""
    return max((n - 1) // 2, 0)


def subsampling_flops(model: ModelConfig, n_mels: int, frames: int) -> tuple[int, int]:
    """-> (FLOPs of one utterance's subsampling, its output frames T')."""
    C, D = model.subsampling_channels, model.d_model
    if model.subsampling == "conv1d2":  # kernel-3 1-D convolutions: F -> D, then D -> D at stride 2
        t1 = max(frames - 2, 0)
        t = _halve(t1)
        return 2 * 3 * D * (t1 * n_mels + t * D), t
    t, f = _halve(frames), _halve(n_mels)
    flops = t * f * C * 9  # first 3x3 convolution, 1 -> C channels
    stages = 1 if model.subsampling == "conv4" else 2
    for _ in range(stages):
        t, f = _halve(t), _halve(f)
        # conv4: a full 3x3 C -> C convolution; dw8: depthwise 3x3, then pointwise C -> C
        flops += t * f * C * C * 9 if model.subsampling == "conv4" else t * f * C * (9 + C)
    return 2 * (flops + t * C * f * D), t  # + the linear map C * F' -> D


def forward_flops(model: ModelConfig, features: FeatureConfig, vocab_size: int, batch: int, frames: int) -> dict:
    """FLOPs of one forward pass over a (batch, frames) padded batch of log-mel frames,
    by part: {"subsampling", "linear", "attention", "conv_module", "head", "total"}."""
    D, L = model.d_model, model.n_layers
    sub, t = subsampling_flops(model, features.n_mels, frames)
    feed_forwards = 2 if model.macaron else 1
    out = {
        "subsampling": batch * sub,
        # q, k, v, output projection, and the two matrices of each feed-forward, per layer
        "linear": 2 * batch * t * (4 * D * D + feed_forwards * 2 * D * model.ff_dim) * L,
        # QK^T and (weights)V: 2 x T^2 x D multiply-adds per sequence and layer
        "attention": 2 * batch * 2 * t * t * D * L,
        "conv_module": 0,
        "head": 2 * batch * t * D * vocab_size,
    }
    if model.conv_kernel > 0:  # pointwise D -> 2D, depthwise K taps, pointwise D -> D (causal or centred alike)
        out["conv_module"] = 2 * batch * t * (2 * D * D + D * model.conv_kernel + D * D) * L
    out["total"] = sum(out.values())
    return out


def training_flops(model: ModelConfig, features: FeatureConfig, vocab_size: int, batch: int, frames: int) -> int:
    """FLOPs of one training step on a (batch, frames) batch, with the losses' extra work:
    CR-CTC runs two views (twice the batch), InterCTC one more head per tapped layer."""
    views = 2 if model.cr_ctc_weight > 0 else 1
    forward = forward_flops(model, features, vocab_size, views * batch, frames)
    heads = len(set(model.inter_ctc_layers)) if model.inter_ctc_weight > 0 else 0
    return TRAINING_FACTOR * (forward["total"] + heads * forward["head"])


def flops_per_second(model: ModelConfig, features: FeatureConfig, vocab_size: int, seconds: float = 10.0) -> float:
    """Forward FLOPs per second of audio, for one utterance of ``seconds`` (attention grows with length)."""
    frames = feature_frames(round(seconds * features.sample_rate), features)
    return forward_flops(model, features, vocab_size, 1, frames)["total"] / seconds


def utterance_flops(
    model: ModelConfig, features: FeatureConfig, vocab_size: int, feature_frames: Sequence[int]
) -> float:
    """Useful forward FLOPs of utterances each computed alone (no padding)."""
    return float(sum(forward_flops(model, features, vocab_size, 1, n)["total"] for n in feature_frames))


def feature_frames(samples: int, features: FeatureConfig) -> int:
    """Log-mel frames of ``samples`` samples, as the front end counts them."""
    return int(num_frames(torch.tensor(samples), features))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m asr.bench.flops", description="Parameters and FLOPs of a model.")
    p.add_argument("--config", required=True, help="recipe YAML")
    p.add_argument("--seconds", type=float, default=10.0, help="utterance length the FLOPs are counted on")
    p.add_argument("overrides", nargs="*", help="section.key=value")
    args = p.parse_args(argv)
    from asr.config import ConfigError, load_recipe
    from asr.model import CTCModel

    try:
        recipe = load_recipe(args.config, args.overrides)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    vocab = recipe.tokenizer.vocab_size + 1  # + blank
    model = CTCModel(recipe.model, recipe.features, recipe.specaug, vocab)
    params = sum(p.numel() for p in model.parameters())
    gflops = flops_per_second(recipe.model, recipe.features, vocab, args.seconds) / 1e9
    print(f"parameters {params / 1e6:.3f} M, forward {gflops:.3f} GFLOP per second of audio ({args.seconds:g} s long)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
