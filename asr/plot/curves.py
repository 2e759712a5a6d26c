"""Training curves from a run's Lightning CSV log (``exp_dir/logs/version_N/metrics.csv``).

    python -m asr.plot.curves exp/demo/logs/version_0/metrics.csv --out curves.png
    python -m asr.plot.curves LOG --wer-vs-minutes --out wer.png   # needs train.py --curve
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from asr.plot import PlotUnavailable, pyplot


def read_metrics(path: str | Path) -> dict[str, list[tuple[int, float]]]:
    """-> {metric: [(step, value), ...]} for every non-empty cell of the CSV log."""
    series: dict[str, list[tuple[int, float]]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            step = int(row["step"])
            for key, value in row.items():
                if key not in ("step", "epoch") and value not in ("", None):
                    series.setdefault(key, []).append((step, float(value)))
    return series


def plot_training(series: dict, out: Path, title: str = "") -> Path:
    """Loss, WER and learning rate against steps, one panel each."""
    plt = pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(7, 8), sharex=True)
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        if key in series:
            axes[0].plot(*zip(*series[key]), label=label, marker="." if key == "val_loss" else None)
    axes[0].set_ylabel("CTC loss / utterance")
    axes[0].legend()
    for key, label in (("val_wer", "validation"), ("test_wer", "test")):
        if key in series:
            axes[1].plot(*zip(*series[key]), marker="o", label=label)
    axes[1].set_ylabel("greedy WER")
    axes[1].legend()
    lr_key = next((k for k in ("lr", "lr-AdamW/pg1") if k in series), None)
    if lr_key:
        axes[2].plot(*zip(*series[lr_key]))
    axes[2].set_ylabel("learning rate")
    axes[2].set_xlabel("optimizer step")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_wer_vs_minutes(series: dict, out: Path, title: str = "") -> Path:
    """Test (and validation) WER against wall-clock minutes of training."""
    if "minutes" not in series or "test_wer" not in series:
        raise ValueError("the log has no 'minutes'/'test_wer' columns: train with train.py --curve")
    plt = pyplot()
    minutes = dict(series["minutes"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sets = sorted(k for k in series if k.startswith("test_wer_"))
    lines = [(k, k.removeprefix("test_wer_")) for k in sets] or [("test_wer", "test (unseen sentences and voices)")]
    for key, label in [*lines, ("val_wer", "dev")]:
        points = [(minutes[s], 100 * v) for s, v in series.get(key, []) if s in minutes]
        if points:
            ax.plot(*zip(*points), marker="o", label=label)
    ax.set_xlabel("minutes of training (2 CPU cores)")
    ax.set_ylabel("greedy WER (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_variants(variants: dict[str, dict[str, list]], out: Path, title: str = "") -> Path:
    """One panel per test set, one line per variant: {variant: {set: [(minutes, WER %), ...]}}."""
    sets = sorted({name for curves in variants.values() for name in curves}, key=lambda n: (n != "test", n))
    if not sets:
        raise ValueError("no test-set curves to draw: train with train.py --curve")
    plt = pyplot()
    fig, axes = plt.subplots(1, len(sets), figsize=(4.5 * len(sets), 4.2), squeeze=False)
    for ax, name in zip(axes[0], sets):
        for variant, curves in variants.items():
            if curves.get(name):
                ax.plot(*zip(*curves[name]), marker="o", label=variant)
        ax.set_title(name)
        ax.set_xlabel("minutes of training")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("greedy WER (%)")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log", type=Path, help="metrics.csv written by train.py")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--wer-vs-minutes", action="store_true", help="test WER against training minutes")
    parser.add_argument("--title", default="")
    args = parser.parse_args(argv)
    try:
        series = read_metrics(args.log)
        draw = plot_wer_vs_minutes if args.wer_vs_minutes else plot_training
        print(draw(series, args.out, args.title))
    except (OSError, ValueError, KeyError, PlotUnavailable) as err:
        print(f"error: {args.log}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
