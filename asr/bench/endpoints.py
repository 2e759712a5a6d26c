"""Live results as a person meets them: how soon a final result follows the end of speech,
how often a word shown in a partial result is later changed, and what each chunk costs.

    python -m asr.bench.endpoints --model exp/demo/model.pt --list exp/demo/real.list [--limit 40]

Utterances of ``--list`` are joined into one stream with ``--gap-s`` of quiet (faint noise)
between them, and the stream is fed in 100 ms blocks, as a microphone delivers them, to
the same transcriber standard input and the server use (:data:`asr.inference.options.LIVE`:
640 ms chunks, the model's default decoding, a full-context second pass per segment).
Time is the stream's own clock plus the measured compute: a final result that comes out of
the block ending at audio time ``t``, after ``c`` seconds of compute for that block, reaches
the user ``t + c - s`` after the end of speech ``s`` (the last 10 ms frame within
``--silence-db`` of the utterance's loudest). Prints p50 / p95 / max of that latency, how
many finals came more than 0.5 s late, the share of words shown in partial results that the
final result changed, and per-chunk compute. Run on a quiet machine and again under load.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

BLOCK_S = 0.1  # a microphone's block
FRAME_S = 0.01  # energy frames for the end of speech


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="model.pt, checkpoint or exported folder")
    parser.add_argument("--list", type=Path, required=True, help="audio paths, one per line")
    parser.add_argument("--limit", type=int, default=40, help="utterances joined into the stream (default: 40)")
    parser.add_argument("--gap-s", type=float, default=1.0, help="quiet between utterances (default: 1.0 s)")
    parser.add_argument("--chunk-ms", type=int, default=None, help="attention chunk (default: the live one, 640)")
    parser.add_argument("--greedy", action="store_true", help="greedy decoding instead of the model's default")
    parser.add_argument("--no-rescore", action="store_true", help="the chunked pass alone, no second pass")
    parser.add_argument("--partials", choices=("chunk", "segment"), help="partial results (default: the live ones)")
    parser.add_argument("--silence-db", type=float, default=35.0, help="end of speech: this far below the peak")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch (default: 2)")
    return parser.parse_args(argv)


def speech_end(wave, rate: int, silence_db: float) -> float:
    """(N,) samples -> seconds to the end of the last 10 ms frame within ``silence_db`` of the loudest."""
    import torch

    hop = int(FRAME_S * rate)
    frames = wave[: len(wave) // hop * hop].reshape(-1, hop)  # (F, hop)
    db = 10 * torch.log10(frames.pow(2).mean(dim=1) + 1e-12)  # (F,)
    loud = (db >= db.max() - silence_db).nonzero()
    return float(loud[-1] + 1) * FRAME_S if len(loud) else 0.0


def joined_stream(paths: list[Path], rate: int, gap_s: float, silence_db: float):
    """-> ((N,) samples of the utterances with quiet gaps between, end of speech of each in seconds)."""
    import torch

    from asr.audio.read import read_audio

    g = torch.Generator().manual_seed(0)
    pieces, ends, at = [], [], 0.0
    for path in paths:
        wave = read_audio(path, rate)
        ends.append(at + speech_end(wave, rate, silence_db))
        gap = torch.randn(int(gap_s * rate), generator=g) * 1e-4  # faint noise, not digital zero
        pieces += [wave, gap]
        at += (wave.numel() + gap.numel()) / rate
    return torch.cat(pieces), ends


def changed_share(partials: list[list[str]], final: list[str]) -> tuple[int, int]:
    """Words of one segment's partial results -> (words shown, words the final result changed):
    a word at position i of a partial is changed if the final's word i differs or is gone."""
    shown = changed = 0
    for words in partials:
        shown += len(words)
        changed += sum(1 for i, w in enumerate(words) if i >= len(final) or final[i] != w)
    return shown, changed


def measure(recognizer, wave, options):
    """Feed ``wave`` block by block -> (finals as (audio time, compute s, segment), partial word
    lists per final, compute seconds of each partial). An event's compute is the time since its
    block was handed over: what the block cost up to that event."""
    rate = recognizer.sample_rate
    block = int(BLOCK_S * rate)
    clock = {"fed": 0, "handed": time.perf_counter()}

    def blocks():
        for start in range(0, wave.numel(), block):
            clock["fed"] = min(start + block, wave.numel())
            clock["handed"] = time.perf_counter()
            yield wave[start : start + block]
        clock["handed"] = time.perf_counter()  # the end of the stream: what follows is the flush

    finals, partial_words, chunk_costs, open_partials = [], [], [], []
    for event in recognizer.stream(blocks(), options):
        cost = time.perf_counter() - clock["handed"]
        if event.final:
            finals.append((clock["fed"] / rate, cost, event.segment))
            partial_words.append(open_partials)
            open_partials = []
        else:
            chunk_costs.append(cost)
            open_partials.append(event.segment.text.split())
    return finals, partial_words, chunk_costs


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main(argv=None) -> int:
    args = parse_args(argv)
    from dataclasses import replace

    import torch

    from asr.inference.options import LIVE
    from asr.inference.recognizer import load_model

    torch.set_num_threads(args.threads)
    recognizer = load_model(args.model)
    paths = [Path(line.strip()) for line in args.list.read_text().splitlines() if line.strip()][: args.limit]
    wave, ends = joined_stream(paths, recognizer.sample_rate, args.gap_s, args.silence_db)
    options = replace(LIVE, greedy=args.greedy, rescore=not args.no_rescore, chunk_ms=args.chunk_ms or LIVE.chunk_ms,
                      partials=args.partials or LIVE.partials)  # fmt: skip
    beam, decoding = recognizer.decoding_plan(options)
    recognizer.beam_search(options)  # the LM loads before the clock starts
    finals, partial_words, chunk_costs = measure(recognizer, wave, options)

    latencies = []
    for end in ends:  # the final that closes each utterance: the first out after its end of speech
        began = [(at, cost) for at, cost, seg in finals if seg.start < end]  # finals of segments begun by then
        after = [hit for hit in began if hit[0] >= end]
        hit = after[0] if after else (began[-1] if began else None)  # else it came early (a cut before the end)
        if hit is not None:
            latencies.append(hit[0] + hit[1] - end)
    shown = changed = 0
    for words, (_, _, seg) in zip(partial_words, finals):
        s, c = changed_share(words, seg.text.split())
        shown, changed = shown + s, changed + c
    decoder = "greedy" if decoding is None else f"beam {beam}" + (f" + LM {Path(decoding.lm).name}" if decoding.lm else "")
    print(f"model {args.model}; {len(paths)} utterances joined with {args.gap_s:g} s gaps, {wave.numel() / recognizer.sample_rate:.0f} s; "
          f"{options.chunk_ms} ms chunks, {decoder}, partials by {options.partials}, "
          f"second pass {'on' if options.rescore else 'off'}, {args.threads} threads")  # fmt: skip
    print(f"finals: {len(finals)} for {len(ends)} utterances; end of speech to final: p50 {percentile(latencies, 0.5):.3f} s, "
          f"p95 {percentile(latencies, 0.95):.3f} s, max {max(latencies, default=float('nan')):.3f} s; "
          f"over 0.5 s: {sum(x > 0.5 for x in latencies)}")  # fmt: skip
    print(f"partial words later changed: {changed} of {shown} ({100 * changed / max(shown, 1):.1f}%)")
    print(f"compute per chunk (partial): p50 {1000 * percentile(chunk_costs, 0.5):.0f} ms, "
          f"p95 {1000 * percentile(chunk_costs, 0.95):.0f} ms; per final (second pass): "
          f"p50 {1000 * percentile([c for _, c, _ in finals], 0.5):.0f} ms, "
          f"p95 {1000 * percentile([c for _, c, _ in finals], 0.95):.0f} ms")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
