"""The streaming protocol: what a client sends, what the server answers.

One WebSocket connection carries one stream:

1. The client sends a JSON **config** message first (a text message)::

       {"type": "config", "sample_rate": 16000, "format": "s16le", "chunk_ms": 640}

   ``sample_rate`` (required): an integer from :data:`MIN_RATE` to :data:`MAX_RATE`; audio at
   another rate than the model's is resampled on the server (block by block, with the same
   result as resampling the whole signal: :mod:`asr.audio.resample`). ``format``
   (optional, the only one): ``"s16le"``, 16-bit signed little-endian mono PCM. ``chunk_ms``
   (optional): the attention chunk, a positive multiple of the model's frame (20 ms for the
   main job's model), at most :data:`MAX_CHUNK_MS`; the server's ``--chunk-ms`` when absent.
   ``"type"`` may be left out. Any other key is an error.
2. Then **binary** messages of PCM (an even number of bytes each, any length up to the
   server's message limit; chunk boundaries do not change the result).
3. Then ``{"type": "end"}``; the server finishes the stream, sends what remains and closes.
   A client that closes without it has abandoned the stream: nothing more is sent.

The server answers with JSON text messages, times in seconds from the start of the stream:

- ``{"type": "partial", "segment": 0, "text": "THE CAT", "start": 0.0, "end": 1.28}``:
  the open segment's hypothesis after each encoded chunk (``end``: audio heard so far);
- ``{"type": "final", "segment": 0, "text": ..., "start": ..., "end": ...,
  "words": [{"text": "THE", "start": 0.12, "end": 0.31}, ...]}``: a finished segment
  (long audio is cut at pauses into segments, :class:`asr.inference.TranscribeOptions`);
- ``{"type": "done", "text": ..., "words": [...], "duration": 3.03, "segments": 1}``: the
  closing result after ``end``, the whole transcript (the finals joined), then the close;
- ``{"type": "error", "error": "one line"}``: the one message a refused or failed stream
  gets, after which the server closes that connection (other streams go on).

Binary data cannot be told from audio once the config is accepted (any even count of bytes
is valid PCM); garbage is caught where it breaks the protocol: before the config, as a
text message that is not JSON, or an odd byte count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from asr.inference.stream import Segment, StreamEvent

MIN_RATE, MAX_RATE = 8000, 48000  # declared sample rates the server accepts (and resamples)
MAX_CHUNK_MS = 5000  # longest attention chunk a client may ask for
FORMATS = ("s16le",)
CONFIG_KEYS = {"type", "sample_rate", "format", "chunk_ms"}


class ProtocolError(Exception):
    """A client broke the protocol or a limit; the message is the one line it is told."""

    def __init__(self, message: str, code: int = 1008):
        super().__init__(message)
        self.code = code  # WebSocket close code: 1008 policy, 1009 too big, 1011 server fault, 1013 busy


@dataclass(frozen=True)
class StreamConfig:
    sample_rate: int  # Hz of the PCM the client sends
    chunk_ms: int | None = None  # attention chunk; None = the server's default


def parse_config(message: str | bytes) -> StreamConfig:
    """The first message -> :class:`StreamConfig`; :class:`ProtocolError` naming what is wrong."""
    if isinstance(message, bytes):
        raise ProtocolError(f"expected a JSON config message first, got {len(message)} bytes of binary data")
    try:
        config = json.loads(message)
    except ValueError:
        raise ProtocolError(f"the config message is not JSON: {message[:40]!r}") from None
    if not isinstance(config, dict):
        raise ProtocolError("the config message must be a JSON object")
    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:
        raise ProtocolError(f"unknown config key {unknown[0]!r} (known: {', '.join(sorted(CONFIG_KEYS))})")
    if config.get("type", "config") != "config":
        raise ProtocolError(f"expected a message of type 'config' first, got {config['type']!r}")
    rate = config.get("sample_rate")
    if type(rate) is not int or not MIN_RATE <= rate <= MAX_RATE:
        raise ProtocolError(f"sample_rate must be an integer from {MIN_RATE} to {MAX_RATE} Hz, not {rate!r}")
    if config.get("format", "s16le") not in FORMATS:
        raise ProtocolError(f"format {config['format']!r} is not supported (only s16le)")
    chunk_ms = config.get("chunk_ms")
    if chunk_ms is not None and (type(chunk_ms) is not int or not 0 < chunk_ms <= MAX_CHUNK_MS):
        raise ProtocolError(f"chunk_ms must be a positive integer up to {MAX_CHUNK_MS}, not {chunk_ms!r}")
    return StreamConfig(rate, chunk_ms)


def parse_control(message: str) -> str:
    """A text message after the config -> its type (only "end" is known)."""
    try:
        control = json.loads(message)
    except ValueError:
        raise ProtocolError(f"a text message is not JSON: {message[:40]!r}") from None
    if not isinstance(control, dict) or control.get("type") != "end":
        raise ProtocolError(f'expected {{"type": "end"}} or binary audio, got {message[:40]!r}')
    return "end"


def _words(segment: Segment) -> list[dict]:
    return [{"text": w.text, "start": w.start, "end": w.end} for w in segment.words]


def event_message(event: StreamEvent, index: int) -> dict:
    """A stream event of segment ``index`` -> its partial or final message."""
    seg = event.segment
    message = {"type": "final" if event.final else "partial", "segment": index, "text": seg.text}
    message.update(start=seg.start, end=seg.end)
    if event.final:
        message["words"] = _words(seg)
    return message


def done_message(finals: list[Segment], duration: float) -> dict:
    """The closing message: the finished segments joined."""
    text = " ".join(s.text for s in finals if s.text)
    words = [w for s in finals for w in _words(s)]
    return {"type": "done", "text": text, "words": words, "duration": round(duration, 3), "segments": len(finals)}


def error_message(message: str) -> dict:
    return {"type": "error", "error": message}
