"""What the soak (:mod:`asr.bench.fuzz`) shares: outcomes, the tally, the per-input time
limit, and the tiny model every checkpoint and transcription case starts from.

An input's outcome is one of :data:`OUTCOMES`: ``ok`` (accepted and right), ``refused``
(the project's own one-line error), ``crash`` (any other exception), ``hang`` (over the
time limit) or ``lost`` (a good input refused, or accepted with the wrong result).
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

OK, REFUSED, CRASH, HANG, LOST = "ok", "refused", "crash", "hang", "lost"
OUTCOMES = (OK, REFUSED, CRASH, HANG, LOST)
FAILURES = (CRASH, HANG, LOST)
DETAILS_KEPT = 20  # failures described in the report


class Hang(Exception):
    """Raised by the alarm when one input runs past its time limit."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Interrupt the block with :class:`Hang` after ``seconds`` (main thread only; code
    inside one long C call is interrupted when it returns, and timed afterwards)."""

    def ring(signum, frame):
        raise Hang(f"over {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Tally:
    """Counts by (kind, reader, outcome), and the first failures described."""

    timeout: float
    counts: Counter = field(default_factory=Counter)
    details: list[str] = field(default_factory=list)

    def run(self, kind: str, reader: str, check: Callable[[], str], what: str, weight: float = 1.0) -> str:
        """Run ``check`` (-> ok / refused / lost) under the time limit (``weight`` inputs'
        worth) and count its outcome; any other exception is a crash."""
        limit = self.timeout * weight
        start = time.monotonic()
        detail = ""
        try:
            with time_limit(limit):
                outcome = check()
        except Hang as err:
            outcome, detail = HANG, str(err)
        except (Exception, SystemExit) as err:  # noqa: BLE001 - that is what a crash is
            outcome, detail = CRASH, f"{type(err).__name__}: {str(err)[:300]}"
        if outcome != HANG and time.monotonic() - start > limit:
            outcome, detail = HANG, f"took {time.monotonic() - start:.1f} s"
        if outcome == LOST and not detail:
            detail = "good input not accepted or wrong result"
        self.add(kind, reader, outcome, f"{what}: {detail}" if detail else what)
        return outcome

    def add(self, kind: str, reader: str, outcome: str, what: str = "", count: int = 1) -> None:
        self.counts[(kind, reader, outcome)] += count
        if outcome in FAILURES and len(self.details) < DETAILS_KEPT:
            self.details.append(f"{outcome}: {kind} / {reader}: {what}")

    @property
    def failures(self) -> int:
        return sum(n for (_, _, outcome), n in self.counts.items() if outcome in FAILURES)

    def table(self) -> str:
        """One row per (kind, reader): counts per outcome, then the totals."""
        rows = sorted({(kind, reader) for kind, reader, _ in self.counts})
        lines = [f"{'kind':<14} {'reader':<12} " + " ".join(f"{o:>8}" for o in OUTCOMES) + f" {'total':>8}"]
        for kind, reader in rows:
            cells = [self.counts[(kind, reader, o)] for o in OUTCOMES]
            lines.append(f"{kind:<14} {reader:<12} " + " ".join(f"{c:>8}" for c in cells) + f" {sum(cells):>8}")
        totals = [sum(n for (_, _, o), n in self.counts.items() if o == outcome) for outcome in OUTCOMES]
        lines.append(f"{'all':<14} {'':<12} " + " ".join(f"{c:>8}" for c in totals) + f" {sum(totals):>8}")
        return "\n".join(lines)


def write_tiny_model(path: Path, seed: int = 0) -> Path:
    """An untrained 1-layer character model in the exported format (what it says does not
    matter; its size does: loading and transcribing it take milliseconds)."""
    import torch

    from asr.config import recipe_from_dict
    from asr.inference.checkpoint import checkpoint_meta
    from asr.model import CTCModel
    from asr.text.tokenizer import Tokenizer

    torch.manual_seed(seed)
    recipe = recipe_from_dict({"tokenizer": {"kind": "char"}, "model": {"d_model": 16, "n_heads": 2, "n_layers": 1,
                               "ff_dim": 32, "subsampling_channels": 4}})  # fmt: skip
    tokenizer = Tokenizer.train([" ".join(WORDS)], 64, "char")
    model = CTCModel(recipe.model, recipe.features, recipe.specaug, tokenizer.vocab_size)
    torch.save({**checkpoint_meta(recipe, tokenizer), "state_dict": model.state_dict()}, path)
    return path


WORDS = ["RED", "BLUE", "CAT", "DOG", "SUN", "MOON", "TREE", "STONE", "RIVER", "HILL"]
