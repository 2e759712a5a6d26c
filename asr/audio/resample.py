"""Resampling block by block with the same result as resampling the whole signal.

``torchaudio.functional.resample`` is a polyphase FIR filter: output block ``i`` (``new``
samples, rates divided by their gcd) is one strided convolution of input samples
``[i * orig - width, i * orig + orig + width)``, zero outside the signal. Keeping the last
``2 * width`` input samples between blocks, each output is computed once its support has
arrived, with the same kernel (``torchaudio.transforms.Resample``), so the concatenated
blocks equal the one-shot result.
"""

from __future__ import annotations

import functools
import math

import torch
import torchaudio
from torch.nn import functional as F


class StreamingResampler:
    """(N_i,) blocks at ``orig_rate`` -> (M_i,) blocks at ``new_rate``; call :meth:`flush` at the end."""

    def __init__(self, orig_rate: int, new_rate: int):
        gcd = math.gcd(orig_rate, new_rate)
        self.orig, self.new = orig_rate // gcd, new_rate // gcd
        self.identity = orig_rate == new_rate
        if not self.identity:
            self.kernel, self.width = _kernel(orig_rate, new_rate)  # (new, 1, 2 * width + orig)
        else:
            self.kernel, self.width = None, 0
        self.buffer = torch.zeros(self.width)  # input samples from index ``next_block * orig - width`` on
        self.next_block = 0  # first output block not computed yet
        self.received = 0  # input samples seen
        self.emitted = 0  # output samples returned

    def _blocks(self, available: int) -> torch.Tensor:
        """Compute every output block whose input support lies within ``available`` samples."""
        last = (available - self.width - self.orig) // self.orig  # highest computable block index
        count = last - self.next_block + 1
        if count <= 0:
            return torch.zeros(0)
        span = (count - 1) * self.orig + self.kernel.shape[-1]
        out = F.conv1d(self.buffer[None, None, :span], self.kernel, stride=self.orig)  # (1, new, count)
        self.buffer = self.buffer[count * self.orig :]
        self.next_block += count
        return out[0].transpose(0, 1).reshape(-1)  # (count * new,)

    def process(self, block: torch.Tensor) -> torch.Tensor:
        """(N,) float input -> (M,) output samples that are final now (possibly none)."""
        self.received += block.numel()
        if self.identity:
            self.emitted += block.numel()
            return block
        self.buffer = torch.cat([self.buffer, block.float()])
        out = self._blocks(self.received)
        self.emitted += out.numel()
        return out

    def flush(self) -> torch.Tensor:
        """The last output samples (the signal ends: zeros follow)."""
        if self.identity:
            return torch.zeros(0)
        self.buffer = torch.cat([self.buffer, torch.zeros(self.width + self.orig)])
        out = self._blocks(self.received + self.width + self.orig)
        total = math.ceil(self.new * self.received / self.orig)  # the one-shot output length
        out = out[: max(total - self.emitted, 0)]
        self.emitted += out.numel()
        return out


@functools.lru_cache(maxsize=8)
def _kernel(orig_rate: int, new_rate: int) -> tuple[torch.Tensor, int]:
    """torchaudio's polyphase kernel and its width, built once per pair of rates (2-5 ms
    each time for 44.1 or 22.05 kHz: as much as the model takes for a second of audio).
    Only read, never written: conv1d takes it as it is."""
    resampler = torchaudio.transforms.Resample(orig_rate, new_rate)
    return resampler.kernel, resampler.width
