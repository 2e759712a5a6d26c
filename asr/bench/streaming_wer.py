"""Streaming against full-context WER, same model, same test utterances.

    python -m asr.bench.streaming_wer --model exp/demo/model.pt --list exp/demo/test.list \\
        --ref exp/demo/test.ref [--chunk-ms 640] [--left-chunks 8] [--beam 1]

Full context: each utterance encoded at once (padded batches). Streaming: each file read
in 160 ms blocks and fed through the streaming transcriber, which encodes every chunk of
``--chunk-ms`` as soon as it is complete, attending to itself and ``--left-chunks``
earlier chunks through the cache. Prints both WERs, their relative difference and the
real-time factor of each; exits 1 if the streaming WER is more than ``--max-relative``
(default 10%) worse than full context.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="model.pt or Lightning .ckpt")
    parser.add_argument("--list", type=Path, required=True, help="audio paths, one per line (id = file stem)")
    parser.add_argument("--ref", type=Path, required=True, help="references, Kaldi text format")
    parser.add_argument("--chunk-ms", type=int, default=640, help="streaming chunk in ms (default: 640)")
    parser.add_argument("--left-chunks", type=int, default=8, help="chunks of left context, -1 = all (default: 8)")
    parser.add_argument("--beam", type=int, default=1, help="CTC beam width, 1 = greedy (default: 1)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N utterances (default: all)")
    parser.add_argument(
        "--max-relative", type=float, default=0.10, help="allowed relative WER increase (default: 0.10)"
    )
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from asr.inference.recognizer import TranscribeOptions, collect, load_model
    from asr.audio.sources import file_blocks
    from asr.text.wer import read_kaldi_text, score

    if args.threads:
        torch.set_num_threads(args.threads)
    recognizer = load_model(args.model, args.device)
    refs = read_kaldi_text(args.ref)
    paths = [Path(line.strip()) for line in args.list.read_text().splitlines() if line.strip()]
    paths = paths[: args.limit] if args.limit else paths
    full_options = TranscribeOptions(beam_width=args.beam)
    stream_options = TranscribeOptions(chunk_ms=args.chunk_ms, left_chunks=args.left_chunks, beam_width=args.beam)
    seconds = 0.0

    started = time.perf_counter()
    full = {}
    for result in recognizer.transcribe_files(paths, full_options):
        full[result.path.stem] = result.transcript.text if result.transcript and not result.error else ""
        seconds += result.transcript.duration if result.transcript else 0.0
    full_time = time.perf_counter() - started

    started = time.perf_counter()
    streamed = {}
    for path in paths:
        blocks = file_blocks(path, recognizer.sample_rate, block_seconds=0.16)
        streamed[path.stem] = collect(recognizer.stream(blocks, stream_options)).text
    stream_time = time.perf_counter() - started

    full_wer, stream_wer = score(refs, full), score(refs, streamed)
    if full_wer.wer > 0:
        relative = (stream_wer.wer - full_wer.wer) / full_wer.wer
    else:
        relative = 0.0 if stream_wer.wer == 0 else float("inf")
    print(f"model {args.model}, {len(paths)} utterances, {seconds / 60:.1f} min of audio, beam {args.beam}")
    print(f"full context: {full_wer.summary()}  RTF {full_time / seconds:.3f}")
    streaming = f"streaming {args.chunk_ms} ms, {args.left_chunks} left chunks"
    print(f"{streaming}: {stream_wer.summary()}  RTF {stream_time / seconds:.3f}")
    print(f"relative WER increase: {100 * relative:+.1f}% (allowed {100 * args.max_relative:.0f}%)")
    return 0 if relative <= args.max_relative else 1


if __name__ == "__main__":
    sys.exit(main())
