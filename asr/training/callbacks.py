"""Lightning callbacks used by train.py."""

from __future__ import annotations

import time

import lightning as L

from asr.data.manifest import Entry


class WallClock(L.Callback):
    """Logs ``minutes`` (wall-clock since fit start) at every validation, for curves."""

    def __init__(self):
        self.start = time.monotonic()

    def on_fit_start(self, trainer, pl_module):
        self.start = time.monotonic()

    def on_validation_epoch_end(self, trainer, pl_module):
        pl_module.log("minutes", (time.monotonic() - self.start) / 60)


class Progress(L.Callback):
    """One line a person can follow, every ``every_seconds`` and after each validation:
    epoch, step, loss, learning rate, dev WER, elapsed and remaining minutes. Rank 0 only.

    Remaining is the sooner of the time budget's end (``trainer.max_time``) and the step
    count's end at the speed measured so far.
    """

    def __init__(self, name: str, every_seconds: float = 60.0):
        self.name = name
        self.every = every_seconds
        self.start = self.last = time.monotonic()
        self.first_step = 0

    def on_train_start(self, trainer, pl_module):
        self.start = self.last = time.monotonic()
        self.first_step = trainer.global_step

    def remaining_minutes(self, trainer) -> float:
        from asr.training.module import time_budget_used

        elapsed = time.monotonic() - self.start
        done = trainer.global_step - self.first_step
        total = trainer.estimated_stepping_batches
        by_steps = elapsed / done * (total - trainer.global_step) if done > 0 and total != float("inf") else float("inf")
        used = time_budget_used(trainer)
        by_time = elapsed / used * (1 - used) if used else float("inf")
        return min(by_steps, by_time) / 60

    def line(self, trainer, extra: str = "") -> str:
        metrics = trainer.callback_metrics
        loss = metrics.get("train_loss")
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")
        parts = [f"[{self.name}] epoch {trainer.current_epoch} step {trainer.global_step}"]
        if loss is not None:
            parts.append(f"loss {float(loss):.3f}")
        parts.append(f"lr {lr:.2e}")
        if extra:
            parts.append(extra)
        remaining = self.remaining_minutes(trainer)
        clock = f"elapsed {(time.monotonic() - self.start) / 60:.1f} min"
        clock += f", remaining {remaining:.1f} min" if remaining != float("inf") else ""
        return " | ".join([", ".join(parts), clock])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        now = time.monotonic()
        if trainer.is_global_zero and now - self.last >= self.every:
            self.last = now
            print(self.line(trainer), flush=True)

    def on_validation_end(self, trainer, pl_module):  # after the epoch's metrics are final
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        wer = trainer.callback_metrics.get("val_wer")
        extra = f"dev WER {100 * float(wer):.2f}%" if wer is not None else ""
        print(self.line(trainer, extra), flush=True)
        self.last = time.monotonic()


class TestWER(L.Callback):
    """Greedy WER on held-out test sets after each validation (learning curves), logged as
    ``test_wer`` for the first set and ``test_wer_<name>`` for each; its wall time is
    excluded from ``minutes``. Audio is read once, at the first validation."""

    def __init__(self, sets: dict[str, list[Entry]], clock: WallClock):
        self.sets = sets
        self.clock = clock
        self._waves: dict[str, list] = {}

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        from asr.audio.read import read_audio
        from asr.inference.recognizer import Recognizer
        from asr.text.wer import word_errors

        started = time.monotonic()
        was_training = pl_module.model.training
        recognizer = Recognizer(pl_module.recipe, pl_module.tokenizer, pl_module.model, str(pl_module.device))
        rate = pl_module.recipe.features.sample_rate
        for index, (name, entries) in enumerate(self.sets.items()):
            if name not in self._waves:
                self._waves[name] = [read_audio(e.audio, rate) for e in entries]
            waves = self._waves[name]
            wer = word_errors([e.text for e in entries], recognizer.transcribe_waves(waves)).wer
            pl_module.log(f"test_wer_{name}", wer)
            if index == 0:
                pl_module.log("test_wer", wer)
        pl_module.model.train(was_training)
        self.clock.start += time.monotonic() - started
