"""The streaming server on 127.0.0.1: concurrent clients get exactly what
``Recognizer.transcribe`` gives on the same audio, while a hostile one beside them gets one
error and is closed; each limit and each bad input triggers its own error; a client that
vanishes leaves no stream behind."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
import json
import shutil
import subprocess
import threading
import time

import pytest

from asr.inference.recognizer import Recognizer
from asr.inference.options import LIVE
from asr.inference.stream import TranscribeOptions
from asr.serving.client import StreamRun, read_pcm, send_messages, stream_pcm
from asr.serving.server import StreamServer
from servers import running_server
from models import tiny_untrained_model

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread
TIMEOUT = 30  # seconds any one client may take: a hang fails instead of blocking the suite
SENTENCES = ["The quick brown fox jumps over the lazy dog.", "Seven red cats sat on a warm stone wall.",
             "A river runs past the hill under the moon."]  # fmt: skip


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    """Untrained, head scaled up: long varied texts, so equal texts mean equal computations."""
    recipe, tokenizer, model = tiny_untrained_model()
    return Recognizer(recipe, tokenizer, model.eval())


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> list:
    """espeak-ng sentences, 22.05 kHz WAV files (so the server resamples them)."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: run 'bash scripts/setup.sh'")
    folder = tmp_path_factory.mktemp("speech")
    paths = []
    for i, text in enumerate(SENTENCES):
        paths.append(folder / f"s{i}.wav")
        subprocess.run(["espeak-ng", "-w", str(paths[-1]), text], check=True)
    return paths


@contextlib.contextmanager
def running(recognizer, **limits):
    """A server on a free loopback port -> (url, server)."""
    with running_server(recognizer, TIMEOUT, **limits) as (port, server):
        yield f"ws://127.0.0.1:{port}", server


async def send_then_read(url: str, *messages, abort: bool = False) -> StreamRun:
    return await send_messages(url, list(messages), abort, TIMEOUT)


def run_all(*coroutines):
    async def gather():
        return await asyncio.wait_for(asyncio.gather(*coroutines), 2 * TIMEOUT)

    return asyncio.run(gather())


def config(rate: int = 16000, **extra) -> dict:
    return {"type": "config", "sample_rate": rate, "format": "s16le", **extra}


def assert_one_error(run: StreamRun, *words: str) -> None:
    """Exactly one error, the last message, naming ``words``; then the server closed."""
    assert [r.message["type"] for r in run.replies][-1:] == ["error"], run.replies
    assert len(run.errors) == 1
    for word in words:
        assert word in run.errors[0]
    assert run.close_code not in (None, 1000)


def settled(server: StreamServer) -> bool:
    """True once no stream is open and no stream thread is left (the handlers finish just
    after the client sees the close)."""
    deadline = time.monotonic() + TIMEOUT
    while server.open_streams or any(t.name == "asr-stream" for t in threading.enumerate()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def expected(recognizer, path):
    result = recognizer.transcribe(path, replace(LIVE, chunk_ms=320, partials="chunk"), trace=False)  # the server's
    return result.text, [{"text": w.text, "start": w.start, "end": w.end} for w in result.words]


def test_concurrent_clients_equal_transcribe_beside_a_hostile_one(recognizer, speech):
    pcms = [read_pcm(p) for p in speech]
    assert pcms[0][1] == 22050
    with running(recognizer, workers=2) as (url, server):
        *good, hostile = run_all(
            *(stream_pcm(url, pcm, rate, realtime=False, packet_ms=170, timeout_s=TIMEOUT) for pcm, rate in pcms),
            send_then_read(url, b"\x93\x01garbage" * 100, config()),
        )
        for path, run in zip(speech, good):
            text, words = expected(recognizer, path)
            assert run.errors == [] and run.close_code == 1000
            assert run.text == text and run.done["words"] == words
            finals = [r.message for r in run.of_type("final")]
            assert " ".join(f["text"] for f in finals if f["text"]) == text
            # audio sent faster than real time reaches the stream in large blocks, whose segment
            # ends are found before their chunks are encoded: the final comes without partials
            assert run.done["duration"] == pytest.approx(sf_duration(path), abs=1e-3)
        assert_one_error(hostile, "expected a JSON config message first")
        assert settled(server)


def sf_duration(path) -> float:
    import soundfile as sf

    return sf.info(str(path)).duration


def test_realtime_client_gets_partials_before_the_end(recognizer, speech):
    pcm, rate = read_pcm(speech[1])
    with running(recognizer) as (url, _):
        (run,) = run_all(stream_pcm(url, pcm, rate, realtime=True, timeout_s=TIMEOUT))
    partials = run.of_type("partial")
    assert run.text == expected(recognizer, speech[1])[0]
    assert partials[0].time < run.start + run.duration - 0.5, "partials arrive while the audio is still coming"
    assert 0 < run.final_latency < 5


BAD_INPUTS = {
    "not JSON": (["{sample_rate: 16000"], "not JSON"),
    "unknown key": ([config(channels=2)], "unknown config key 'channels'"),
    "no rate": ([{"type": "config"}], "sample_rate"),
    "wrong rate": ([config(1000)], "sample_rate must be an integer from 8000"),
    "rate as text": ([config("16000")], "sample_rate"),
    "format": ([config(format="f32le")], "format 'f32le'"),
    "chunk": ([config(chunk_ms=50)], "multiple of the 40 ms frame"),
    "odd bytes": ([config(), b"\x00" * 1001], "1001 bytes", "even"),
    "garbage text": ([config(), b"\x00" * 3200, "\x00\xffgarbage"], "not JSON"),
    "unknown control": ([config(), '{"type": "pause"}'], "expected"),
}


def test_bad_inputs_each_get_one_error_and_a_close(recognizer):
    with running(recognizer) as (url, server):
        runs = run_all(*(send_then_read(url, *messages) for messages, *_ in BAD_INPUTS.values()))
        for (name, (_, *words)), run in zip(BAD_INPUTS.items(), runs):
            assert_one_error(run, *words)
        assert settled(server)


def test_each_limit_triggers_its_error(recognizer):
    second = b"\x10\x00" * 16000
    with running(recognizer, max_stream_s=1.5, idle_timeout_s=0.5, max_message_bytes=40000) as (url, _):
        too_long, idle, too_big, far_too_big = run_all(
            send_then_read(url, config(), second, second),
            send_then_read(url, config(), second),  # then stops sending: mid-stream
            send_then_read(url, config(), b"\x00" * 40002),
            send_then_read(url, config(), b"\x00" * 100000),  # past twice the limit: cut off unread
        )
    assert_one_error(too_long, "longer than 1.5 s", "--max-stream-s")
    assert_one_error(idle, "idle for 0.5 s", "--idle-timeout")
    assert_one_error(too_big, "40002 bytes exceeds 40000", "--max-message-bytes")
    assert far_too_big.replies == [] and far_too_big.close_code == 1009


def test_busy_server_refuses_one_more_stream(recognizer, speech):
    pcm, rate = read_pcm(speech[0])

    async def scenario(url):
        import websockets

        async with websockets.connect(url) as holder:  # holds the only stream
            await holder.send(json.dumps(config()))
            refused = await send_then_read(url, config())
        after = await stream_pcm(url, pcm, rate, realtime=False, timeout_s=TIMEOUT)
        return refused, after

    with running(recognizer, max_streams=1) as (url, _):
        ((refused, after),) = run_all(scenario(url))
    assert_one_error(refused, "server busy", "--max-streams")
    assert after.text == expected(recognizer, speech[0])[0], "a freed stream is served again"


def test_a_client_that_vanishes_leaves_nothing_behind(recognizer, speech):
    pcm, rate = read_pcm(speech[2])
    with running(recognizer, workers=1) as (url, server):
        gone, after = run_all(
            send_then_read(url, config(rate), pcm[: len(pcm) // 2], abort=True),
            stream_pcm(url, pcm, rate, realtime=False, timeout_s=TIMEOUT),
        )
        assert settled(server), "the vanished client's stream was never let go"
    assert gone.errors == []
    assert after.text == expected(recognizer, speech[2])[0]
