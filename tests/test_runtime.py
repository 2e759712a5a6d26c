"""The torch-free runtime (asr/runtime): its numpy log-mel equals the torch front end within
1e-4, its resampling equals torchaudio's, and over an exported model it gives the torch
path's greedy transcripts, in a process where torch cannot be imported at all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

pytest.importorskip("onnxscript", reason="ONNX export needs requirements-onnx.txt")
pytest.importorskip("onnxruntime", reason="ONNX inference needs requirements-onnx.txt")

from asr.audio.read import read_audio as torch_read_audio  # noqa: E402
from asr.config import FeatureConfig  # noqa: E402
from asr.decoding import greedy_decode  # noqa: E402
from asr.export.onnx import export_onnx  # noqa: E402
from asr.model.features import LogMel as TorchLogMel  # noqa: E402
from asr.runtime.audio import read_audio, resample  # noqa: E402
from asr.runtime.features import LogMel  # noqa: E402
from asr.runtime.model import OnnxModel  # noqa: E402
from models import tiny_untrained_model  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread
ROOT = Path(__file__).resolve().parents[1]
SENTENCES = ["The quick brown fox jumps over the lazy dog.", "Seven red boats sailed home at dawn."]


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> list[Path]:
    """espeak-ng sentences at 22.05 kHz (both paths resample them) and one as 44.1 kHz stereo FLAC."""
    folder = tmp_path_factory.mktemp("speech")
    paths = []
    for i, text in enumerate(SENTENCES):
        paths.append(folder / f"say{i}.wav")
        subprocess.run(["espeak-ng", "-w", str(paths[-1]), text], check=True)
    samples, rate = sf.read(paths[0], dtype="float32")
    at_44k = AF.resample(torch.from_numpy(samples), rate, 44100).numpy()
    paths.append(folder / "stereo.flac")
    sf.write(paths[-1], np.stack([at_44k, 0.5 * at_44k], axis=1), 44100)
    return paths


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """tests/models.py's tiny model (head scaled up: long varied texts, so equal texts mean
    equal computations) and its exported directory."""
    recipe, tokenizer, model = tiny_untrained_model()
    folder = export_onnx(recipe, tokenizer, model.eval(), tmp_path_factory.mktemp("export") / "onnx")
    return recipe, tokenizer, model, folder


def torch_log_mel(wave: np.ndarray, config: FeatureConfig, dtype=torch.float32) -> np.ndarray:
    front = TorchLogMel(config).to(dtype)
    with torch.no_grad():
        return front(torch.from_numpy(wave).to(dtype)[None], torch.tensor([len(wave)]))[0][0].numpy()


@pytest.mark.parametrize("mel", ["htk", "slaney"])
def test_log_mel_equals_torch(speech, mel):
    """Within 1e-4 of torch's exact (float64) features on clean speech, and of its float32
    ones, what models see, once there is a noise floor. (On espeak-ng's digital silence
    torch's float32 rounding alone moves features by 2e-4.)"""
    config = FeatureConfig(mel=mel)
    front = LogMel(config.sample_rate, config.n_fft, config.hop_length, config.n_mels, mel)
    clean = torch_read_audio(speech[0]).numpy()
    assert np.abs(front(clean) - torch_log_mel(clean, config, torch.float64)).max() < 1e-4
    noisy = clean + np.random.default_rng(0).normal(0, 1e-3, clean.size).astype(np.float32)  # -60 dB
    ours = front(noisy)
    assert ours.dtype == np.float32 and ours.shape == ((len(noisy) - 400) // 160 + 1, config.n_mels)
    assert np.abs(ours - torch_log_mel(noisy, config)).max() < 1e-4
    for short in (noisy[:399], noisy[:400], noisy[:561]):  # under one window: one padded frame, as torch
        assert np.abs(front(short) - torch_log_mel(short, config)).max() < 1e-4
    assert front.num_frames(399) == 0 and front.num_frames(561) == 2 and front.num_frames(720) == 3


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resampling_equals_torchaudio(rate):
    wave = np.random.default_rng(rate).normal(0, 0.3, rate // 3 + 7).astype(np.float32)
    ours = resample(wave, rate, 16000)
    theirs = AF.resample(torch.from_numpy(wave), rate, 16000).numpy()
    assert ours.shape == theirs.shape and np.abs(ours - theirs).max() < 1e-6


def test_files_read_as_the_torch_path_reads_them(speech):
    for path in speech:
        assert np.abs(read_audio(path) - torch_read_audio(path).numpy()).max() < 1e-6


def test_log_probs_equal_torch(exported, speech):
    recipe, tokenizer, model, folder = exported
    runtime = OnnxModel(folder)
    for path in speech:
        wave = torch_read_audio(path)
        with torch.no_grad():
            want, lengths = model(wave[None], torch.tensor([wave.numel()]))  # (1, T', V)
        got = runtime.log_probs(read_audio(path))
        assert got.shape == tuple(want[0, : lengths[0]].shape)
        assert np.abs(got - want[0, : lengths[0]].numpy()).max() < 1e-3


def test_transcripts_equal_torch_without_torch(exported, speech, tmp_path):
    """``python -m asr.runtime`` in a process where importing torch fails outright: the
    torch path's greedy transcripts, one error line for a bad file, torch never loaded."""
    recipe, tokenizer, model, folder = exported
    expected = []
    for path in speech:
        wave = torch_read_audio(path)
        with torch.no_grad():
            log_probs, lengths = model(wave[None], torch.tensor([wave.numel()]))
        expected.append(f"{path.stem}\t{tokenizer.decode(greedy_decode(log_probs, lengths)[0])}")
    assert len(set(expected)) == len(expected)
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really")
    code = (
        "import sys\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] in ('torch', 'torchaudio', 'lightning'):\n"
        "            raise ImportError(f'{name} is not allowed here')\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "from asr.runtime.transcribe import main\n"
        f"status = main({[str(folder), *map(str, speech), str(tmp_path / 'broken.wav')]!r})\n"
        "print('status', status, 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    lines = done.stdout.splitlines()
    assert lines[-1] == "status 1 False", done.stderr
    assert lines[:-1] == expected
    assert done.stderr.startswith("error: ") and "broken.wav: not readable audio" in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_not_a_model_directory_is_one_error_line(tmp_path, speech):
    done = subprocess.run(
        [sys.executable, "-m", "asr.runtime", str(tmp_path), str(speech[0])],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    hint = "an exported ONNX model directory: python -m asr.cli.export"
    assert done.stderr == f"error: {tmp_path / 'model.json'}: not found ({hint})\n"
