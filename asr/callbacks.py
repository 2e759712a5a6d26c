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


class TestWER(L.Callback):
    """Greedy WER on a held-out split after each validation (learning curves), logged as
    ``test_wer``; its wall time is excluded from ``minutes``."""

    def __init__(self, entries: list[Entry], clock: WallClock):
        self.entries = entries
        self.clock = clock

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        from asr.audio import read_audio
        from asr.inference import Recognizer
        from asr.wer import word_errors

        started = time.monotonic()
        was_training = pl_module.model.training
        recognizer = Recognizer(pl_module.recipe, pl_module.tokenizer, pl_module.model, str(pl_module.device))
        hyps = recognizer.transcribe_waves([read_audio(e.audio) for e in self.entries])
        pl_module.model.train(was_training)
        pl_module.log("test_wer", word_errors([e.text for e in self.entries], hyps).wer)
        self.clock.start += time.monotonic() - started
