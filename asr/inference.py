"""Inference: a loaded model that turns waveforms or files into text."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from asr.audio import read_audio
from asr.checkpoint import load_parts
from asr.config import RecipeConfig
from asr.data.batch import pad_1d
from asr.decoding import greedy_decode
from asr.model import CTCModel
from asr.tokenizer import Tokenizer


@dataclass(frozen=True)
class Transcript:
    text: str
    duration: float  # seconds of audio


class Recognizer:
    def __init__(self, recipe: RecipeConfig, tokenizer: Tokenizer, model: CTCModel, device: str = "cpu"):
        self.recipe = recipe
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()

    @torch.inference_mode()
    def transcribe_waves(self, waves: list[torch.Tensor], max_batch_seconds: float = 120.0) -> list[str]:
        """(N_i,) 16 kHz waveforms -> texts, batched by similar length."""
        shortest = self.model.min_samples()
        waves = [w if w.numel() >= shortest else F.pad(w, (0, shortest - w.numel())) for w in waves]
        order = sorted(range(len(waves)), key=lambda i: waves[i].numel())
        texts: list[str] = [""] * len(waves)
        start = 0
        while start < len(order):
            end = start + 1  # grow the batch while its padded size fits
            while end < len(order) and waves[order[end]].numel() * (end - start + 1) <= max_batch_seconds * 16000:
                end += 1
            chunk = order[start:end]
            padded, lengths = pad_1d([waves[i] for i in chunk], torch.float32)
            log_probs, out_lens = self.model(padded.to(self.device), lengths.to(self.device))
            for i, ids in zip(chunk, greedy_decode(log_probs, out_lens)):
                texts[i] = self.tokenizer.decode(ids)
            start = end
        return texts

    def transcribe(self, path: str | Path) -> Transcript:
        wave = read_audio(path, self.recipe.features.sample_rate)
        return Transcript(self.transcribe_waves([wave])[0], wave.numel() / self.recipe.features.sample_rate)


def load_model(path: str | Path, device: str = "cpu") -> Recognizer:
    """Rebuild a model from a self-describing checkpoint (``model.pt`` or ``*.ckpt``)."""
    recipe, tokenizer, model = load_parts(path)
    return Recognizer(recipe, tokenizer, model, device)
