"""Pictures of what a model does (needs matplotlib: ``.venv/bin/pip install matplotlib`` in a clone).

    python -m asr.cli.plot transcript --model exp/demo/model.pt a.wav --out a.png
    python -m asr.cli.plot attention --model exp/demo/model.pt a.wav --layer 3 --head 0 --out pictures/
    python -m asr.cli.plot curves exp/demo/logs/version_0/metrics.csv --out curves.png

``transcript``: waveform with the recognized words at their aligned times (and
confidences), log-mel features, CTC posteriors of the top tokens. ``attention``: the
self-attention weights of a layer (every layer without ``--layer``) and a head (the mean
over heads without ``--head``) over one segment, from the same forward pass that made
the transcript; one PNG per layer, ``OUT/<audio name>.layer<L>.<head|mean>.png``.
``curves``: loss, validation WER and learning rate over the steps of a training run.
Only the first minute of audio is pictured.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def head_arg(value: str) -> int | None:
    """'mean' -> None, else a head index."""
    return None if value == "mean" else int(value)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="picture", required=True)
    transcript = sub.add_parser("transcript", help="waveform, words, log-mel and CTC posteriors of one file")
    transcript.add_argument("--model", type=Path, required=True, help="model.pt or a training checkpoint")
    transcript.add_argument("audio", type=Path, help="audio file (any format soundfile reads)")
    transcript.add_argument("--out", type=Path, required=True, help="PNG to write")
    transcript.add_argument("--top-k", type=int, default=3, help="tokens per frame drawn as curves (default 3)")

    attention = sub.add_parser("attention", help="self-attention heat maps of one file")
    attention.add_argument("--model", type=Path, required=True, help="model.pt or a training checkpoint")
    attention.add_argument("audio", type=Path, help="audio file (any format soundfile reads)")
    attention.add_argument("--out", type=Path, required=True, help="folder for the PNGs (made if missing)")
    attention.add_argument("--layer", type=int, help="layer, from 0 (default: every layer)")
    attention.add_argument("--head", type=head_arg, default=None, help="head, from 0, or 'mean' (default)")
    attention.add_argument("--segment", type=int, default=0, help="segment of long audio (default 0)")

    curves = sub.add_parser("curves", help="training curves from a run's metrics.csv")
    curves.add_argument("log", type=Path, help="metrics.csv written by train.py")
    curves.add_argument("--out", type=Path, required=True, help="PNG to write")
    curves.add_argument("--title", default="")
    return parser.parse_args(argv)


def draw(args: argparse.Namespace) -> list[Path]:
    """Make the pictures ``args`` ask for -> the files written."""
    if args.picture == "curves":
        from asr.plot.curves import plot_training, read_metrics

        return [plot_training(read_metrics(args.log), args.out, args.title)]

    from asr.inference.recognizer import load_model
    from asr.inference.trace import record

    recognizer = load_model(args.model)
    result, trace = record(recognizer, args.audio)
    if args.picture == "transcript":
        from asr.plot.transcript import plot_transcript

        return [plot_transcript(result, args.out, trace, args.top_k)]

    from asr.plot.attention import plot_attention

    args.out.mkdir(parents=True, exist_ok=True)
    blocks = recognizer.acoustic.attention_blocks
    if not blocks:
        raise ValueError(f"{args.model}: attention maps need a torch model (model.pt); an ONNX graph hides them")
    layers = [args.layer] if args.layer is not None else range(len(blocks))
    head = "mean" if args.head is None else f"head{args.head}"
    written = []
    for layer in layers:
        out = args.out / f"{args.audio.stem}.layer{layer}.{head}.png"
        written.append(plot_attention(result, out, layer, args.head, args.segment, trace))
    return written


def main(argv=None) -> int:
    args = parse_args(argv)
    from asr.plot import PlotUnavailable, pyplot

    try:
        pyplot()  # without matplotlib, refuse before torch is imported and a model loaded
    except PlotUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    from asr.audio.read import AudioError
    from asr.inference.checkpoint import CheckpointError

    try:
        for path in draw(args):
            print(path)
    except (PlotUnavailable, AudioError, CheckpointError, OSError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
