"""Train a recipe: prepare data, fit with Lightning, export the best model.

    python train.py --config recipes/demo/demo.yaml [section.key=value ...] [--resume CKPT]

Any ``lightning.Trainer`` argument is a ``trainer.*`` override, e.g.
``trainer.devices=4 trainer.num_nodes=2 trainer.strategy=ddp trainer.precision=bf16-mixed``;
``trainer.precision=auto`` picks bf16-mixed where the chip computes in bf16, else 32-true
(:mod:`asr.training.precision`).
``--save-every-steps N`` also refreshes ``checkpoints/last.ckpt`` every N steps; a run
killed mid-epoch continues with ``--resume exp_dir/checkpoints/last.ckpt`` after the
batches it had trained on. Checkpoints are written atomically and loaded only as plain
weights (a file that would run code is refused).
Outputs in ``exp_dir``: ``checkpoints/`` (best and last), ``model.pt`` (the best model,
self-describing), ``<split>.ref`` reference files, ``<split>.list`` audio lists,
``metrics.csv`` logs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from asr.cli import recipe_or_report

DEFAULT_TRAINER = {"max_epochs": 10, "accelerator": "auto", "devices": "auto", "use_distributed_sampler": False}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True, help="recipe YAML")
    parser.add_argument("--resume", type=Path, default=None, help="Lightning checkpoint to resume from")
    parser.add_argument(
        "--save-every-steps",
        type=int,
        default=0,
        metavar="N",
        help="also write checkpoints/last.ckpt every N training steps, so a crash mid-epoch loses less (default: off)",
    )
    parser.add_argument(
        "--curve", action="store_true", help="also score every test set at every validation (learning curves)"
    )
    parser.add_argument(
        "--keep-best", type=int, default=1, help="best checkpoints to keep (for averaging, asr.cli.average)"
    )
    parser.add_argument(
        "--threads",
        default="auto",
        help="CPU threads: a number, or auto = the cores other processes leave idle, with passive waiting "
        "when some are busy (default: auto; OMP_NUM_THREADS in the environment wins)",
    )
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides")
    args = parser.parse_args(argv)
    if args.threads != "auto" and not (args.threads.isdigit() and int(args.threads) > 0):
        parser.error(f"--threads must be auto or a positive number, not {args.threads!r}")
    return args


def write_references(recipe, test: dict) -> None:
    """``<split>.ref`` (Kaldi text) and ``<split>.list`` (audio paths) for each test split."""
    from asr.audio.atomic import atomic_write_text

    for split, entries in test.items():
        atomic_write_text(recipe.exp_path / f"{split}.ref", "".join(f"{e.id} {e.text}\n" for e in entries))
        atomic_write_text(recipe.exp_path / f"{split}.list", "".join(f"{e.audio}\n" for e in entries))


def build_trainer(recipe, extra_callbacks=(), save_every_steps: int = 0, keep_best: int = 1):
    import lightning as L
    from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from asr.training.module import SafeCheckpointIO
    from asr.training.precision import resolve_precision

    checkpoints = ModelCheckpoint(
        dirpath=recipe.exp_path / "checkpoints",
        filename="best-{epoch:02d}-{val_wer:.4f}",
        monitor="val_wer",
        mode="min",
        save_last=True,
        save_top_k=keep_best,
        enable_version_counter=save_every_steps == 0,  # else both callbacks write last.ckpt, not last-v1.ckpt
    )
    kwargs = {**DEFAULT_TRAINER, "gradient_clip_val": recipe.optim.grad_clip, **recipe.trainer}
    if "precision" in kwargs:  # auto: bf16 where the chip computes in bf16, else fp32 (asr.training.precision)
        kwargs["precision"] = resolve_precision(kwargs["precision"], kwargs["accelerator"])
        print(f"precision: {kwargs['precision']}" + (" (auto)" if recipe.trainer["precision"] == "auto" else ""))
    logger = CSVLogger(recipe.exp_path, name="logs")
    callbacks = [checkpoints, LearningRateMonitor("step"), *extra_callbacks]
    if save_every_steps > 0:  # mid-epoch last.ckpt; the sampler state in it skips the batches already seen
        steps = ModelCheckpoint(
            dirpath=recipe.exp_path / "checkpoints",
            every_n_train_steps=save_every_steps,
            save_top_k=0,
            save_last=True,
            enable_version_counter=False,
        )
        callbacks.append(steps)
    trainer = L.Trainer(callbacks=callbacks, logger=logger, plugins=[SafeCheckpointIO()], **kwargs)
    return trainer, checkpoints


def final_checkpoint(trainer, module, datamodule, checkpoints) -> str:
    """The checkpoint to export: the best validated one, or the final weights when training
    ended between validations (a time budget stops mid-epoch, after the schedule annealed)
    and they validate at least as well. Every rank calls this (validation is collective)."""
    best = checkpoints.best_model_path or checkpoints.last_model_path
    best_wer = float(checkpoints.best_model_score) if checkpoints.best_model_score is not None else float("inf")
    if trainer.global_step in (module.validated_at_step, 0):
        print(f"best checkpoint {best} (val_wer {best_wer:.4f})")
        return best
    final_wer = float(trainer.validate(module, datamodule=datamodule, verbose=False)[0]["val_wer"])
    print(f"final weights at step {trainer.global_step}: val_wer {final_wer:.4f}; best validated {best_wer:.4f}")
    if final_wer > best_wer:
        return best
    final = str(Path(checkpoints.dirpath) / "final.ckpt")
    trainer.save_checkpoint(final)
    return final


def main(argv=None) -> int:
    args = parse_args(argv)
    from asr.training.threads import configure

    print(configure(args.threads))  # before torch starts its thread pool (checking a recipe loads Lightning)
    recipe = recipe_or_report(args.config, args.overrides)
    if recipe is None:
        return 2
    import lightning as L
    import torch

    from asr.training.callbacks import Progress, TestWER, WallClock
    from asr.inference.checkpoint import CheckpointError, read_checkpoint
    from asr.training.checkpoint import export_model
    from asr.data.datamodule import ASRDataModule
    from asr.data.shards import ShardError
    from asr.training.module import ASRModule, BatchOutOfMemoryError, NonFiniteLossError
    from asr.training.prepare import prepare

    if args.resume is not None:  # refuse an unusable or unsafe checkpoint before hours of data preparation
        try:
            state = read_checkpoint(args.resume)
        except CheckpointError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        if "asr" not in state:
            print(f"error: {args.resume}: not a training checkpoint (an exported model cannot resume)", file=sys.stderr)
            return 2
        print(f"resuming from {args.resume}: epoch {state.get('epoch')}, step {state.get('global_step')}")
        del state
    from asr.training.pretrained import PretrainedError, load_pretrained, whisper_folder

    if recipe.model.init and args.resume is None:  # a missing package is named before data preparation
        try:
            whisper_folder()
        except PretrainedError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    L.seed_everything(recipe.seed, workers=True)
    started = time.time()
    data = prepare(recipe)
    write_references(recipe, data.test)
    print(f"data ready in {time.time() - started:.0f}s: {len(data.train)} train, {len(data.dev)} dev utterances")

    try:
        datamodule = ASRDataModule(recipe, data.tokenizer, data.train, data.dev)
    except ShardError as err:  # data.shards names a folder that cannot be read: one line, before any training
        print(f"error: {err}", file=sys.stderr)
        return 2
    for line in datamodule.report:
        print(f"warning: {line}")
    module = ASRModule(recipe, data.tokenizer, data.mean, data.std)
    if recipe.model.init and args.resume is None:  # resuming: the checkpoint holds every weight
        try:
            print(load_pretrained(module.model, recipe))
        except PretrainedError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    params = sum(p.numel() for p in module.parameters())
    hours = sum(e.duration for e in datamodule.train_entries) / 3600
    print(f"model: {params / 1e6:.2f}M parameters, vocabulary {data.tokenizer.vocab_size}; training on {hours:.2f} h")
    torch.set_float32_matmul_precision("high")
    clock = WallClock()
    callbacks = [clock, Progress(recipe.name)]
    if args.curve:
        callbacks.append(TestWER(data.test, clock))
    trainer, checkpoints = build_trainer(recipe, callbacks, args.save_every_steps, args.keep_best)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=args.resume)
    except (NonFiniteLossError, BatchOutOfMemoryError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1

    best = final_checkpoint(trainer, module, datamodule, checkpoints)
    if trainer.global_rank == 0:
        out = export_model(best, recipe.exp_path / "model.pt")
        print(f"exported {out} from {best} after {(time.time() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
