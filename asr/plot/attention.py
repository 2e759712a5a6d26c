"""Self-attention maps: what each encoder layer's heads look at, as (query, key) heat maps.

The encoder runs the fused ``scaled_dot_product_attention`` kernel, which never forms
the attention weights. :class:`AttentionCapture` puts a forward hook on every layer's
:class:`~asr.model.encoder.SelfAttention` and keeps what it was called with (the
normalized layer input and the mask) during the forward pass that makes the transcript;
:func:`attention_weights` turns those into the softmax weights the kernel used, only when
a picture asks for them. No second forward pass, no second model.

    result = recognizer.transcribe("a.wav")               # its trace: asr.inference.trace
    plot_attention(result, "a.layer3.png", layer=3, head=0)

Chunks of streaming (``chunk_ms > 0``) are encoded through ``forward_chunk``, which the
hooks do not see: the maps are of full-context passes (a file, or each streamed segment's
final pass with ``rescore``). An ONNX model's attention is inside its graphs: no maps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from asr.decoding.alignment import Word
from asr.plot import new_figure
from asr.inference.trace import attention_weights, trace_of

if TYPE_CHECKING:
    from asr.inference.trace import Trace


@dataclass(frozen=True)
class AttentionMap:
    """One heat map: a layer's attention over one segment of the audio."""

    weights: np.ndarray  # (T', T') query frame x key frame; rows sum to 1
    layer: int  # 0-based
    head: int | None  # None: the mean over heads
    start: float  # seconds from the start of the audio to frame 0 (the segment's start)
    frame_shift: float  # seconds per frame
    words: tuple[Word, ...]  # recognized words that start within the segment, audio times

    @property
    def end(self) -> float:
        return self.start + self.weights.shape[0] * self.frame_shift


def attention_map(
    result, layer: int, head: int | None = None, segment: int = 0, trace: Trace | None = None
) -> AttentionMap:
    """A transcript (with its :class:`~asr.inference.trace.Trace`) -> layer ``layer``'s
    weights over segment ``segment``, of head ``head`` or averaged over heads.

    ``layer`` counts from 0 (negative from the last); ``trace`` defaults to ``result.trace``.
    """
    trace = trace_of(result, trace)
    calls = trace.attention
    if not calls or not calls[0]:
        raise ValueError("no attention was recorded: attention maps need a torch model's full-context passes "
                         "(chunk_ms=0, or rescore when streaming)")
    n_layers = len(calls)
    if not -n_layers <= layer < n_layers:
        raise ValueError(f"layer {layer} does not exist: the encoder has layers 0..{n_layers - 1}")
    layer %= n_layers
    if not 0 <= segment < len(calls[layer]):
        raise ValueError(f"segment {segment} was not recorded: {len(calls[layer])} segment(s), from 0")
    attn = trace.blocks[layer]
    call = calls[layer][segment]
    if call.x.shape[0] != 1:
        raise ValueError(f"recorded a batch of {call.x.shape[0]}: trace one utterance at a time")
    if head is not None and not 0 <= head < attn.n_heads:
        raise ValueError(f"head {head} does not exist: layer {layer} has heads 0..{attn.n_heads - 1}")
    weights = attention_weights(attn, call)[0]  # (H, T', T')
    weights = weights.mean(dim=0) if head is None else weights[head]  # (T', T')
    first = sum(c.x.shape[1] for c in calls[layer][:segment])  # segments follow each other without gaps
    start = first * trace.frame_shift
    end = start + weights.shape[0] * trace.frame_shift
    words = tuple(w for w in result.words if start <= w.start < end)
    return AttentionMap(weights.numpy(), layer, head, round(start, 3), trace.frame_shift, words)


def draw_attention(fig, amap: AttentionMap):
    """Draw ``amap`` into the matplotlib figure ``fig``: time in seconds on both axes,
    the words along the top and the right, their edges as thin lines. -> the heat map's Axes."""
    from matplotlib.colors import PowerNorm

    ax = fig.add_subplot(1, 1, 1)
    extent = (amap.start, amap.end, amap.end, amap.start)  # (left, right, bottom, top): query time runs down
    # a square root scale: the weights are peaked, and the structure off the peaks is the interesting part
    image = ax.imshow(amap.weights, extent=extent, cmap="magma", norm=PowerNorm(0.5, vmin=0.0), interpolation="nearest")
    ax.set_xlabel("key (s): frames attended to")
    ax.set_ylabel("query (s): frame attending")
    centres = [(w.start + w.end) / 2 for w in amap.words]
    top = ax.secondary_xaxis("top")
    top.set_xticks(centres, [w.text for w in amap.words], rotation=90, fontsize=8)
    top.tick_params(length=0)
    right = ax.secondary_yaxis("right")
    right.set_yticks(centres, [w.text for w in amap.words], fontsize=8)
    right.tick_params(length=0)
    for w in amap.words:
        for edge in (w.start, w.end):
            ax.axvline(edge, color="white", lw=0.4, alpha=0.35)
            ax.axhline(edge, color="white", lw=0.4, alpha=0.35)
    ax.set_xlim(amap.start, amap.end)
    ax.set_ylim(amap.end, amap.start)
    heads = "mean over heads" if amap.head is None else f"head {amap.head}"
    ax.set_title(f"self-attention, layer {amap.layer}, {heads}")  # matplotlib lifts it above the word labels
    fig.colorbar(image, ax=ax, pad=0.12, shrink=0.8, label="weight (square-root scale)")
    return ax


def plot_attention(
    result, out: str | Path, layer: int, head: int | None = None, segment: int = 0, trace: Trace | None = None
) -> Path:
    """Write the heat map of :func:`attention_map` to ``out`` (PNG) -> ``out``."""

    amap = attention_map(result, layer, head, segment, trace)
    side = min(max(4.0, amap.end - amap.start), 12.0)  # inches: about one per second of audio
    fig = new_figure((side + 2.5, side + 1.5))
    draw_attention(fig, amap)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    return Path(out)

