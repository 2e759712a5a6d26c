"""LightningDataModule: filtered training utterances in duration buckets, sharded per rank."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader

from asr.config import RecipeConfig
from asr.data.augment.speed import speed_length
from asr.data.batch import Batch, UtteranceDataset, collate
from asr.data.manifest import Entry
from asr.data.sampler import DurationBatchSampler, ResumableDataLoader
from asr.data.shards import ShardReader
from asr.model.features import LogMel
from asr.model.subsampling import subsampling_class
from asr.text.tokenizer import UNKNOWN, Tokenizer

MAX_IDS_SHOWN = 10


def ctc_frames_needed(tokens: list[int]) -> int:
    """CTC needs one frame per token plus a blank between each pair of equal neighbours."""
    return len(tokens) + sum(a == b for a, b in zip(tokens, tokens[1:]))


def fastest_factors(recipe: RecipeConfig) -> tuple[float, float]:
    """-> the largest speed (``data.speed_perturb``) and tempo (``augment``) factors training
    can draw; 1.0 where that perturbation is off or may leave an utterance as it is."""
    aug = recipe.augment
    tempos = ((1.0,) if aug.tempo_prob < 1 else ()) + (aug.tempo if aug.tempo_prob > 0 else ())
    return max(recipe.data.speed_perturb, default=1.0), max(tempos)


def filter_entries(entries: list[Entry], recipe: RecipeConfig, tokenizer: Tokenizer) -> tuple[list[Entry], list[str]]:
    """Drop utterances that cannot train -> (kept, one report line per reason). CTC
    feasibility is checked at the fastest speed and tempo training can play an utterance."""
    logmel = LogMel(recipe.features)
    subsampling = subsampling_class(recipe.model.subsampling)
    rate = recipe.features.sample_rate
    speed, tempo = fastest_factors(recipe)
    too_short = "too short for its transcript under CTC"
    if speed * tempo != 1.0:
        too_short += f" once sped up {speed * tempo:.3g}x"
    reasons: dict[str, list[str]] = {}
    kept = []
    for e in entries:
        if not e.text:
            reasons.setdefault("empty transcript", []).append(e.id)
            continue
        if e.duration > recipe.data.max_duration:
            reasons.setdefault(f"longer than data.max_duration={recipe.data.max_duration}s", []).append(e.id)
            continue
        tokens = tokenizer.encode(e.text)
        if UNKNOWN in tokens:
            reasons.setdefault("characters the tokenizer does not know", []).append(e.id)
            continue
        samples = speed_length(int(e.duration * rate), speed, rate)
        shortest = torch.tensor([round(samples / tempo)])  # (1,) samples, rounded as Tempo rounds them
        frames = int(subsampling.output_lengths(logmel.num_frames(shortest))[0])
        if frames < ctc_frames_needed(tokens):
            reasons.setdefault(too_short, []).append(e.id)
            continue
        kept.append(e)
    report = []
    for reason, ids in reasons.items():
        shown = ", ".join(ids[:MAX_IDS_SHOWN]) + (" ..." if len(ids) > MAX_IDS_SHOWN else "")
        report.append(f"skipped {len(ids)} utterances ({reason}): {shown}")
    return kept, report


class OtherUtterances:
    """A random training waveform (N,) for babble noise; picklable for loader workers."""

    def __init__(self, entries: list[Entry], sample_rate: int):
        self.paths = [e.audio for e in entries]
        self.sample_rate = sample_rate

    def __call__(self, rng) -> torch.Tensor:
        from asr.audio.read import AudioError, read_audio

        for _ in range(3):  # a file gone since the manifest was made: try another
            try:
                return read_audio(self.paths[rng.randrange(len(self.paths))], self.sample_rate)
            except AudioError:
                continue
        return torch.zeros(self.sample_rate)


class ASRDataModule(L.LightningDataModule):
    def __init__(self, recipe: RecipeConfig, tokenizer: Tokenizer, train: list[Entry], dev: list[Entry]):
        super().__init__()
        self.recipe = recipe
        self.tokenizer = tokenizer
        self.train_entries, self.report = filter_entries(train, recipe, tokenizer)
        self.dev_entries = dev
        # read by memory map where an index holds the utterance; a shard missing or cut short is a ShardError now
        self.shards = ShardReader(recipe.data.shards, recipe.features.sample_rate) if recipe.data.shards else None
        if self.shards is not None:
            decoded = sum(e.id not in self.shards for e in self.train_entries)
            if decoded:
                self.report.append(f"{decoded} training utterances are in no index of data.shards: decoded from audio")
        self.train_sampler: DurationBatchSampler | None = None  # counts consumed batches for resuming
        self._resume_state: dict | None = None  # sampler state from a checkpoint, applied on creation

    def _loader(self, entries: list[Entry], train: bool) -> DataLoader:
        cfg = self.recipe.data
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        sampler = DurationBatchSampler(
            [e.duration for e in entries],
            cfg.max_batch_seconds,
            buckets=cfg.buckets if train else 1,
            shuffle=train,
            seed=self.recipe.seed,
            rank=rank,
            world_size=world,
        )
        sample_rate = self.recipe.features.sample_rate
        in_loader = train and not cfg.augment_device  # else the training step perturbs (asr.data.augment.device)
        augment = self._augment(entries) if in_loader else None
        speed = cfg.speed_perturb if in_loader else ()
        dataset = UtteranceDataset(entries, self.tokenizer, speed, sample_rate, augment, self.shards)
        if train:
            if self._resume_state is not None:
                sampler.load_state_dict(self._resume_state)
                self._resume_state = None
            self.train_sampler = sampler
        return (ResumableDataLoader if train else DataLoader)(
            dataset,
            batch_sampler=sampler,
            collate_fn=collate,
            num_workers=cfg.num_workers,
            persistent_workers=cfg.num_workers > 0,
            # page-locked batches: the copy to a GPU then runs without the host waiting on it
            pin_memory=self.trainer is not None and self.trainer.strategy.root_device.type == "cuda",
        )

    def _augment(self, entries: list[Entry]):
        """The recipe's acoustic augmentation (None when every transform is off); babble
        noise is made of other training utterances."""
        from asr.data.augment import Augment

        augment = Augment(self.recipe.augment, others=OtherUtterances(entries, self.recipe.features.sample_rate),
                          seed=self.recipe.seed)  # fmt: skip
        return augment if augment.enabled else None

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_entries, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.dev_entries, train=False)

    def state_dict(self) -> dict:
        """Where training is in the epoch; Lightning saves it in every checkpoint."""
        return {"train_sampler": self.train_sampler.state_dict()} if self.train_sampler is not None else {}

    def load_state_dict(self, state: dict) -> None:
        # Lightning restores the data module before it asks for loaders, whereas the loader
        # state it keeps itself (ResumableDataLoader) is not restored when configure_optimizers
        # reads trainer.estimated_stepping_batches (that builds the loader first); this path is.
        self._resume_state = state.get("train_sampler")

    def transfer_batch_to_device(self, batch, device, dataloader_idx: int):
        # Lightning would call Batch.to(device) blocking: on a GPU each copy then waits for
        # every kernel queued; from pinned memory a non-blocking copy waits for none
        if isinstance(batch, Batch):
            return batch.to(device, non_blocking=device.type == "cuda")
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def on_before_batch_transfer(self, batch, dataloader_idx: int):
        # Runs as a training batch reaches the model (not when a worker or Lightning prefetches
        # it), so the sampler's count is exact when a mid-epoch checkpoint is saved.
        if self.trainer is not None and self.trainer.training and self.train_sampler is not None:
            self.train_sampler.mark_consumed()
        return batch
