"""The WebSocket server: one stream per connection (:mod:`asr.serving.protocol`), with limits.

    server = StreamServer(load_model("model.pt"), ServerConfig(max_streams=32))
    port = await server.start("127.0.0.1", 0)   # 0: a free port
    ...
    await server.close()

Each limit and each protocol fault is answered with one ``{"type": "error"}`` message to
that client, then its connection is closed; nothing else is affected. A client that
vanishes mid-stream has its stream cancelled (there is no one left to tell). Model compute
runs on the streams' threads (:mod:`asr.serving.session`) and, batched across streams, on
the batcher's (:mod:`asr.serving.batching`; ``max_batch=1``: none), never on the event loop.
A plain HTTP GET on the same port gets the page that listens (:mod:`asr.serving.webpage`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, replace

import websockets
from websockets.asyncio.server import ServerConnection

from asr.inference.options import LIVE, TranscribeOptions
from asr.serving.batching import ChunkBatcher
from asr.serving.protocol import ProtocolError, StreamConfig, error_message, parse_config, parse_control
from asr.serving.session import ComputeSlots, StreamSession
from asr.serving.webpage import PageHandler, model_info

log = logging.getLogger("asr.serving")


@dataclass(frozen=True)
class ServerConfig:
    max_streams: int = 32  # connections open at once; one more is refused ("server busy")
    max_stream_s: float = 3600.0  # seconds of audio one stream may send
    idle_timeout_s: float = 10.0  # a client silent this long (no message) is closed
    max_message_bytes: int = 1 << 20  # largest message (1 MiB = 32 s of 16 kHz PCM); twice it is cut off unread
    workers: int = 1  # streams computing at once (one per core given to the server, 1 torch thread each)
    chunk_ms: int = 640  # attention chunk when the client's config names none
    left_chunks: int = 8  # chunks of left context (asr.inference.TranscribeOptions)
    max_batch: int = 16  # streams' chunks encoded in one batch (asr.serving.batching); 1 = each stream alone
    batch_window_ms: float = 5.0  # how long a batch waits for more chunks after its first
    # partial results from the chunked pass, batched across streams: many streams share the cores
    # (standard input's "segment" partials re-encode each stream's open segment, steadier but dearer)
    partials: str = "chunk"

    def __post_init__(self):
        positive = ("max_streams", "max_stream_s", "idle_timeout_s", "max_message_bytes", "workers", "chunk_ms")
        for name in (*positive, "max_batch"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")
        if self.batch_window_ms < 0:
            raise ValueError(f"batch_window_ms must not be negative, not {self.batch_window_ms}")


class StreamServer:
    def __init__(self, recognizer, config: ServerConfig = ServerConfig()):
        self.recognizer, self.config = recognizer, config
        self.slots = ComputeSlots(config.workers)
        self.batcher = None
        if config.max_batch > 1:  # any backend: chunks go through recognizer.acoustic
            self.batcher = ChunkBatcher(
                recognizer.acoustic, self.slots.semaphore, config.batch_window_ms, config.max_batch, config.workers
            )
        self.open_streams = 0
        self.server = None
        self.page = PageHandler(model_info(recognizer, config.chunk_ms))  # GET / without an upgrade: the page
        # the model's frame length, to check a client's chunk_ms before a thread starts
        self.frame_shift = recognizer.frame_shift

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the port (a free one when ``port`` is 0)."""
        note = self.recognizer.live_note(replace(LIVE, chunk_ms=self.config.chunk_ms))
        if note:
            log.warning(note)
        self.server = await websockets.serve(
            self._handle,
            host,
            port,
            max_size=2 * self.config.max_message_bytes,  # past this websockets closes with 1009, unread
            compression=None,  # PCM does not compress; no inflate bombs
            ping_interval=None,  # the idle timeout watches clients
            process_request=self.page,
        )
        return self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        if self.batcher is not None:
            await asyncio.to_thread(self.batcher.close)

    async def _handle(self, ws: ServerConnection) -> None:
        if self.open_streams >= self.config.max_streams:
            limit = self.config.max_streams
            await _refuse(ws, ProtocolError(f"server busy: {limit} streams open (limit --max-streams)", 1013))
            return
        self.open_streams += 1
        try:
            await self._serve(ws)
        finally:
            self.open_streams -= 1

    async def _recv(self, ws: ServerConnection) -> str | bytes:
        try:
            message = await asyncio.wait_for(ws.recv(), self.config.idle_timeout_s)
        except TimeoutError:
            raise ProtocolError(f"idle for {self.config.idle_timeout_s:g} s (limit --idle-timeout)") from None
        if len(message) > self.config.max_message_bytes:
            limit = self.config.max_message_bytes
            raise ProtocolError(f"message of {len(message)} bytes exceeds {limit} (limit --max-message-bytes)", 1009)
        return message

    def _options(self, stream: StreamConfig) -> TranscribeOptions:
        chunk_ms = stream.chunk_ms or self.config.chunk_ms
        options = replace(LIVE, chunk_ms=chunk_ms, left_chunks=self.config.left_chunks,
                          partials=self.config.partials)  # the model's decoding, two passes  # fmt: skip
        try:
            options.chunk_frames(self.frame_shift)
        except ValueError as err:
            raise ProtocolError(str(err)) from None
        return options

    async def _serve(self, ws: ServerConnection) -> None:
        session = sender = None
        try:
            stream = parse_config(await self._recv(ws))
            options = self._options(stream)
            outbox: asyncio.Queue = asyncio.Queue()
            loop = asyncio.get_running_loop()
            session = StreamSession(
                self.recognizer, options, stream.sample_rate, self.slots,
                lambda message: loop.call_soon_threadsafe(outbox.put_nowait, message), self.batcher,
            )  # fmt: skip
            sender = asyncio.create_task(_send_all(ws, outbox))
            sender.add_done_callback(lambda task: task.cancelled() or task.exception())  # seen: no warning
            limit = self.config.max_stream_s * stream.sample_rate
            while True:
                message = await self._recv(ws)
                if isinstance(message, str):
                    parse_control(message)
                    session.end()
                    break
                if len(message) % 2:
                    raise ProtocolError(f"binary message of {len(message)} bytes: s16le needs an even byte count")
                if session.samples + len(message) // 2 > limit:
                    raise ProtocolError(
                        f"stream longer than {self.config.max_stream_s:g} s of audio (limit --max-stream-s)"
                    )
                session.feed(message)
            await sender  # the rest of the stream, the closing message and the close
        except ProtocolError as err:
            if sender is not None:
                sender.cancel()
            if session is not None:
                session.cancel()
            await _refuse(ws, err)
        except websockets.ConnectionClosed:  # the client went away; a stream of its own is let go
            if sender is not None:
                sender.cancel()
            if session is not None:
                session.cancel()
            log.info("client %s left mid-stream", ws.remote_address)


async def _send_all(ws: ServerConnection, outbox: asyncio.Queue) -> None:
    """Send the session's messages until its closing (or error) message, then close."""
    while True:
        message = await outbox.get()
        await ws.send(json.dumps(message))
        if message["type"] in ("done", "error"):
            await ws.close(1000 if message["type"] == "done" else 1011)
            return


async def _refuse(ws: ServerConnection, err: ProtocolError) -> None:
    """The one error message, then the close."""
    try:
        await ws.send(json.dumps(error_message(str(err))))
        await ws.close(err.code, str(err).encode()[:120].decode(errors="ignore"))
    except websockets.ConnectionClosed:
        pass
