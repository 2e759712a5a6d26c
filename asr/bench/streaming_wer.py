"""Live against offline WER, same model, same utterances, same decoding.

    python -m asr.bench.streaming_wer --model exp/demo/model.pt --list exp/demo/test.list \\
        --ref exp/demo/test.ref [--offline-report exp/demo/test_wer.json] [--greedy] [--no-rescore]

Offline: the files through :meth:`asr.inference.Recognizer.transcribe_files` (full context;
read from ``--offline-report``, a ``transcribe.py --report`` JSON of the same files and
decoding, when given). Live: each file read in 100 ms blocks, as a microphone delivers them,
through the transcriber standard input and the server use (:data:`asr.inference.options.LIVE`:
640 ms chunks with ``--left-chunks`` of left context, segments ended by 250 ms of quiet, and
each finished segment decoded once more with full context unless ``--no-rescore``). Both at
the model's default decoding (its tuned beam + LM) unless ``--greedy``. Prints both WERs,
their relative difference and the real-time factor of the live pass; exits 1 if live is
more than ``--max-relative`` (default 10%) worse.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="model.pt, checkpoint or exported folder")
    parser.add_argument("--list", type=Path, required=True, help="audio paths, one per line (id = file stem)")
    parser.add_argument("--ref", type=Path, required=True, help="references, Kaldi text format")
    parser.add_argument("--offline-report", type=Path, help="transcribe.py --report JSON of the offline run")
    parser.add_argument("--chunk-ms", type=int, default=None, help="streaming chunk in ms (default: 640)")
    parser.add_argument("--left-chunks", type=int, default=8, help="chunks of left context, -1 = all (default: 8)")
    parser.add_argument("--greedy", action="store_true", help="greedy decoding on both sides")
    parser.add_argument("--no-rescore", action="store_true", help="live: the chunked pass alone")
    parser.add_argument("--limit", type=int, default=0, help="only the first N utterances (default: all)")
    parser.add_argument("--max-relative", type=float, default=0.10, help="allowed relative increase (default: 0.10)")
    parser.add_argument("--report", type=Path, help="write the live WER figures here (JSON)")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from dataclasses import replace

    import torch

    from asr.audio.sources import STREAM_BLOCK_SECONDS, file_blocks
    from asr.inference.options import LIVE, TranscribeOptions
    from asr.inference.recognizer import collect, load_model
    from asr.text.wer import read_kaldi_text, score

    if args.threads:
        torch.set_num_threads(args.threads)
    recognizer = load_model(args.model, args.device)
    refs = read_kaldi_text(args.ref)
    paths = [Path(line.strip()) for line in args.list.read_text().splitlines() if line.strip()]
    paths = paths[: args.limit] if args.limit else paths
    live = replace(LIVE, chunk_ms=args.chunk_ms or LIVE.chunk_ms, left_chunks=args.left_chunks,
                   greedy=args.greedy, rescore=not args.no_rescore)  # fmt: skip
    recognizer.beam_search(live)  # the LM loads before the clock starts
    beam, decoding = recognizer.decoding_plan(live)

    if args.offline_report:
        offline_wer = json.loads(args.offline_report.read_text())["wer"]
    else:
        offline = {r.path.stem: r.transcript.text if r.transcript else ""
                   for r in recognizer.transcribe_files(paths, TranscribeOptions(greedy=args.greedy))}  # fmt: skip
        offline_wer = score(refs, offline).wer

    started, seconds, streamed = time.perf_counter(), 0.0, {}
    for path in paths:
        blocks = file_blocks(path, recognizer.sample_rate, block_seconds=STREAM_BLOCK_SECONDS)
        transcript = collect(recognizer.stream(blocks, live))
        streamed[path.stem] = transcript.text
        seconds += transcript.duration
    live_time = time.perf_counter() - started
    result = score(refs, streamed)
    if offline_wer > 0:
        relative = (result.wer - offline_wer) / offline_wer
    else:
        relative = 0.0 if result.wer == 0 else float("inf")
    decoder = "greedy" if decoding is None else f"beam {beam}" + (" + LM" if decoding.lm else "")
    passes = "two passes" if live.rescore else "chunked pass alone"
    print(f"live ({live.chunk_ms} ms chunks, {passes}, {decoder}): {result.summary()}  RTF {live_time / seconds:.3f}; "
          f"offline {100 * offline_wer:.2f}%, relative {100 * relative:+.1f}%")  # fmt: skip
    if args.report:
        figures = {**result.as_dict(), "offline_wer": offline_wer, "relative": relative, "chunk_ms": live.chunk_ms,
                   "rescore": live.rescore, "decoder": decoder, "rtf": live_time / seconds}  # fmt: skip
        args.report.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if relative <= args.max_relative else 1


if __name__ == "__main__":
    sys.exit(main())
