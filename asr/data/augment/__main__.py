"""Measure each transform's CPU cost: ``python -m asr.data.augment [--seconds 10] [--repeats 5]``.

Prints milliseconds of one thread per second of audio, each transform forced on (probability 1)
on a harmonic test signal; the room bank's one-off build is reported separately.
"""

from __future__ import annotations

import argparse
import math
import random
import time

import torch

from asr.data.augment import AddNoise, ChannelEQ, Clip, Gain, Pitch, Reverb, Telephone, Tempo, pool_source


def test_signal(seconds: float, sample_rate: int = 16000) -> torch.Tensor:
    """(seconds * 16000,) voiced-speech-like: 120 Hz harmonics under a syllable-rate envelope."""
    t = torch.arange(int(seconds * sample_rate)) / sample_rate
    voice = sum(torch.sin(2 * math.pi * 120 * k * t) / k for k in range(1, 30))
    return (0.1 * voice * (0.5 + 0.5 * torch.sin(2 * math.pi * 4 * t)).clamp_min(0)).float()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="audio per call (default 10)")
    parser.add_argument("--repeats", type=int, default=5, help="calls per transform (default 5)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    wave = test_signal(args.seconds)
    others = pool_source([test_signal(s) for s in (2.0, 3.0, 5.0)])
    cases = {}
    for kind in ("pra", "noise"):
        reverb = Reverb(1.0, kind, bank=16)
        start = time.process_time()
        reverb.bank  # noqa: B018 (builds it)
        print(f"room bank ({kind}): {(time.process_time() - start) * 1000 / 16:.1f} ms per impulse response, once per worker")
        cases[f"room ({kind})"] = reverb
    for kind in ("coloured", "babble", "music"):
        cases[f"noise ({kind})"] = AddNoise(1.0, kinds=(kind,), others=others)
    cases["telephone (G.711)"] = Telephone(1.0, wideband_share=0.0)
    cases["telephone (G.722-like)"] = Telephone(1.0, wideband_share=1.0)
    cases["eq"] = ChannelEQ(1.0)
    cases["gain"] = Gain(1.0)
    cases["clip"] = Clip(1.0)
    cases["tempo"] = Tempo(1.0)
    cases["pitch"] = Pitch(1.0)
    print(f"{'transform':24s} ms CPU per audio-second (1 thread, {args.seconds:g} s utterances)")
    for name, transform in cases.items():
        rng = random.Random(0)
        transform(wave, rng)  # warm-up
        start = time.process_time()
        for _ in range(args.repeats):
            transform(wave, rng)
        ms = (time.process_time() - start) * 1000 / (args.repeats * args.seconds)
        print(f"{name:24s} {ms:6.2f}")


if __name__ == "__main__":
    main()
