"""Training logic in Lightning: CTC loss in fp32, AdamW, warm-up then cosine decay,
greedy WER on the validation set, and self-describing checkpoints."""

from __future__ import annotations

import math

import lightning as L
import torch
from torchmetrics.text import WordErrorRate

from asr.checkpoint import checkpoint_meta
from asr.config import RecipeConfig
from asr.data.batch import Batch
from asr.decoding import greedy_decode
from asr.model import CTCModel
from asr.model.ctc_model import ctc_loss
from asr.tokenizer import Tokenizer

MAX_BAD_STEPS = 20  # consecutive non-finite losses before the run stops


class NonFiniteLossError(RuntimeError):
    pass


class ASRModule(L.LightningModule):
    def __init__(self, recipe: RecipeConfig, tokenizer: Tokenizer, mean: torch.Tensor | None = None, std=None):
        super().__init__()
        self.recipe = recipe
        self.tokenizer = tokenizer
        self.model = CTCModel(recipe.model, recipe.features, recipe.specaug, tokenizer.vocab_size)
        if mean is not None:
            self.model.cmvn.set_stats(mean, std)
        self.val_wer = WordErrorRate()
        self.bad_steps = 0  # consecutive non-finite losses
        self.skipped_steps = 0

    def training_step(self, batch: Batch, batch_idx: int):
        log_probs, lengths = self.model(batch.waves, batch.wave_lengths)
        loss = ctc_loss(log_probs, lengths, batch.tokens, batch.token_lengths)
        if not torch.isfinite(loss):
            self.bad_steps += 1
            self.skipped_steps += 1
            self.log("skipped_steps", float(self.skipped_steps))
            if self.bad_steps >= MAX_BAD_STEPS:
                raise NonFiniteLossError(f"{self.bad_steps} non-finite losses in a row; stopping (lower optim.lr?)")
            return None  # Lightning skips the optimizer step
        self.bad_steps = 0
        B = batch.waves.shape[0]
        self.log("train_loss", loss, prog_bar=True, batch_size=B)
        self.log("lr", self.optimizers().param_groups[0]["lr"], prog_bar=True, batch_size=B)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int):
        log_probs, lengths = self.model(batch.waves, batch.wave_lengths)
        loss = ctc_loss(log_probs, lengths, batch.tokens, batch.token_lengths)
        hyps = [self.tokenizer.decode(ids) for ids in greedy_decode(log_probs, lengths)]
        self.val_wer.update(hyps, list(batch.texts))
        B = batch.waves.shape[0]
        self.log("val_loss", loss, prog_bar=True, batch_size=B, sync_dist=True)
        self.log("val_wer", self.val_wer, prog_bar=True, batch_size=B)

    def configure_optimizers(self):
        cfg = self.recipe.optim
        decay, no_decay = [], []
        for name, param in self.model.named_parameters():
            (no_decay if param.ndim < 2 else decay).append(param)  # no decay on norms and biases
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.lr,
            betas=cfg.betas,
        )
        total = max(int(self.trainer.estimated_stepping_batches), cfg.warmup_steps + 1)

        def factor(step: int) -> float:
            if step < cfg.warmup_steps:
                return (step + 1) / cfg.warmup_steps
            progress = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
            return cfg.final_lr_ratio + (1 - cfg.final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["asr"] = checkpoint_meta(self.recipe, self.tokenizer)
