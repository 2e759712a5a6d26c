"""A streaming client: 16-bit PCM to the server at real-time speed or at once, replies timed.

    run = await stream_pcm("ws://127.0.0.1:8765", pcm, 16000, realtime=True)
    print(run.text, run.final_latency)

With ``realtime`` the audio is sent as a microphone would: packet ``k`` (``packet_ms``
long) leaves when its last sample has been "spoken", ``start + (k + 1) * packet_ms``.
Latencies are measured from when the audio was spoken: a partial ending at ``end`` s
from ``start + end``, the closing result from ``start + duration``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
import websockets


@dataclass(frozen=True)
class Reply:
    time: float  # event-loop clock when it arrived
    message: dict


@dataclass
class StreamRun:
    start: float  # clock time of sample 0
    duration: float  # seconds of audio sent
    replies: list[Reply] = field(default_factory=list)
    close_code: int | None = None  # how the server closed (None: it did not)

    def of_type(self, kind: str) -> list[Reply]:
        return [r for r in self.replies if r.message["type"] == kind]

    @property
    def done(self) -> dict | None:
        done = self.of_type("done")
        return done[0].message if done else None

    @property
    def text(self) -> str | None:
        return self.done["text"] if self.done else None

    @property
    def errors(self) -> list[str]:
        return [r.message["error"] for r in self.of_type("error")]

    @property
    def final_latency(self) -> float | None:
        """Seconds from the end of the audio to the closing result."""
        done = self.of_type("done")
        return done[0].time - (self.start + self.duration) if done else None

    def partial_latencies(self) -> list[float]:
        return [r.time - (self.start + r.message["end"]) for r in self.of_type("partial")]


def read_pcm(path: str | Path) -> tuple[bytes, int]:
    """An audio file -> (16-bit little-endian mono PCM, sample rate)."""
    samples, rate = sf.read(str(path), dtype="int16", always_2d=True)
    mono = samples[:, 0] if samples.shape[1] == 1 else samples.mean(axis=1).astype(np.int16)
    return mono.astype("<i2").tobytes(), rate


async def read_replies(ws, run: StreamRun, on_reply: Callable[[dict], None] | None = None) -> None:
    """Collect the server's messages (also passed to ``on_reply``) until it closes the connection."""
    loop = asyncio.get_running_loop()
    try:
        async for message in ws:
            run.replies.append(Reply(loop.time(), json.loads(message)))
            if on_reply is not None:
                on_reply(run.replies[-1].message)
    except websockets.ConnectionClosed:
        pass
    run.close_code = ws.close_code


async def stream_pcm(
    url: str,
    pcm: bytes,
    sample_rate: int,
    realtime: bool = True,
    packet_ms: int = 100,
    chunk_ms: int | None = None,
    timeout_s: float = 60.0,
    on_reply: Callable[[dict], None] | None = None,
) -> StreamRun:
    """Stream ``pcm`` (16-bit mono at ``sample_rate``) -> the server's replies, timed
    (each also passed to ``on_reply`` as it arrives)."""
    config = {"type": "config", "sample_rate": sample_rate, "format": "s16le"}
    if chunk_ms is not None:
        config["chunk_ms"] = chunk_ms
    packet = 2 * max(sample_rate * packet_ms // 1000, 1)  # bytes per packet
    loop = asyncio.get_running_loop()
    async with websockets.connect(url, max_size=None, compression=None, ping_interval=None) as ws:
        await ws.send(json.dumps(config))
        run = StreamRun(loop.time(), len(pcm) / 2 / sample_rate)
        reader = asyncio.create_task(read_replies(ws, run, on_reply))
        try:
            for k, offset in enumerate(range(0, len(pcm), packet)):
                if realtime:
                    await asyncio.sleep(max(run.start + (k + 1) * packet_ms / 1000 - loop.time(), 0))
                if reader.done():  # refused or failed: stop sending
                    break
                await ws.send(pcm[offset : offset + packet])
            else:
                if realtime:
                    await asyncio.sleep(max(run.start + run.duration - loop.time(), 0))
                await ws.send(json.dumps({"type": "end"}))
        except websockets.ConnectionClosed:
            pass
        await asyncio.wait_for(reader, timeout_s)
    return run


async def send_messages(url: str, messages: list, abort: bool = False, timeout_s: float = 60.0) -> StreamRun:
    """Send ``messages`` as they are (dict -> JSON text, str, bytes; for tests and hostile
    clients) and read until the server closes; ``abort`` drops the connection after
    sending instead, as a client that vanishes."""
    async with websockets.connect(url, max_size=None, compression=None, ping_interval=None) as ws:
        run = StreamRun(asyncio.get_running_loop().time(), 0.0)
        reader = asyncio.create_task(read_replies(ws, run))
        try:
            for message in messages:
                await ws.send(json.dumps(message) if isinstance(message, dict) else message)
        except websockets.ConnectionClosed:
            pass
        if abort:
            ws.transport.abort()
        await asyncio.wait_for(reader, timeout_s)
    return run
