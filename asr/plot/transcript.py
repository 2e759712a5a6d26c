"""One figure for a transcript: waveform with the recognized words laid on the time axis
at their aligned positions, log-mel features, and the CTC posteriors of the top tokens.

    from asr.inference.trace import record
    result, trace = record(load_model("exp/demo/model.pt"), "a.wav")
    plot_transcript(result, "a.png", trace=trace)

:func:`transcript_view` gathers the numbers the figure draws (tests check those);
:func:`draw_transcript` draws them; :func:`plot_transcript` writes a PNG and
:func:`show_transcript` opens a window (or shows inline in a notebook).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from asr.decoding.alignment import Word
from asr.text.tokenizer import BLANK
from asr.plot import new_figure, pyplot

from asr.inference.trace import Trace, trace_of


@dataclass(frozen=True)
class TranscriptView:
    """What the transcript figure draws; times in seconds from the start of the audio."""

    text: str
    duration: float  # seconds shown: the audio, or its recorded start
    wave: np.ndarray  # (N,) samples
    sample_rate: int
    logmel: np.ndarray  # (T, F) log-mel, frame t reads [t * hop, t * hop + window)
    hop: float
    window: float
    frame_shift: float  # seconds per CTC frame; frame t' covers [t' * frame_shift, (t' + 1) * frame_shift)
    blank: np.ndarray  # (T',) posterior of the blank per CTC frame
    tokens: tuple[int, ...]  # (K,) token ids drawn as curves: within the top-k of some frame
    labels: tuple[str, ...]  # (K,) their sentencepiece pieces
    posteriors: np.ndarray  # (T', K) posterior of each drawn token per CTC frame
    words: tuple[Word, ...]  # recognized words starting within ``duration``, in time order


def top_tokens(log_probs, k: int, min_prob: float) -> list[int]:
    """(T', V) log-probs -> the non-blank ids that rank within the top ``k`` of some
    frame with a posterior of at least ``min_prob``, in order of first appearance."""
    probs, ids = log_probs.exp().topk(min(k, log_probs.shape[1]), dim=-1)  # each (T', k)
    chosen: dict[int, None] = {}
    for t, i in zip(*np.nonzero((probs >= min_prob).numpy())):
        token = int(ids[t, i])
        if token != BLANK:
            chosen.setdefault(token)
    return list(chosen)


def transcript_view(result, trace: Trace | None = None, top_k: int = 3, min_prob: float = 0.05) -> TranscriptView:
    """A transcript and its trace (default ``result.trace``) -> :class:`TranscriptView`."""
    trace = trace_of(result, trace)
    duration = min(result.duration, trace.seconds)
    tokens = top_tokens(trace.log_probs, top_k, min_prob)
    probs = trace.log_probs.exp()  # (T', V)
    return TranscriptView(
        text=result.text,
        duration=duration,
        wave=trace.wave.numpy(),
        sample_rate=trace.sample_rate,
        logmel=trace.logmel.numpy(),
        hop=trace.hop,
        window=trace.window,
        frame_shift=trace.frame_shift,
        blank=probs[:, BLANK].numpy(),
        tokens=tuple(tokens),
        labels=tuple(trace.tokenizer.piece(t) for t in tokens),
        posteriors=probs[:, tokens].numpy(),
        words=tuple(w for w in result.words if w.start < duration),
    )


def draw_transcript(fig, view: TranscriptView) -> list:
    """Draw ``view`` into the matplotlib figure ``fig`` -> its three Axes (waveform and
    words, log-mel, CTC posteriors), sharing the time axis."""
    axes = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [1.2, 1.4, 1.4]})
    wave_ax, mel_ax, post_ax = axes
    times = np.arange(view.wave.size) / view.sample_rate
    wave_ax.plot(times, view.wave, lw=0.4, color="0.35")
    peak = float(np.abs(view.wave).max()) or 1.0
    wave_ax.set_ylim(-1.25 * peak, 1.6 * peak)  # room above the waveform for the word labels
    for i, word in enumerate(view.words):
        centre = (word.start + word.end) / 2
        wave_ax.axvspan(word.start, word.end, color=f"C{i % 10}", alpha=0.18, lw=0)
        wave_ax.text(
            centre, 1.2 * peak, word.text, ha="center", va="bottom", fontsize=8,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": f"C{i % 10}", "alpha": 0.9},
        )  # fmt: skip
        wave_ax.text(centre, -1.2 * peak, f"{word.confidence:.2f}", ha="center", va="bottom", fontsize=6)
    wave_ax.set_yticks([])
    wave_ax.set_ylabel("waveform\nwords, confidence")

    n_frames = view.logmel.shape[0]
    first, last = view.window / 2, (n_frames - 1) * view.hop + view.window / 2  # centres of the first, last frame
    mel_ax.imshow(
        view.logmel.T, origin="lower", aspect="auto", cmap="viridis", interpolation="nearest",
        extent=(first - view.hop / 2, last + view.hop / 2, 0, view.logmel.shape[1]),
    )  # fmt: skip
    mel_ax.set_ylabel("log-mel bin")

    edges = np.arange(view.blank.size + 1) * view.frame_shift  # (T' + 1,) frame edges in seconds
    post_ax.stairs(view.blank, edges, fill=True, color="0.85", label="blank")
    for i, (label, curve) in enumerate(zip(view.labels, view.posteriors.T)):
        post_ax.stairs(curve, edges, color=f"C{i % 10}", lw=1.0)
        t = int(curve.argmax())
        x, y = (t + 0.5) * view.frame_shift, curve[t] + 0.02  # the label sits on the curve's peak
        post_ax.text(x, y, label, ha="center", va="bottom", fontsize=7, color=f"C{i % 10}")
    post_ax.set_ylim(0, 1.15)
    post_ax.set_ylabel("CTC posterior")
    post_ax.set_xlabel("time (s)")
    post_ax.legend(loc="upper right", fontsize=7)
    for word in view.words:
        for ax in (mel_ax, post_ax):
            ax.axvline(word.start, color="white" if ax is mel_ax else "0.5", lw=0.5, ls=":")
    post_ax.set_xlim(0, view.duration)
    width = fig.get_figwidth()  # inches; about 12 characters of the title fit in one
    fig.suptitle(textwrap.fill(view.text, int(12 * width)) or "(nothing recognized)", fontsize=10)
    return list(axes)


def _figsize(view: TranscriptView) -> tuple[float, float]:
    return min(max(8.0, 1.6 * view.duration), 30.0), 7.0  # inches: wide enough to read the words


def plot_transcript(result, out: str | Path, trace: Trace | None = None, top_k: int = 3) -> Path:
    """Write the transcript figure of ``result`` (and its trace, default ``result.trace``)
    to ``out`` (PNG) -> ``out``."""
    view = transcript_view(result, trace, top_k)
    fig = new_figure(_figsize(view))
    draw_transcript(fig, view)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return Path(out)


def show_transcript(result, trace: Trace | None = None, top_k: int = 3):
    """Show the transcript figure in a window, or inline in a notebook -> the figure."""
    view = transcript_view(result, trace, top_k)
    try:
        import matplotlib.pyplot as plt  # the session's own backend, not the file-only one
    except ImportError:
        pyplot()  # raises PlotUnavailable with the install hint
        raise
    fig = plt.figure(figsize=_figsize(view))
    draw_transcript(fig, view)
    fig.tight_layout()
    plt.show()
    return fig
