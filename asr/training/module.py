"""Training logic in Lightning: CTC loss in fp32, AdamW, warm-up then cosine decay,
greedy WER on the validation set, and self-describing checkpoints, written atomically.

Faults during training are reported, not fatal where training can go on: a non-finite
loss skips its step (``skipped_steps``), an utterance whose audio cannot be read is left
out of its batch (``skipped_utterances``), both counted, logged and printed on stderr; a
run of :data:`MAX_BAD_STEPS` non-finite losses stops with :class:`NonFiniteLossError`,
and running out of memory names the batch (:class:`BatchOutOfMemoryError`).

Every skip is decided on the device and by all ranks together: two flags per micro-batch
(non-finite loss, nothing readable), summed over ranks by one all-reduce; when any rank
raised one, the fused AdamW drops the update on every rank (``found_inf``: no weight, moment
or step-count change), so the weights stay identical and no rank waits for another. A rank
with nothing readable returns a zero loss that reaches every parameter, so the gradient
all-reduce runs as usual. Under gradient accumulation a flagged micro-batch drops its
whole update. The host reads the flags a step later (:class:`asr.training.step.DeferredFlags`)
to count, warn and stop: the step itself never waits for the device. Running out of memory
stays fatal (torchrun then stops every rank).
"""

from __future__ import annotations

import math
import sys

import lightning as L
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torchmetrics.text import WordErrorRate

from asr.inference.checkpoint import checkpoint_meta, read_checkpoint
from asr.config import RecipeConfig
from asr.data.augment.device import device_augment_for
from asr.data.batch import Batch
from asr.decoding import greedy_decode
from asr.model import CTCModel
from asr.model.ctc_model import ctc_loss
from asr.training.frozen_cache import FrozenCache, check_cacheable
from asr.training.step import DeferredFlags, batch_loss, build_optimizer, skip_flags, zero_loss
from asr.text.tokenizer import Tokenizer

MAX_BAD_STEPS = 20  # consecutive non-finite losses before the run stops
MAX_IDS_SHOWN = 5
TIME_SYNC_STEPS = 10  # steps between reading the time budget (one broadcast from rank 0)
WARMUP_TIME_SHARE = 0.25  # warm-up ends by a quarter of the time budget, however few steps that was


class Schedule:
    """Linear warm-up, then cosine decay to ``final_lr_ratio``, over whichever ends training
    first: the step count (``trainer.max_epochs`` / ``max_steps``) or the time budget
    (``trainer.max_time``). Progress is the larger of the two shares, so on a slow or busy
    machine the rate still anneals by the end of the budget instead of being cut off high;
    warm-up likewise ends by :data:`WARMUP_TIME_SHARE` of the budget (a run that managed 150
    steps in its whole budget once ended still warming up towards step 400).
    """

    def __init__(self, cfg, total_steps: int):
        self.cfg = cfg
        self.total_steps = total_steps
        self.time_progress = 0.0  # 0..1, set every few steps from the trainer's Timer

    def warmup(self, step: int) -> float:
        """0..1: how far warm-up has come, by steps or, on a slow machine, by time (warm-up
        takes at most WARMUP_TIME_SHARE of the time budget); 1 without warm-up steps."""
        if self.cfg.warmup_steps <= 0:
            return 1.0
        return min(1.0, max((step + 1) / self.cfg.warmup_steps, self.time_progress / WARMUP_TIME_SHARE))

    def progress(self, step: int) -> float:
        cfg = self.cfg
        by_steps = (step - cfg.warmup_steps) / max(1, self.total_steps - cfg.warmup_steps)
        by_time = (self.time_progress - WARMUP_TIME_SHARE) / (1 - WARMUP_TIME_SHARE)
        return min(1.0, max(by_steps, by_time, 0.0))

    def factor(self, step: int) -> float:
        cfg = self.cfg
        warm = self.warmup(step)
        if warm < 1.0:
            return warm
        progress = self.progress(step)
        return cfg.final_lr_ratio + (1 - cfg.final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def time_budget_used(trainer) -> float | None:
    """Share (0..1) of ``trainer.max_time`` spent so far, or None without a time budget."""
    from lightning.pytorch.callbacks import Timer

    timer = next((cb for cb in trainer.callbacks if isinstance(cb, Timer)), None)
    if timer is None or timer.time_remaining() is None:
        return None
    elapsed, remaining = timer.time_elapsed(), timer.time_remaining()
    total = elapsed + remaining
    return min(1.0, elapsed / total) if total > 0 else 1.0


class NonFiniteLossError(RuntimeError):
    pass


class BatchOutOfMemoryError(torch.OutOfMemoryError):
    """Out of memory on one training batch; the message gives its size and duration."""


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoints written atomically (:func:`asr.audio.atomic.atomic_write`: temporary file,
    fsync, rename; Lightning's own writer renames from the system temporary folder, a copy
    when that is another file system) and read only with ``weights_only=True``
    (:func:`asr.inference.checkpoint.read_checkpoint`), whatever the caller asks for."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        from asr.audio.atomic import atomic_write

        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict:
        return read_checkpoint(path)


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
        self.skipped_steps = 0  # optimizer steps skipped, by every rank together (the same count on each)
        self.skipped_batches = 0  # this rank's batches that caused a skip (non-finite loss, nothing readable)
        self._skip_update: torch.Tensor | None = None  # () float on the device: any flag since the last update
        self._flags = DeferredFlags()  # (ranks non-finite, ranks empty, this rank's own) per micro-batch
        self.skipped_utterances = 0  # distinct training utterances left out of their batches
        self._left_out: set[str] = set()  # their ids
        self._reported: set[str] = set()  # report lines already printed
        self._batch: Batch | None = None  # the batch in flight, to name it if backward runs out of memory
        self.schedule: Schedule | None = None  # made by configure_optimizers
        self.time_progress = 0.0  # share of trainer.max_time used (0 without a time budget)
        self.validated_at_step: int | None = None
        self.device_augment = device_augment_for(recipe)  # None unless data.augment_device
        self.frozen_cache = None  # the frozen front's outputs per utterance (data.cache_frozen_gb)
        self._cache_reported = 0  # utterances held when the cache was last reported
        if recipe.data.cache_frozen_gb > 0:
            check_cacheable(recipe)
            self.frozen_cache = FrozenCache(int(recipe.data.cache_frozen_gb * 1e9))

    def training_step(self, batch: Batch, batch_idx: int):
        self._read_flags()  # the earlier steps' flags: counts, warnings, the stop after MAX_BAD_STEPS
        self._skip_unusable(batch)
        cached = self.frozen_cache.get(batch.ids) if self.frozen_cache is not None else None
        if self.device_augment is not None and batch.ids and cached is None:  # speed + acoustic augmentation
            batch = self.device_augment.batch(batch, f"{self.current_epoch}/{batch_idx}/{self.global_rank}")
        loss = None
        if batch.ids:  # else nothing in this batch could be read
            self._batch = batch
            try:
                if self.frozen_cache is not None and cached is None:  # the frozen front once per utterance
                    cached = self.model.frozen_front(batch.waves, batch.wave_lengths)
                    self.frozen_cache.put(batch.ids, *cached)
                loss = batch_loss(self.model, self.recipe, batch.waves, batch.wave_lengths, batch.tokens,
                                  batch.token_lengths, cached)  # fmt: skip
            except torch.OutOfMemoryError as err:
                raise self._out_of_memory(batch, "forward") from err
        own = skip_flags(loss, self.device)  # (2,) this rank's [non-finite, empty]
        ranks = own
        if self._trainer is not None and self._trainer.world_size > 1:
            # summed over ranks, queued on the device's stream (NCCL): no host wait. Not the
            # strategy's reduce, which runs a barrier first, and a barrier waits on the host.
            ranks = own.clone()
            torch.distributed.all_reduce(ranks, op=torch.distributed.ReduceOp.SUM)
        skip = (ranks.sum() > 0).float()
        self._skip_update = skip if self._skip_update is None else torch.maximum(self._skip_update, skip)
        self._flags.push(torch.cat([ranks, own]), (self.global_step, batch.ids))
        if loss is None:
            return zero_loss(self.model)
        # the progress bar reads its values every step: on a GPU that is a host sync, so the
        # loss goes there only on a CPU (the log file and the Progress lines have it everywhere)
        self.log("train_loss", loss, prog_bar=self.device.type == "cpu", batch_size=batch.waves.shape[0])
        return loss

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        """Clip the gradient norm here: Lightning's mixed-precision plugin refuses to clip for a
        fused optimizer (it leaves the unscaling to it), but only fp16's scaler scales the
        gradients, and that one is unscaled first."""
        if not gradient_clip_val:
            return
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        if scaler is not None:
            scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(self.parameters(), gradient_clip_val)

    def on_before_optimizer_step(self, optimizer) -> None:
        # A flag raised on any rank since the last update: the fused AdamW drops this one.
        optimizer.found_inf = self._skip_update  # () float on the device, read by AdamW.step after this hook
        self._skip_update = None

    def _read_flags(self) -> None:
        """Count, report and act on the skip flags of the micro-batches trained so far."""
        for (ranks_nonfinite, ranks_empty, nonfinite, empty), (step, ids) in self._flags.pop_all():
            if ranks_nonfinite or ranks_empty:
                self._skipped(step, ids, bool(nonfinite), bool(empty), bool(ranks_nonfinite))
            else:
                self.bad_steps = 0

    def _skipped(self, step: int, ids: tuple[str, ...], nonfinite: bool, empty: bool, any_nonfinite: bool) -> None:
        """A micro-batch flagged on some rank, its update dropped on every rank: count and warn."""
        self.skipped_steps += 1
        self.skipped_batches += int(nonfinite or empty)
        if self._trainer is not None:
            self.log("skipped_steps", float(self.skipped_steps))
        world = self._trainer.world_size if self._trainer is not None else 1
        where = f" on rank {self.global_rank} of {world}" if world > 1 else ""
        if nonfinite:
            print(
                f"warning: non-finite loss at step {step}{where} ({_ids(ids)}); step skipped, "
                f"{self.skipped_steps} so far",
                file=sys.stderr,
            )
        elif empty and world > 1:
            print(
                f"warning: nothing readable in the batch at step {step}{where}; step skipped on every "
                f"rank, {self.skipped_steps} so far",
                file=sys.stderr,
            )
        if any_nonfinite:
            self.bad_steps += 1  # the same count on every rank: they stop together
            if self.bad_steps >= MAX_BAD_STEPS:
                raise NonFiniteLossError(
                    f"{self.bad_steps} non-finite losses in a row (last at step {step}); stopping (lower optim.lr?)"
                )

    def backward(self, loss: torch.Tensor, *args, **kwargs) -> None:
        try:
            super().backward(loss, *args, **kwargs)
        except torch.OutOfMemoryError as err:
            raise self._out_of_memory(self._batch, "backward") from err

    def _out_of_memory(self, batch: Batch | None, stage: str) -> BatchOutOfMemoryError:
        if batch is None:
            return BatchOutOfMemoryError(f"out of memory in {stage}")
        lengths = batch.wave_lengths.cpu()
        rate = self.recipe.features.sample_rate
        padded = batch.waves.shape[0] * batch.waves.shape[1] / rate
        return BatchOutOfMemoryError(
            f"out of memory in {stage} on a batch of {len(batch.ids)} utterances, {float(lengths.sum()) / rate:.1f} s "
            f"of audio ({padded:.1f} s padded, longest {float(lengths.max()) / rate:.1f} s; {_ids(batch.ids)}); "
            f"lower data.max_batch_seconds (now {self.recipe.data.max_batch_seconds}) or data.max_duration"
        )

    def _skip_unusable(self, batch: Batch) -> None:
        """Count and report (once per utterance) what the loader had to leave out."""
        if not batch.skipped:
            return
        for line in batch.skipped:
            if line not in self._reported:
                self._reported.add(line)
                print(f"warning: utterance left out: {line}", file=sys.stderr)
        if self._trainer is None or self._trainer.training:  # training, or called by hand (no trainer)
            self._left_out.update(line.split(":", 1)[0] for line in batch.skipped)
            self.skipped_utterances = len(self._left_out)
            if self._trainer is not None:
                self.log("skipped_utterances", float(self.skipped_utterances))

    def on_train_epoch_end(self) -> None:
        self._read_flags()  # the epoch's last steps, before their totals are logged
        cache = self.frozen_cache
        if cache is not None and len(cache) != self._cache_reported:
            self._cache_reported = len(cache)
            room = "; full: later utterances go through the front every epoch" if cache.full else ""
            print(f"frozen front cached: {len(cache)} utterances, {cache.bytes / 1e9:.2f} GB{room}", flush=True)
        # epoch-level, so the counts reach the logs whatever log_every_n_steps is
        # skipped steps are the same on every rank (taken together); batches and utterances add up
        self.log("skipped_steps_total", float(self.skipped_steps), reduce_fx="max", sync_dist=True)
        totals = {"skipped_batches_total": self.skipped_batches, "skipped_utterances_total": self.skipped_utterances}
        for name, count in totals.items():
            self.log(name, float(count), reduce_fx="sum", sync_dist=True)  # summed over ranks

    def validation_step(self, batch: Batch, batch_idx: int):
        self._skip_unusable(batch)
        if not batch.ids:
            # log on every rank all the same (with no weight): each metric is synced across
            # ranks at the end of validation, and a rank that never logged one would not join
            self.log("val_loss", torch.zeros((), device=self.device), prog_bar=True, batch_size=0, sync_dist=True)
            self.log("val_wer", self.val_wer, prog_bar=True, batch_size=0)
            return
        log_probs, lengths = self.model(batch.waves, batch.wave_lengths)
        loss = ctc_loss(log_probs, lengths, batch.tokens, batch.token_lengths)
        hyps = [self.tokenizer.decode(ids) for ids in greedy_decode(log_probs, lengths)]
        self.val_wer.update(hyps, list(batch.texts))
        B = batch.waves.shape[0]
        self.log("val_loss", loss, prog_bar=True, batch_size=B, sync_dist=True)
        self.log("val_wer", self.val_wer, prog_bar=True, batch_size=B)

    def on_validation_epoch_end(self) -> None:
        if self._trainer is not None and not self._trainer.sanity_checking:
            self.validated_at_step = self.trainer.global_step  # cli.train: are the final weights validated?

    def configure_optimizers(self):
        cfg = self.recipe.optim
        optimizer = build_optimizer(self.model, cfg)
        total = max(int(self.trainer.estimated_stepping_batches), cfg.warmup_steps + 1)
        self.schedule = Schedule(cfg, total)
        self.schedule.time_progress = self.time_progress
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self.schedule.factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        # Every TIME_SYNC_STEPS steps, every rank (all take the same steps) receives rank 0's
        # share of the time budget used: the learning rate must be the same on every rank.
        if self._trainer is None or self.global_step % TIME_SYNC_STEPS:
            return
        used = time_budget_used(self.trainer)
        if used is None:
            return
        self.time_progress = float(self.trainer.strategy.broadcast(used, src=0))
        if self.schedule is not None:
            self.schedule.time_progress = self.time_progress

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["asr"] = checkpoint_meta(self.recipe, self.tokenizer)


def _ids(ids: tuple[str, ...]) -> str:
    shown = ", ".join(ids[:MAX_IDS_SHOWN]) + (" ..." if len(ids) > MAX_IDS_SHOWN else "")
    return f"ids {shown}"
