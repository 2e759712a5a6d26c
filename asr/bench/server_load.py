"""Load test of the streaming server on loopback: how many real-time streams, how fast, how robust.

    python -m asr.bench.server_load --model exp/demo/model.pt --list exp/demo/test.list
    bash bench/server_load.sh exp/demo/model.pt exp/demo/test.list   # on cores 0,1

Starts ``python -m asr.cli.serve`` on 127.0.0.1 (a free port; ``--workers`` compute threads),
then, in this process, runs N clients that each stream about ``--stream-s`` seconds of the
listed files (joined with short pauses) at real-time speed in ``--packet-ms`` packets, their
starts spread over one second. N grows along ``--ladder`` until the 95th percentile of the
final-result latency (end of the audio -> the closing result) reaches ``--target-s`` or a
stream fails; the last N that held is the figure. Then, at half that load: partial-result
latency (audio spoken -> its partial), and the same clients once more beside hostile ones
(garbage bytes, garbage text, an odd byte count, a wrong sample rate, one that stops
mid-stream, one over the stream-length limit, one over the message limit, one that
vanishes): each hostile one must get exactly one error and be closed (the one that vanishes:
none), and every other client's transcript must equal its transcript in the quiet run.
``--max-batch`` / ``--batch-window-ms`` set the server's cross-stream batching
(:mod:`asr.serving.batching`; ``--max-batch 1``: each stream encoded alone), to compare the two.
Memory per stream: the server's peak RSS during the largest passing trial, less its RSS
after warm-up, over N. The clients run on the same cores as the server (their CPU counts
against the figure). Exits 1 when a hostile check fails; stops by itself within ``--budget-s``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RATE = 16000
LADDER = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
# server limits during the test: small enough for the hostile clients to reach quickly
IDLE_S, MAX_STREAM_S, MAX_MESSAGE = 3.0, 30.0, 1 << 20


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="what asr.load_model reads")
    parser.add_argument("--list", type=Path, required=True, help="audio files, one per line (last field)")
    parser.add_argument("--workers", type=int, default=2, help="server compute threads (default: %(default)s)")
    parser.add_argument("--stream-s", type=float, default=8.0, help="audio per client (default: %(default)s)")
    parser.add_argument("--packet-ms", type=int, default=100, help="audio per message (default: %(default)s)")
    parser.add_argument("--target-s", type=float, default=1.0, help="p95 final latency to hold (default: %(default)s)")
    parser.add_argument("--ladder", default=",".join(map(str, LADDER)), help="stream counts to try, ascending")
    parser.add_argument("--budget-s", type=float, default=200.0, help="stop climbing past this (default: %(default)s)")
    parser.add_argument("--max-batch", type=int, help="the server's --max-batch (1 = unbatched; default: the server's)")
    parser.add_argument("--batch-window-ms", type=float, help="the server's --batch-window-ms (default: the server's)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    return parser.parse_args(argv)


@dataclass
class Trial:
    streams: int
    runs: list = field(default_factory=list)  # StreamRun or an exception, one per client
    extra: list = field(default_factory=list)  # what the extra coroutines returned
    peak_rss_mb: float = 0.0
    server_cpu_s: float = 0.0  # CPU seconds the server used during the trial
    client_cpu_s: float = 0.0  # and this process (the clients)
    audio_s: float = 0.0  # seconds of audio the good clients streamed

    @property
    def failures(self) -> int:
        return sum(1 for r in self.runs if isinstance(r, BaseException) or r.errors or r.done is None)

    def finals(self) -> np.ndarray:
        return np.array([r.final_latency for r in self.runs if not isinstance(r, BaseException) and r.done])

    def partials(self) -> np.ndarray:
        return np.array([x for r in self.runs if not isinstance(r, BaseException) for x in r.partial_latencies()])

    def p(self, values: np.ndarray, q: float) -> float:
        return float(np.percentile(values, q)) if values.size else float("inf")

    def holds(self, target: float) -> bool:
        return self.failures == 0 and self.p(self.finals(), 95) < target

    def line(self) -> str:
        f, p = self.finals(), self.partials()
        return (
            f"{self.streams:4d} streams  final p50 {self.p(f, 50):.3f} p95 {self.p(f, 95):.3f} s  "
            f"partial p50 {self.p(p, 50):.3f} p95 {self.p(p, 95):.3f} s  failures {self.failures}  "
            f"server RSS {self.peak_rss_mb:.0f} MB  CPU s per audio s: server {self.server_cpu_s / self.audio_s:.3f} "
            f"clients {self.client_cpu_s / self.audio_s:.3f}"
        )


def client_audio(list_path: Path, seconds: float, count: int = 16) -> list[bytes]:
    """``count`` streams of at least ``seconds`` of 16 kHz PCM, files joined by 0.4 s of silence."""
    from asr.audio.read import read_audio

    paths = [Path(line.split()[-1]) for line in list_path.read_text().splitlines() if line.strip()]
    gap = np.zeros(int(0.4 * RATE), dtype=np.float32)
    streams, k = [], 0
    for _ in range(count):
        parts, total = [], 0
        while total < seconds * RATE:
            wave = read_audio(paths[k % len(paths)]).numpy()
            parts += [wave, gap]
            total += wave.size + gap.size
            k += 1
        pcm = np.clip(np.concatenate(parts[:-1]) * 32768, -32768, 32767).astype("<i2")
        streams.append(pcm.tobytes())
    return streams


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(args) -> tuple[subprocess.Popen, str]:
    """``asr.cli.serve`` on a free loopback port -> (process, url), once it listens."""
    command = [sys.executable, "-m", "asr.cli.serve", "--model", str(args.model), "--port", "0",
               "--workers", str(args.workers), "--max-streams", "10000", "--idle-timeout", str(IDLE_S),
               "--max-stream-s", str(MAX_STREAM_S), "--max-message-bytes", str(MAX_MESSAGE)]  # fmt: skip
    for flag, value in (("--max-batch", args.max_batch), ("--batch-window-ms", args.batch_window_ms)):
        if value is not None:
            command += [flag, str(value)]
    errors = tempfile.TemporaryFile()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
    watchdog = threading.Timer(180, proc.kill)  # a server that never listens is killed
    watchdog.start()
    line = proc.stdout.readline()
    watchdog.cancel()
    if not line.startswith("listening on "):
        errors.seek(0)
        raise SystemExit(f"error: the server did not start: {errors.read().decode()[-2000:]}")
    return proc, line.split()[-1]


async def watch_rss(pid: int, trial: Trial, stop: asyncio.Event) -> None:
    while not stop.is_set():
        trial.peak_rss_mb = max(trial.peak_rss_mb, rss_mb(pid))
        await asyncio.sleep(0.2)


async def run_trial(url: str, audio: list[bytes], n: int, args, pid: int, extra=()) -> Trial:
    """``n`` real-time clients (client i streams ``audio[i % len(audio)]``), starts spread
    over a second; ``extra`` coroutines run beside them (their results are not in the trial)."""
    from asr.serving.client import stream_pcm

    async def client(i: int):
        await asyncio.sleep(i / n)
        return await stream_pcm(url, audio[i % len(audio)], RATE, True, args.packet_ms, timeout_s=120)

    trial, stop = Trial(n), asyncio.Event()
    watcher = asyncio.create_task(watch_rss(pid, trial, stop))
    server_cpu, client_cpu = cpu_s(pid), time.process_time()
    results = await asyncio.gather(*(client(i) for i in range(n)), *extra, return_exceptions=True)
    trial.server_cpu_s, trial.client_cpu_s = cpu_s(pid) - server_cpu, time.process_time() - client_cpu
    trial.audio_s = sum(len(audio[i % len(audio)]) / 2 / RATE for i in range(n))
    stop.set()
    await watcher
    trial.runs = results[:n]
    trial.extra = results[n:]
    return trial


def hostile_clients(url: str, audio: bytes) -> dict:
    """name -> (coroutine, whether it must get an error); they start 2 s into the good streams."""
    from asr.serving.client import send_messages

    config = {"type": "config", "sample_rate": RATE, "format": "s16le"}
    second = audio[: 2 * RATE]
    long_audio = [second] * int(MAX_STREAM_S + 2)

    async def later(messages, abort=False):
        await asyncio.sleep(2.0)
        return await send_messages(url, messages, abort, timeout_s=60)

    return {
        "garbage bytes": (later([os.urandom(8192)]), True),
        "garbage text mid-stream": (later([config, second, "\x00\xff{not json"]), True),
        "odd byte count": (later([config, second, b"\x01" * 3201]), True),
        "wrong sample rate": (later([dict(config, sample_rate=1000)]), True),
        "stops mid-stream": (later([config, second]), True),
        "over --max-stream-s": (later([config, *long_audio]), True),
        "over --max-message-bytes": (later([config, b"\x00" * (MAX_MESSAGE + 2)]), True),
        "vanishes mid-stream": (later([config, second], abort=True), False),
    }


def hostile_verdict(run, wants_error: bool) -> tuple[bool, str]:
    if isinstance(run, BaseException):
        return False, f"client failed: {type(run).__name__}: {run}"
    if not wants_error:
        return not run.errors, f"{len(run.errors)} errors (it left: nothing to deliver)"
    last_is_error = bool(run.replies) and run.replies[-1].message["type"] == "error"
    ok = last_is_error and len(run.errors) == 1 and run.close_code not in (None, 1000)
    return ok, f"{len(run.errors)} error, close {run.close_code}: {run.errors[0] if run.errors else '-'}"


async def measure(url: str, audio: list[bytes], args, pid: int) -> dict:
    from asr.serving.client import stream_pcm

    started = time.monotonic()
    await stream_pcm(url, audio[0], RATE, realtime=False, timeout_s=120)  # warm-up
    idle_rss = rss_mb(pid)
    passed: Trial | None = None
    lines = []
    for n in [int(x) for x in args.ladder.split(",")]:
        trial = await run_trial(url, audio, n, args, pid)
        lines.append(trial.line())
        print(lines[-1], flush=True)
        if not trial.holds(args.target_s):
            break
        passed = trial
        if time.monotonic() - started + 2 * (args.stream_s + 3) > args.budget_s:
            print(f"(stopped climbing: --budget-s {args.budget_s:g})")
            break
    if passed is None:
        raise SystemExit(f"error: not even one stream held p95 final latency under {args.target_s} s")
    half = max(passed.streams // 2, 1)
    quiet = await run_trial(url, audio, half, args, pid)
    hostile = hostile_clients(url, audio[0])
    loud = await run_trial(url, audio, half, args, pid, [c for c, _ in hostile.values()])
    verdicts = {name: hostile_verdict(run, wants) for (name, (_, wants)), run in zip(hostile.items(), loud.extra)}
    same = [
        not isinstance(a, BaseException) and not isinstance(b, BaseException) and a.text == b.text
        for a, b in zip(quiet.runs, loud.runs)
    ]
    return {
        "max_streams": passed.streams,
        "final_p95_s": passed.p(passed.finals(), 95),
        "server_cpu_per_audio_s": passed.server_cpu_s / passed.audio_s,
        "client_cpu_per_audio_s": passed.client_cpu_s / passed.audio_s,
        "trials": lines,
        "half_load": half,
        "partial_p50_s": quiet.p(quiet.partials(), 50),
        "partial_p95_s": quiet.p(quiet.partials(), 95),
        "final_p50_half_s": quiet.p(quiet.finals(), 50),
        "final_p95_half_s": quiet.p(quiet.finals(), 95),
        "idle_rss_mb": idle_rss,
        "peak_rss_mb": passed.peak_rss_mb,
        "mb_per_stream": (passed.peak_rss_mb - idle_rss) / passed.streams,
        "hostile": {name: {"ok": ok, "detail": detail} for name, (ok, detail) in verdicts.items()},
        "identical_transcripts": sum(same),
        "quiet_texts": [None if isinstance(r, BaseException) else r.text for r in quiet.runs],
        "good_failures_under_attack": loud.failures,
        "final_p95_under_attack_s": loud.p(loud.finals(), 95),
    }


def report(figures: dict, args) -> None:
    f = figures
    print(f"most concurrent real-time streams with p95 final latency < {args.target_s:g} s: {f['max_streams']} "
          f"(p95 {f['final_p95_s']:.3f} s)")  # fmt: skip
    print(f"at half load ({f['half_load']} streams): partial latency p50 {f['partial_p50_s']:.3f} s, "
          f"p95 {f['partial_p95_s']:.3f} s; final p50 {f['final_p50_half_s']:.3f} s, p95 {f['final_p95_half_s']:.3f} s")
    print(f"memory per stream: {f['mb_per_stream']:.2f} MB (server RSS {f['idle_rss_mb']:.0f} MB after warm-up, "
          f"peak {f['peak_rss_mb']:.0f} MB at {f['max_streams']} streams)")  # fmt: skip
    for name, verdict in f["hostile"].items():
        print(f"hostile {name:26s} {'ok  ' if verdict['ok'] else 'FAIL'} {verdict['detail']}")
    if f["batch_sizes"]:
        rows, batches = sum(k * v for k, v in f["batch_sizes"].items()), sum(f["batch_sizes"].values())
        print(f"chunks encoded: {rows} in {batches} batches (mean {rows / batches:.2f} rows)")
    print(f"other clients' transcripts identical to the quiet run: {f['identical_transcripts']}/{f['half_load']} "
          f"(failures {f['good_failures_under_attack']}, p95 final {f['final_p95_under_attack_s']:.3f} s)")


def main(argv=None) -> int:
    args = parse_args(argv)
    cores = sorted(os.sched_getaffinity(0))
    batch = "default" if args.max_batch is None else args.max_batch
    window = "default" if args.batch_window_ms is None else f"{args.batch_window_ms:g}"
    print(f"server load test: {args.model}, {args.workers} workers, max batch {batch} (window {window} ms), "
          f"cores {cores}, {args.stream_s:g} s streams, {args.packet_ms} ms packets; "
          f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    audio = client_audio(args.list, args.stream_s)
    proc, url = start_server(args)
    try:
        figures = asyncio.run(measure(url, audio, args, proc.pid))
    finally:
        proc.terminate()
        proc.wait(30)
    batches = [line.split(": ", 1)[1] for line in proc.stdout.read().splitlines() if line.startswith("batch sizes")]
    figures["batch_sizes"] = {int(k): int(v) for k, v in (p.split(":") for p in " ".join(batches).split())}
    figures.update(cores=cores, workers=args.workers, max_batch=args.max_batch, batch_window_ms=args.batch_window_ms,
                   load_average_after=os.getloadavg())  # fmt: skip
    report(figures, args)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    hostile_ok = all(v["ok"] for v in figures["hostile"].values())
    return 0 if hostile_ok and figures["identical_transcripts"] == figures["half_load"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
