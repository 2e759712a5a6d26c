"""The page the server shows at ``http://HOST:PORT/``, in Debian's headless chromium: its fake
microphone speaks words a tiny model was trained on here (about 15 s on two cores), and the
page shows them live and as final text with word times; a dropped file is sent sample-exact
(its transcript equals the Python client's); bad input from a page gets the server's
one-line error on that page only, and a tab closed mid-stream leaves no stream behind.

``ASR_PAGE_SCREENSHOT=docs/page.png`` saves the page after the microphone test."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import os
import random
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.audio.read import to_mono_16k
from asr.inference.recognizer import Recognizer
from asr.serving.client import stream_pcm
from asr.text.tokenizer import Tokenizer
from browser import Chromium
from servers import running_server
from models import small_chunk_trained

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread
RATE = 16000
WORDS = ("RED", "GREEN", "BLUE", "YELLOW")
SPOKEN = "GREEN RED YELLOW BLUE"  # what the fake microphone says
DROPPED = "BLUE YELLOW RED"  # what the dropped file says

TIMEOUT = 30  # seconds any one wait may take on a slow machine


def spoken_words() -> dict[str, np.ndarray]:
    """Each word from espeak-ng at 16 kHz, cut to where it is audible."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: run 'bash scripts/setup.sh'")
    words = {}
    for word in WORDS:
        done = subprocess.run(["espeak-ng", "--stdout", "-s", "150", word], check=True, capture_output=True)
        wave = to_mono_16k(*sf.read(io.BytesIO(done.stdout), dtype="float32")).numpy()
        loud = np.flatnonzero(np.abs(wave) > 0.05 * np.abs(wave).max())
        words[word] = wave[loud[0] : loud[-1] + 1]
    return words


def say(words: dict, text: str, rng: random.Random, lead_s: float, tail_s: float = 1.0) -> np.ndarray:
    """The words of ``text`` with pauses of 0.2-0.45 s, a little noise, at a random loudness."""
    parts = [np.zeros(int(lead_s * RATE), np.float32)]
    for word in text.split():
        parts += [words[word], np.zeros(int(rng.uniform(0.2, 0.45) * RATE), np.float32)]
    parts.append(np.zeros(int(tail_s * RATE), np.float32))
    wave = np.concatenate(parts) * rng.uniform(0.3, 1.0)
    return (wave + np.random.default_rng(rng.randrange(1 << 30)).normal(0, 2e-3, wave.size)).astype(np.float32)


def word_tokenizer() -> Tokenizer:
    """One piece per word (sentencepiece's word model): four classes to learn, not spellings."""
    import sentencepiece as spm

    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(WORDS), model_writer=proto, model_type="word", vocab_size=len(WORDS) + 1,
        unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1, minloglevel=2,
    )  # fmt: skip
    return Tokenizer(proto.getvalue())


@pytest.fixture(scope="module")
def trained() -> tuple[Recognizer, dict]:
    """A 2-layer model that has learned four words (200 steps on sequences of them), trained
    with chunked attention so its streaming output holds up."""
    rng = random.Random(0)
    words = spoken_words()
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4))) for _ in range(80)]
    train = [(torch.from_numpy(say(words, t, rng, rng.uniform(0.1, 0.5), 0.2)), t) for t in texts]
    tokenizer = word_tokenizer()
    recipe, model = small_chunk_trained(tokenizer, train, 200, rng)
    return Recognizer(recipe, tokenizer, model), words


@contextlib.contextmanager
def running(recognizer, **limits):
    """A server on a free loopback port -> (page URL, server)."""
    with running_server(recognizer, TIMEOUT, **limits) as (port, server):
        yield f"http://127.0.0.1:{port}/", server


@pytest.fixture(scope="module")
def server(trained):
    with running(trained[0]) as served:
        yield served


@pytest.fixture(scope="module")
def chromium(trained, tmp_path_factory):
    """Headless chromium whose microphone says SPOKEN once, after 1.5 s of silence (the page
    may open the device a moment before its worklet listens)."""
    folder = tmp_path_factory.mktemp("chromium")
    wav = folder / "microphone.wav"
    sf.write(wav, say(trained[1], SPOKEN, random.Random(1), lead_s=1.5, tail_s=1.5), RATE, subtype="PCM_16")
    browser = Chromium(folder, wav)
    yield browser
    browser.close()


def drop(page, wav: Path) -> None:
    """Drop ``wav`` on the page's drop zone (a DragEvent carrying the file, as a drag from a
    file manager delivers it)."""
    data = base64.b64encode(wav.read_bytes()).decode()
    page.evaluate(
        f"""(() => {{
            const bytes = Uint8Array.from(atob("{data}"), (c) => c.charCodeAt(0));
            const files = new DataTransfer();
            files.items.add(new File([bytes], "{wav.name}", {{ type: "audio/wav" }}));
            const zone = document.getElementById("drop");
            zone.dispatchEvent(new DragEvent("dragover", {{ dataTransfer: files, cancelable: true }}));
            zone.dispatchEvent(new DragEvent("drop", {{ dataTransfer: files, cancelable: true }}));
        }})()"""
    )


def shown_words(page) -> list[list]:
    """The final segments' words as the page shows them: [text, "start-end"] each."""
    return page.evaluate(
        "[...document.querySelectorAll('#finals .word')].map((w) => [w.firstChild.textContent, "
        "w.querySelector('small').textContent])"
    )


def test_serves_the_page_and_nothing_else(server):
    url, _ = server
    with urllib.request.urlopen(url, timeout=TIMEOUT) as reply:
        page = reply.read().decode()
        assert reply.headers["Content-Type"].startswith("text/html")
    assert 'src="page.js"' in page and "://" not in page  # nothing from elsewhere
    with urllib.request.urlopen(url + "capture.js", timeout=TIMEOUT) as reply:
        assert reply.headers["Content-Type"].startswith("text/javascript")
        assert 'registerProcessor("pcm16k"' in reply.read().decode()
    with pytest.raises(urllib.error.HTTPError, match="404"):
        urllib.request.urlopen(url + "../pyproject.toml", timeout=TIMEOUT)


def test_microphone_words_appear_live_then_final(server, chromium):
    url, _ = server
    page = chromium.open(url)
    assert page.wait_for("document.getElementById('model').textContent.includes('torch')", TIMEOUT)
    assert "2 layers of 64" in page.text("model")
    page.evaluate("document.getElementById('mic').click()")
    page.wait_for("document.getElementById('status').textContent.startsWith('listening')", TIMEOUT)
    # live: the first word shows before the stream ends (a partial, or its segment's final)
    first = SPOKEN.split()[0]
    page.wait_for(f"document.querySelector('main').innerText.includes('{first}')", TIMEOUT)
    # every word said, once the microphone falls silent
    page.wait_for(
        f"[...document.querySelectorAll('#finals .word')].map((w) => w.firstChild.textContent).join(' ')"
        f" === '{SPOKEN}'",
        TIMEOUT,
    )
    page.evaluate("document.getElementById('mic').click()")
    assert page.wait_for("document.getElementById('transcript').textContent", TIMEOUT) == SPOKEN
    times = [[float(t) for t in span.split("-")] for _, span in shown_words(page)]
    assert all(0 < start < end for start, end in times) and times == sorted(times)
    assert page.text("latency").startswith("latency: ") and "microphone:" in page.text("status")
    if os.environ.get("ASR_PAGE_SCREENSHOT"):
        page.screenshot(Path(os.environ["ASR_PAGE_SCREENSHOT"]))
    page.close()


def test_dropped_file_is_sent_sample_exact(trained, server, chromium, tmp_path):
    """The page decodes the file at 16 kHz itself; a 16 kHz 16-bit file arrives unchanged,
    so the page shows what the Python client gets for the same samples."""
    url, _ = server
    wav = tmp_path / "dropped.wav"
    sf.write(wav, say(trained[1], DROPPED, random.Random(2), lead_s=0.3), RATE, subtype="PCM_16")
    pcm = sf.read(wav, dtype="int16")[0].tobytes()
    expected = asyncio.run(stream_pcm(url.replace("http", "ws"), pcm, RATE, realtime=False, timeout_s=TIMEOUT))
    assert expected.text == DROPPED
    page = chromium.open(url)
    drop(page, wav)
    assert page.wait_for("document.getElementById('transcript').textContent", TIMEOUT) == DROPPED
    assert shown_words(page) == [[w["text"], f"{w['start']:.2f}-{w['end']:.2f}"] for w in expected.done["words"]]
    assert page.text("status").startswith("dropped.wav: ")
    page.close()


def test_bad_input_gets_one_error_on_that_page_only(trained, server, chromium, tmp_path):
    """A stream over the server's limit shows the server's line on its page; a config at a
    rate no one records at gets its error while another page's file goes through; a tab closed
    mid-stream leaves no stream behind."""
    recognizer, words = trained
    wav = tmp_path / "long.wav"
    sf.write(wav, say(words, DROPPED, random.Random(3), lead_s=0.5), RATE, subtype="PCM_16")
    with running(recognizer, max_stream_s=1.0) as (url, _):
        page = chromium.open(url)
        drop(page, wav)
        status = page.wait_for(
            "document.getElementById('status').classList.contains('error') && "
            "document.getElementById('status').textContent", TIMEOUT
        )  # fmt: skip
        assert status == "error: stream longer than 1 s of audio (limit --max-stream-s)"
        page.close()

    url, server_ = server
    good, bad = chromium.open(url), chromium.open(url)
    drop(good, wav)
    reply = bad.evaluate(
        """new Promise((resolve) => {
            const ws = new WebSocket(`ws://${location.host}/`);
            ws.onopen = () => ws.send(JSON.stringify({type: "config", sample_rate: 4000, format: "s16le"}));
            ws.onmessage = (event) => resolve(event.data);
        })"""
    )
    assert reply == '{"type": "error", "error": "sample_rate must be an integer from 8000 to 48000 Hz, not 4000"}'
    assert good.wait_for("document.getElementById('transcript').textContent", TIMEOUT) == DROPPED
    good.close()

    bad.evaluate("document.getElementById('mic').click()")
    bad.wait_for("document.getElementById('status').textContent.startsWith('listening')", TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while server_.open_streams != 1:  # the microphone's (the dropped file's has ended)
        assert time.monotonic() < deadline, f"{server_.open_streams} streams open, not 1"
        time.sleep(0.05)
    bad.close()  # mid-stream: the microphone is still talking
    deadline = time.monotonic() + TIMEOUT
    while server_.open_streams or any(t.name == "asr-stream" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "a closed tab's stream was left open"
        time.sleep(0.05)
