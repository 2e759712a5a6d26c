"""Streaming transcription: block readers, a streaming front end, chunked encoding with a
cache, incremental CTC decoding and segmentation of long audio."""

from asr.streaming.options import TranscribeOptions
from asr.streaming.stream import Segment, StreamEvent, transcribe_stream

__all__ = ["Segment", "StreamEvent", "TranscribeOptions", "transcribe_stream"]
