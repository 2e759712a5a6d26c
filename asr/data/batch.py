"""Typed batches and the dataset that yields their pieces.

An utterance whose audio cannot be read when it is loaded (gone missing or unreadable
after the manifest was made) does not stop training: the dataset yields an
:class:`Unusable` in its place, and :func:`collate` leaves it out of the batch, listing it
in ``Batch.skipped`` for the training module to count and report.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

import torch
from torch.utils.data import Dataset

from asr.audio.read import AudioError, read_audio
from asr.data.augment.speed import speed_perturb
from asr.data.manifest import Entry
from asr.data.shards import ShardError, ShardReader
from asr.text.tokenizer import Tokenizer


@dataclass(frozen=True)
class Batch:
    waves: torch.Tensor  # (B, N) float32, zero-padded
    wave_lengths: torch.Tensor  # (B,) samples
    tokens: torch.Tensor  # (B, U) int64, zero-padded
    token_lengths: torch.Tensor  # (B,)
    ids: tuple[str, ...]
    texts: tuple[str, ...]
    skipped: tuple[str, ...] = ()  # "id: reason" for each utterance left out of this batch

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Batch":
        """``non_blocking``: from page-locked memory (:meth:`pin_memory`) the copies to a GPU
        are queued, and the host goes on without waiting for the device."""
        return Batch(
            self.waves.to(device, non_blocking=non_blocking),
            self.wave_lengths.to(device, non_blocking=non_blocking),
            self.tokens.to(device, non_blocking=non_blocking),
            self.token_lengths.to(device, non_blocking=non_blocking),
            self.ids,
            self.texts,
            self.skipped,
        )

    def pin_memory(self) -> "Batch":
        """The batch in page-locked host memory (what a DataLoader with ``pin_memory=True`` calls)."""
        tensors = (self.waves, self.wave_lengths, self.tokens, self.token_lengths)
        return Batch(*(t.pin_memory() for t in tensors), self.ids, self.texts, self.skipped)


def pad_1d(items: list[torch.Tensor], dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """list of (N_i,) -> (B, max N) zero-padded, (B,) lengths"""
    lengths = torch.tensor([len(x) for x in items], dtype=torch.long)
    out = torch.zeros(len(items), int(lengths.max()) if items else 0, dtype=dtype)
    for i, x in enumerate(items):
        out[i, : len(x)] = x
    return out, lengths


@dataclass(frozen=True)
class Unusable:
    """Stands in for an utterance that could not be loaded."""

    id: str
    reason: str  # one line; names the file when the audio is at fault


class UtteranceDataset(Dataset):
    """Manifest entries -> (id, wave (N,), token ids (U,), text); optional speed perturbation.

    With ``shards`` (:class:`asr.data.shards.ShardReader`), utterances it holds are read by
    memory map instead of decoded.
    """

    def __init__(
        self,
        entries: list[Entry],
        tokenizer: Tokenizer,
        speed_perturb: tuple[float, ...] = (),
        sample_rate: int = 16000,
        augment: Callable[[torch.Tensor, random.Random], torch.Tensor] | None = None,
        shards: ShardReader | None = None,
    ):
        self.entries = entries
        self.tokenizer = tokenizer
        self.speed_perturb = speed_perturb
        self.augment = augment  # e.g. asr.data.augment.Augment; its draws come from Python's seeded `random`
        self.sample_rate = sample_rate  # the front end's (FeatureConfig.sample_rate)
        self.shards = shards

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int):
        """-> (id, wave, tokens, text), or :class:`Unusable` naming what is wrong."""
        entry = self.entries[index]
        try:
            if self.shards is not None and entry.id in self.shards:
                wave = self.shards.read(entry.id)
            else:
                wave = read_audio(entry.audio, self.sample_rate)
        except AudioError as err:
            return Unusable(entry.id, str(err))
        except (OSError, ShardError) as err:  # a shard gone or cut short since training started
            return Unusable(entry.id, str(err))
        if self.speed_perturb:
            wave = speed_perturb(wave, random.choice(self.speed_perturb), self.sample_rate)
        if self.augment is not None:
            wave = self.augment(wave, random.Random(random.getrandbits(64)))
        tokens = torch.tensor(self.tokenizer.encode(entry.text), dtype=torch.long)
        return entry.id, wave, tokens, entry.text


def collate(items) -> Batch:
    """Dataset items -> one padded :class:`Batch`; :class:`Unusable` items are listed in
    ``skipped`` (a batch may end up with no utterance at all)."""
    skipped = tuple(f"{item.id}: {item.reason}" for item in items if isinstance(item, Unusable))
    usable = [item for item in items if not isinstance(item, Unusable)]
    ids, waves, tokens, texts = zip(*usable) if usable else ((), (), (), ())
    waves, wave_lengths = pad_1d(list(waves), torch.float32)
    tokens, token_lengths = pad_1d(list(tokens), torch.long)
    return Batch(waves, wave_lengths, tokens, token_lengths, tuple(ids), tuple(texts), skipped)
