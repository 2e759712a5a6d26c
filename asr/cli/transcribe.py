"""Transcribe audio with a trained model: files, folders, lists, manifests or live input.

    python transcribe.py --model exp/demo/model.pt [--ref test.ref] [--report wer.json] AUDIO...
    arecord -f S16_LE -r 16000 | python transcribe.py --model exp/demo/model.pt --raw-rate 16000 -

Prints ``id<TAB>text`` per input (id = file name without extension, a manifest's "id", or
``stdin``). AUDIO may be files of any format soundfile reads (resampled to 16 kHz,
downmixed to mono), folders (searched recursively for audio files), ``@LIST`` files naming
one path per line, JSON-lines manifests (``*.jsonl``, one {"audio": PATH, "id": ...} per
line) and ``-`` for standard input: a WAV stream, or raw 16-bit little-endian mono PCM
with ``--raw-rate``. Files are read block by block, so any length fits in memory; audio
longer than a segment (20 s) is transcribed in overlapping 20 s full-context windows joined
by word times (with ``--chunk-ms``: cut at pauses and streamed).

Decoding is the model's own by default: the beam search with the LM, weights and width
tuned for it (its ``decoding.json``, written by ``asr.cli.tune_decoding``), greedy for a model
without one; ``--greedy`` asks for greedy decoding. ``--beam N`` sets the width, ``--lm`` fuses
another n-gram LM (``--lm-weight``, ``--word-score``), ``--hotwords FILE`` / ``--hotword WORD``
boost words or phrases on top of the LM.

``--chunk-ms`` (a multiple of the model's frame, ``frame_shift``: 20 ms for the main job's
model) limits attention to chunks of that length plus ``--left-chunks`` earlier ones, as in
streaming. Standard input is always streamed (640 ms chunks unless given): a partial result
follows each chunk (on stderr, or as JSON lines with ``"partial": true`` in the json format),
and each segment, ended by 250 ms of quiet, is decoded once more with full context for its
final result (``--no-rescore``: the chunked pass alone).

``--format`` json gives words with start and end times (seconds) and a confidence; srt and
vtt give subtitles. With ``--output-dir`` each input's result goes to ``DIR/<id>.<ext>``
in that format and standard output keeps the ``id<TAB>text`` lines.

A file that cannot be read gets one ``error:`` line on stderr naming it; the others are
still transcribed, and the exit status is 1. Input that breaks off part-way (a truncated
file, garbage on standard input) keeps what was transcribed before the fault: standard
input prints it as usual, a file in the json format (with an ``"error"`` field) and in
``--output-dir``; a failed file gets no ``id<TAB>text`` line. With ``--ref`` (Kaldi
``text`` format), WER is computed after the normalization of ``asr.text.normalize`` on both sides;
a file that failed counts as an empty hypothesis. ``--report`` adds the most frequent
errors to the WER figures; ``--alignment`` writes each utterance's word alignment.
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
from dataclasses import replace
from pathlib import Path

from asr.cli.inputs import STDIN, STDIN_ID, expand_inputs

def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model", type=Path, required=True,
        help="model.pt, a Lightning .ckpt, or a folder exported by asr.cli.export (ONNX: precision 32 or int8)",
    )  # fmt: skip
    parser.add_argument("--ref", type=Path, help="reference transcripts, Kaldi text format")
    parser.add_argument("--report", type=Path, help="write WER figures and top errors as JSON here (needs --ref)")
    parser.add_argument("--alignment", type=Path, help="write per-utterance word alignments here (needs --ref)")
    parser.add_argument(
        "--format", choices=("text", "json", "srt", "vtt"), default="text", help="output format (default: text)"
    )
    parser.add_argument("--output-dir", type=Path, help="write one DIR/<id>.<ext> per input in --format")
    parser.add_argument(
        "--chunk-ms",
        type=int,
        default=None,
        help="attention chunk in ms, a multiple of the model's frame (default: full context; stdin: 640)",
    )
    parser.add_argument(
        "--left-chunks", type=int, default=8, help="chunks of left context with --chunk-ms, -1 = all (default: 8)"
    )
    parser.add_argument(
        "--beam", type=int, default=None,
        help="CTC beam width (default: the model's decoding.json, with its LM; greedy for a model without one)",
    )  # fmt: skip
    parser.add_argument("--greedy", action="store_true", help="greedy decoding, no LM: the fastest, least accurate")
    parser.add_argument(
        "--rescore", action=argparse.BooleanOptionalAction, default=True,
        help="streamed: re-decode each finished segment with full context for its final result (default: on)",
    )  # fmt: skip
    parser.add_argument("--lm", help="KenLM ARPA or binary n-gram LM (default: the model's own, its decoding.json)")
    parser.add_argument("--lexicon", help="word list the search may spell (default: the LM's words)")
    parser.add_argument("--lm-weight", type=float, help="LM weight (default: the model's decoding.json, else 1)")
    parser.add_argument("--word-score", type=float, help="score added per word (default: decoding.json, else 0)")
    parser.add_argument("--hotwords", type=Path, help="file of words or phrases to boost, one a line")
    parser.add_argument("--hotword", action="append", default=[], help="a word or phrase to boost (repeatable)")
    parser.add_argument("--hotword-weight", type=float, default=2.0, help="bonus per hotword token (default: 2)")
    parser.add_argument(
        "--raw-rate", type=int, default=None, help="standard input is raw 16-bit mono PCM at this rate (default: WAV)"
    )
    parser.add_argument(
        "--partial",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="show partial results for standard input (default: on)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument(
        "--precision",
        choices=("32", "bf16", "int8"),
        default="32",
        help="model arithmetic: float32, bfloat16 autocast, or int8 Linear layers (CPU only; "
        "speed and WER of each: BENCHMARKS.md) (default: 32)",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument(
        "--batch-seconds", type=float, default=120.0, help="padded audio seconds per model batch (default: 120)"
    )
    parser.add_argument(
        "audio", nargs="+", help="audio files, folders, @LIST files, *.jsonl manifests or - (standard input)"
    )
    return parser.parse_args(argv)


class Writer:
    """Where results go: stdout (id<TAB>text, json lines or one subtitle) and per-input files.

    Input that failed part-way keeps its partial transcript where there is room to say it
    failed (a JSON ``"error"`` field, a file in ``--output-dir``); in the ``id<TAB>text``
    lines only complete inputs appear, except standard input, whose partial results were
    already shown.
    """

    def __init__(self, fmt: str, output_dir: Path | None):
        self.fmt, self.output_dir = fmt, output_dir

    def write(self, utt_id: str, transcript, error: str | None = None, stream: bool = False) -> None:
        from asr.audio.atomic import atomic_write_text
        from asr.inference.outputs import SUFFIXES, render, text_line, transcript_dict

        if self.fmt == "json":
            data = {**transcript_dict(utt_id, transcript), **({"error": error} if error else {})}
            rendered = json.dumps(data, ensure_ascii=False) + "\n"
        else:
            rendered = render(self.fmt, utt_id, transcript)
        if self.output_dir is not None:
            out = self.output_dir / f"{utt_id}{SUFFIXES[self.fmt]}"
            if out.parent != self.output_dir:  # an id such as "../x" from a manifest
                raise OSError(errno.EINVAL, "the id is not a plain file name", str(out))
            atomic_write_text(out, rendered)
            rendered = text_line(utt_id, transcript.text) + "\n"
        if error is None or stream or (self.fmt == "json" and self.output_dir is None):
            sys.stdout.write(rendered)
            sys.stdout.flush()

    def partial(self, utt_id: str, end: float, text: str) -> None:
        if self.fmt == "json" and self.output_dir is None:
            print(json.dumps({"id": utt_id, "partial": True, "end": end, "text": text}), flush=True)
        else:
            print(f"partial [{end:.2f}s]: {text}", file=sys.stderr, flush=True)


def transcribe_stdin(recognizer, args, options, writer: Writer):
    """Stream standard input -> (transcript of what was read, error line or None)."""
    from asr.audio.read import AudioError
    from asr.inference.recognizer import join_segments
    from asr.audio.sources import PcmFormat, stream_blocks

    raw = PcmFormat(args.raw_rate) if args.raw_rate else None
    note = recognizer.live_note(options) if args.partial else None  # said once, with the first partial result
    blocks = stream_blocks(sys.stdin.buffer, STDIN, raw, recognizer.sample_rate)
    segments, error = [], None
    try:
        for event in recognizer.stream(blocks, options):
            if event.final:
                segments.append(event.segment)
            elif args.partial:
                if note:
                    print(note, file=sys.stderr, flush=True)
                    note = None
                done = " ".join(s.text for s in segments if s.text)
                writer.partial(STDIN_ID, event.segment.end, " ".join(t for t in (done, event.segment.text) if t))
    except AudioError as err:
        error = str(err)
    if error and not segments:  # nothing readable arrived
        return None, error
    return join_segments(segments), error


def check_args(args) -> str | None:
    """-> a usage error, or None."""
    if (args.report or args.alignment) and not args.ref:
        return "--report and --alignment need --ref"
    if args.audio.count(STDIN) > 1:
        return "standard input (-) can be named once"
    if args.format in ("srt", "vtt") and args.output_dir is None and len(args.audio) > 1:
        return f"--format {args.format} with several inputs needs --output-dir"
    if args.beam is not None and args.beam < 1:
        return "--beam must be at least 1"
    if args.greedy and (args.beam or args.lm or args.hotword or args.hotwords or args.lexicon):
        return "--greedy takes no --beam, --lm, --lexicon or hotwords"
    return None


def decoding_options(args):
    """The beam search's LM and hotword flags -> DecodingOptions (None: the model's defaults;
    hotwords without --lm add to the model's LM)."""
    from asr.inference.options import DecodingOptions

    hotwords = list(args.hotword)
    if args.hotwords:
        lines = args.hotwords.read_text(encoding="utf-8").splitlines()
        hotwords += [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    if args.lm is None and args.lexicon is None and not hotwords and args.lm_weight is None and args.word_score is None:
        return None
    return DecodingOptions(
        lm=args.lm, lexicon=args.lexicon, lm_weight=args.lm_weight, word_score=args.word_score,
        hotwords=tuple(hotwords), hotword_weight=args.hotword_weight,
    )  # fmt: skip


class UsageError(Exception):
    """A problem found before any audio is read: one ``error:`` line, exit status 2."""


def read_references(path: Path | None) -> dict[str, str] | None:
    """--ref (Kaldi ``text``: id, any whitespace, transcript) -> {id: text}, or None without
    it; UsageError if it cannot be read or names an id twice."""
    from asr.text.kaldi import IdLinesError, read_id_lines

    if path is None:
        return None
    try:
        return read_id_lines(path)
    except OSError as err:
        raise UsageError(f"{path}: cannot read references ({err.strerror})") from err
    except IdLinesError as err:
        raise UsageError(str(err)) from err


def load_recognizer(args):
    """-> (recognizer, options for files, options for standard input); UsageError for a
    model that cannot be loaded or options it cannot run."""
    from asr.inference.checkpoint import CheckpointError
    from asr.inference.options import LIVE
    from asr.inference.recognizer import TranscribeOptions, load_model

    try:
        decoding = decoding_options(args)
        chosen = dict(left_chunks=args.left_chunks, beam_width=args.beam, decoding=decoding, greedy=args.greedy,
                      rescore=args.rescore)  # fmt: skip
        options = TranscribeOptions(chunk_ms=args.chunk_ms or 0, **chosen)
        stdin_options = replace(LIVE, **chosen, chunk_ms=LIVE.chunk_ms if args.chunk_ms is None else args.chunk_ms)
        recognizer = load_model(args.model, args.device, args.precision)
        options.chunk_frames(recognizer.model.frame_shift)  # reject a chunk that is not whole frames
        recognizer.beam_search(options)  # load the LM now: a bad file is one usage error
    except (CheckpointError, ValueError, OSError) as err:
        raise UsageError(str(err)) from err
    return recognizer, options, stdin_options


class Outcomes:
    """Each input's result as it finishes: written out, reported if it failed, and kept as
    the hypothesis for --ref scoring."""

    def __init__(self, writer: Writer, progress, failed: int = 0):
        self.writer, self.progress, self.failed = writer, progress, failed
        self.hyps: dict[str, str] = {}

    def finish(self, utt_id: str, transcript, error: str | None, stream: bool = False) -> None:
        if transcript is not None:
            try:
                self.writer.write(utt_id, transcript, error, stream)
            except OSError as err:  # --output-dir on a full disk: this result is lost, not the others
                if err.filename is None:  # standard output itself failed (a closed pipe): stop
                    raise
                error = f"{err.filename}: cannot write the result for {utt_id} ({err.strerror})"
        if error is not None:
            print(f"error: {error}", file=sys.stderr, flush=True)
            self.failed += 1
        # a failed file scores as an empty hypothesis (all deletions), standard input as what it gave
        self.hyps[utt_id] = transcript.text if transcript is not None and (error is None or stream) else ""
        self.progress.update()


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        problem = check_args(args)
        if problem:
            raise UsageError(problem)
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        refs = read_references(args.ref)
        recognizer, options, stdin_options = load_recognizer(args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from tqdm import tqdm

    inputs, errors = expand_inputs(args.audio)
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    writer = Writer(args.format, args.output_dir)
    show_progress = sys.stderr.isatty() if args.progress is None else args.progress
    outcomes = Outcomes(writer, tqdm(total=len(inputs), unit="file", disable=not show_progress), failed=len(errors))

    files = [(utt_id, path) for utt_id, path in inputs if path is not None]
    if len(files) < len(inputs):
        outcomes.finish(STDIN_ID, *transcribe_stdin(recognizer, args, stdin_options, writer), stream=True)
    results = recognizer.transcribe_files([path for _, path in files], options, args.batch_seconds)
    for (utt_id, _), result in zip(files, results):  # one result per file, in order
        outcomes.finish(utt_id, result.transcript, result.error)
    outcomes.progress.close()

    status = 1 if outcomes.failed else 0
    if refs is not None:
        return report_wer(refs, outcomes.hyps, args) or status
    return status


def report_wer(refs: dict[str, str], hyps: dict[str, str], args) -> int:
    """Print the WER line (last on stdout) and top errors (stderr); write --report and
    --alignment. -> 1 if nothing could be scored, else 0."""
    from asr.audio.atomic import atomic_write_text
    from asr.inference.outputs import alignment_text, error_report
    from asr.text.wer import score

    from asr.text.kaldi import unmatched

    for line in unmatched(refs, hyps):
        print(line, file=sys.stderr)
    try:
        result = score(refs, hyps)
    except ValueError as err:
        print(f"error: cannot score: {err}", file=sys.stderr)
        return 1
    errors = error_report(refs, hyps)
    for line in errors.summary():
        print(line, file=sys.stderr)
    print(result.summary())
    if args.report:
        atomic_write_text(args.report, json.dumps({**result.as_dict(), **errors.as_dict()}, indent=2) + "\n")
    if args.alignment:
        atomic_write_text(args.alignment, alignment_text(errors))
    return 0


if __name__ == "__main__":
    sys.exit(main())
