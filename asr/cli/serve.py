"""Serve streaming recognition over WebSocket.

    python -m asr.cli.serve --model exp/demo/model.pt --host 127.0.0.1 --port 8765

Prints ``listening on ws://HOST:PORT`` once it accepts connections (``--port 0`` picks a free
port) and runs until SIGINT or SIGTERM. The protocol (a JSON config, binary 16-bit PCM, then
``{"type": "end"}``; partial, final, done and error messages back) is in
:mod:`asr.serving.protocol`; ``python -m asr.cli.client FILE --url ws://HOST:PORT`` is a client.

Audio declared at another rate (8-48 kHz) than the model's is resampled on the server. Each
limit (--max-streams, --max-stream-s, --idle-timeout, --max-message-bytes) is answered with
one JSON error to that client, then its connection is closed. ``--workers`` streams compute
at once, each on one torch thread: give it the number of cores the server may use.
The encoder runs the chunks of up to ``--max-batch`` streams that are ready within
``--batch-window-ms`` in one batch (:mod:`asr.serving.batching`); ``--max-batch 1`` encodes
each stream alone.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path


def parse_args(argv):
    from asr.serving.server import ServerConfig

    d = ServerConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="model.pt, a .ckpt, or whatever asr.load_model reads")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8765, help="0 = a free port (default: %(default)s)")
    parser.add_argument("--precision", default="32", help="as in transcribe.py (default: %(default)s)")
    options = [  # flag, type, default, help
        ("--workers", int, d.workers, "streams computing at once, 1 torch thread each"),
        ("--chunk-ms", int, d.chunk_ms, "attention chunk unless a client asks for another"),
        ("--left-chunks", int, d.left_chunks, "chunks of left context"),
        ("--max-batch", int, d.max_batch, "streams' chunks encoded in one batch; 1 = each stream alone"),
        ("--batch-window-ms", float, d.batch_window_ms, "ms a batch waits for more chunks after its first"),
        ("--max-streams", int, d.max_streams, "streams open at once"),
        ("--max-stream-s", float, d.max_stream_s, "seconds of audio per stream"),
        ("--idle-timeout", float, d.idle_timeout_s, "seconds a client may send nothing"),
        ("--max-message-bytes", int, d.max_message_bytes, "largest message"),
    ]
    for flag, kind, default, text in options:
        parser.add_argument(flag, type=kind, default=default, help=f"{text} (default: %(default)s)")
    return parser.parse_args(argv)


async def serve(recognizer, config, host: str, port: int) -> None:
    from asr.serving.server import StreamServer

    server = StreamServer(recognizer, config)
    bound = await server.start(host, port)
    print(f"listening on ws://{host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close()
    if server.batcher is not None:  # how well batching worked (asr.bench.server_load reads it)
        sizes = " ".join(f"{size}:{count}" for size, count in sorted(server.batcher.sizes.items()))
        print(f"batch sizes (rows:batches): {sizes}", flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from asr import load_model
    from asr.inference.checkpoint import CheckpointError
    from asr.serving.server import ServerConfig

    try:
        config = ServerConfig(
            max_streams=args.max_streams, max_stream_s=args.max_stream_s, idle_timeout_s=args.idle_timeout,
            max_message_bytes=args.max_message_bytes, workers=args.workers, chunk_ms=args.chunk_ms,
            left_chunks=args.left_chunks, max_batch=args.max_batch, batch_window_ms=args.batch_window_ms,
        )  # fmt: skip
        torch.set_num_threads(1)  # one thread per worker: --workers is the parallelism
        recognizer = load_model(args.model, precision=args.precision)
    except (CheckpointError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(recognizer, config, args.host, args.port))
    except OSError as err:  # the address is taken or not ours
        print(f"error: cannot listen on {args.host}:{args.port}: {err.strerror or err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
