"""CTC decoding."""

from asr.decoding.greedy import greedy_decode

__all__ = ["greedy_decode"]
