"""Stream an audio file to a running server (``python -m asr.cli.serve``) and print the results.

    python -m asr.cli.client talk.flac --url ws://127.0.0.1:8765 [--realtime] [--json]

Sends the file as 16-bit PCM at its own rate (the server resamples), at real-time speed with
``--realtime`` or as fast as the connection takes it. Prints partial results on stderr as
they arrive and the final transcript on stdout; ``--json`` prints every server message as
one JSON line instead. An error from the server is printed as ``error: ...`` and the exit
status is 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path, help="any audio file soundfile reads")
    parser.add_argument("--url", default="ws://127.0.0.1:8765", help="(default: %(default)s)")
    parser.add_argument("--realtime", action="store_true", help="send at the speed of speech")
    parser.add_argument("--packet-ms", type=int, default=100, help="audio per message (default: %(default)s)")
    parser.add_argument("--chunk-ms", type=int, default=None, help="ask the server for this attention chunk")
    parser.add_argument("--json", action="store_true", help="print every server message as a JSON line")
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to wait after the end (default: %(default)s)"
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import soundfile as sf
    import websockets

    from asr.serving.client import read_pcm, stream_pcm

    try:
        pcm, rate = read_pcm(args.file)
    except (sf.LibsndfileError, OSError) as err:
        print(f"error: {args.file}: {err}", file=sys.stderr)
        return 1
    def show(message: dict) -> None:
        if args.json:
            print(json.dumps(message), flush=True)
        elif message["type"] == "partial":
            print(f"... {message['text']}", file=sys.stderr, flush=True)
        elif message["type"] == "done":
            print(message["text"], flush=True)

    try:
        run = asyncio.run(
            stream_pcm(args.url, pcm, rate, args.realtime, args.packet_ms, args.chunk_ms, args.timeout, show)
        )
    except (OSError, websockets.InvalidURI, websockets.InvalidHandshake, TimeoutError) as err:
        print(f"error: {args.url}: {err or type(err).__name__}", file=sys.stderr)
        return 1
    for error in run.errors:
        print(f"error: {error}", file=sys.stderr)
    if run.errors or run.done is None:
        if not run.errors:
            print(f"error: the server closed the stream without a result (code {run.close_code})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
