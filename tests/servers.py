"""A streaming server for a test: on a free loopback port, its event loop on a thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from asr.serving.server import ServerConfig, StreamServer


@contextlib.contextmanager
def running_server(recognizer, timeout: float, **limits):
    """-> (port, server) while the block runs; closed and joined (each wait ``timeout`` s) after."""
    loop = asyncio.new_event_loop()
    server = StreamServer(recognizer, ServerConfig(chunk_ms=320, **limits))
    port = loop.run_until_complete(server.start("127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield port, server
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        loop.close()
