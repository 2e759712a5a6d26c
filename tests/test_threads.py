"""Thread choice for training beside other CPU-bound processes (asr.training.threads)."""

import os
import subprocess
import sys
import time

import pytest

from asr.training import threads


def test_quiet_machine_keeps_every_core():
    assert threads.choose_threads(2, 0.1) == (2, False)
    assert threads.choose_threads(4, None) == (4, False)


def test_busy_cores_are_left_to_their_owner():
    assert threads.choose_threads(2, 1.0) == (1, True)
    assert threads.choose_threads(8, 2.6) == (5, True)
    assert threads.choose_threads(2, 2.0) == (1, True)  # never fewer than one


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity (Linux)")
def test_a_spinning_neighbour_is_seen_on_our_core():
    core = min(os.sched_getaffinity(0))
    spin = "import os, time\nos.sched_setaffinity(0, {%d})\nend = time.time() + 6\nwhile time.time() < end: pass\n" % core
    mine = os.sched_getaffinity(0)
    neighbour = subprocess.Popen([sys.executable, "-c", spin])
    try:
        os.sched_setaffinity(0, {core})
        time.sleep(0.5)  # let it start spinning
        busy = threads.busy_cores(1.0)
    finally:
        os.sched_setaffinity(0, mine)
        neighbour.kill()
        neighbour.wait()
    assert busy is not None and busy > 0.7


def test_explicit_environment_wins(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.configure("auto") == "threads: 3 (OMP_NUM_THREADS)"
    assert os.environ["OMP_NUM_THREADS"] == "3"


def test_a_number_sets_the_threads(monkeypatch):
    import torch

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    try:
        line = threads.configure("1")
        assert torch.get_num_threads() == 1 and line == "threads: 1 (--threads)"
        assert threads.configure("auto").endswith("(torch already loaded: unchanged)")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_fresh_process_gets_the_environment_before_torch_loads():
    code = ("import os, sys\nfrom asr.training.threads import configure\nprint(configure('auto'))\n"
            "import torch\nprint(torch.get_num_threads(), os.environ['OMP_NUM_THREADS'])")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    line, counts = out.strip().splitlines()
    assert line.startswith("threads: ")
    torch_threads, env_threads = counts.split()
    assert torch_threads == env_threads == line.split()[1].rstrip(",")


def test_train_py_chooses_its_threads_before_torch_loads():
    """Checking a recipe imports Lightning (and torch): the choice must come first, or it is void."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    done = subprocess.run([sys.executable, "train.py", "--config", "recipes/demo/demo.yaml", "model.nonesuch=1"],
                          capture_output=True, text=True, env=env)  # fmt: skip
    assert done.returncode == 2 and "model.nonesuch" in done.stderr
    assert done.stdout.startswith("threads: ") and "already loaded" not in done.stdout
