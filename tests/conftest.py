"""Shared fixtures: a tiny espeak-ng corpus in LibriSpeech layout, made once per session."""

from __future__ import annotations

import shutil

import pytest
import torch

from asr.config import CorpusConfig

torch.set_num_threads(2)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: trains a model (tens of seconds)")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run faster on one thread than on two, far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> CorpusConfig:
    """8 training, 2 dev and 2 test sentences, one voice each (about 40 s of speech)."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: run 'bash scripts/setup.sh' (apt-get install espeak-ng)")
    from asr.corpus.synthetic import generate_espeak

    config = CorpusConfig(
        root=str(tmp_path_factory.mktemp("corpus") / "espeak"),
        train_sentences=8,
        dev_sentences=2,
        test_sentences=2,
        train_voices=1,
        seed=3,
        workers=2,
    )
    generate_espeak(config)
    return config
