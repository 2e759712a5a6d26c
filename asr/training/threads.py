"""How many CPU threads a training takes: the cores other processes leave idle.

Two trainings that each run 2 spin-waiting OpenMP threads on 2 shared cores run 7x slower
each, not 2x (``python -m asr.bench.threads``): every parallel region waits for a thread
the other process has descheduled. So before torch starts, :func:`configure` samples how
busy the cores this process may use are (``/proc/stat`` over half a second) and, when
some are taken, runs on the idle ones only, with ``OMP_WAIT_POLICY=PASSIVE`` (threads
sleep instead of spinning while they wait). On a quiet machine nothing changes.

It looks once, at the start: a neighbour that starts later is not seen. An explicit
``OMP_NUM_THREADS`` in the environment always wins.
"""

from __future__ import annotations

import os
import sys
import time

BUSY_SAMPLE_S = 0.5
BUSY_THRESHOLD = 0.5  # cores' worth of other work that counts as a neighbour


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, so ``taskset`` counts)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cpu_times(cores: set[int] | None) -> tuple[float, float]:
    """(busy, total) jiffies summed over ``cores`` (all when None), from /proc/stat."""
    busy = total = 0.0
    with open("/proc/stat") as f:
        for line in f:
            name, *fields = line.split()
            if not name.startswith("cpu") or name == "cpu":
                continue
            if cores is not None and int(name[3:]) not in cores:
                continue
            values = [float(v) for v in fields[:8]]
            idle = values[3] + values[4]  # idle + iowait
            busy += sum(values) - idle
            total += sum(values)
    return busy, total


def busy_cores(seconds: float = BUSY_SAMPLE_S) -> float | None:
    """Cores' worth of work other processes did on our cores over ``seconds`` (None if unknown)."""
    try:
        cores = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        cores = None
    try:
        busy0, total0 = _cpu_times(cores)
        time.sleep(seconds)
        busy1, total1 = _cpu_times(cores)
    except (OSError, ValueError):
        return None
    if total1 <= total0:
        return None
    n = len(cores) if cores is not None else (os.cpu_count() or 1)
    return n * (busy1 - busy0) / (total1 - total0)


def choose_threads(cores: int, busy: float | None) -> tuple[int, bool]:
    """(threads, passive waiting) for ``cores`` usable cores of which ``busy`` are taken."""
    if busy is None or busy < BUSY_THRESHOLD:
        return cores, False
    return max(1, round(cores - busy)), True


def configure(setting: str = "auto") -> str:
    """Set the thread environment before torch is imported; returns a line saying what was chosen.

    ``setting``: "auto" (above; in a process that has loaded torch already, as a caller
    that trains in-process, nothing changes), or a number of threads.
    """
    if "OMP_NUM_THREADS" in os.environ:
        return f"threads: {os.environ['OMP_NUM_THREADS']} (OMP_NUM_THREADS)"
    loaded = "torch" in sys.modules
    if setting == "auto" and loaded:
        import torch

        return f"threads: {torch.get_num_threads()} (torch already loaded: unchanged)"
    cores = usable_cores()
    if setting == "auto":
        busy = busy_cores()
        threads, passive = choose_threads(cores, busy)
        why = f"{cores} cores, {busy:.1f} busy with other work" if busy is not None else f"{cores} cores"
    else:
        threads, passive, why = int(setting), False, "--threads"
    if loaded:
        import torch

        torch.set_num_threads(threads)
    else:
        os.environ["OMP_NUM_THREADS"] = str(threads)  # torch's thread pool reads it when it loads
        if passive:
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read by OpenMP when it loads
    waiting = ", passive waiting" if passive else ""
    return f"threads: {threads}{waiting} ({why})"
