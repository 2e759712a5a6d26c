"""A training run as one call: ``fit(recipe, resume=None)`` prepares the data, trains with
Lightning, picks the checkpoint to keep and exports ``model.pt``.

    from asr.config import load_recipe
    from asr.training.run import fit
    result = fit(load_recipe("recipes/demo/demo.yaml"))   # -> FitResult(trainer, module, best, model)

``python train.py`` (:mod:`asr.cli.train`) parses arguments and calls it; the DDP test runs it
on every rank with a recording module. Errors a person can act on are raised as they are:
:class:`asr.data.shards.ShardError` and :class:`asr.training.pretrained.PretrainedError`
before any training, :class:`asr.training.module.NonFiniteLossError`,
:class:`asr.training.module.BatchOutOfMemoryError` and
:class:`asr.inference.checkpoint.CheckpointError` during it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from asr.config import RecipeConfig

DEFAULT_TRAINER = {"max_epochs": 10, "accelerator": "auto", "devices": "auto", "use_distributed_sampler": False}


@dataclass(frozen=True)
class FitResult:
    trainer: Any  # lightning.Trainer, after fit
    module: Any  # the trained ASRModule (or the subclass passed in)
    best: str  # the checkpoint exported: best validated, or the final weights
    model: Path | None  # exp_dir/model.pt (rank 0 only; None on other ranks or without export)


def write_references(recipe: RecipeConfig, test: dict) -> None:
    """``<split>.ref`` (Kaldi text) and ``<split>.list`` (audio paths) for each test split."""
    from asr.audio.atomic import atomic_write_text

    for split, entries in test.items():
        atomic_write_text(recipe.exp_path / f"{split}.ref", "".join(f"{e.id} {e.text}\n" for e in entries))
        atomic_write_text(recipe.exp_path / f"{split}.list", "".join(f"{e.audio}\n" for e in entries))


def build_trainer(recipe: RecipeConfig, extra_callbacks: Sequence = (), save_every_steps: int = 0, keep_best: int = 1):
    """-> (lightning.Trainer, its best-checkpoint callback) from ``recipe.trainer`` over
    :data:`DEFAULT_TRAINER`; ``trainer.precision: auto`` resolved for this machine."""
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


def fit(
    recipe: RecipeConfig,
    resume: str | Path | None = None,
    *,
    callbacks: Sequence = (),
    save_every_steps: int = 0,
    keep_best: int = 1,
    curve: bool = False,
    module_class: type | None = None,
    export: bool = True,
) -> FitResult:
    """Train ``recipe`` (from the Lightning checkpoint ``resume``, if given) and export the
    checkpoint :func:`final_checkpoint` picks to ``exp_dir/model.pt`` (rank 0).

    ``callbacks``: more Lightning callbacks; ``curve``: score every test set at every
    validation; ``module_class``: an :class:`asr.training.module.ASRModule` subclass (tests
    record what each rank saw); ``export``: False keeps only the checkpoints.
    """
    import lightning as L
    import torch

    from asr.data.datamodule import ASRDataModule
    from asr.training.callbacks import Progress, TestWER, WallClock
    from asr.training.checkpoint import export_model
    from asr.training.module import ASRModule
    from asr.training.prepare import prepare
    from asr.training.step import MATMUL_PRECISION

    L.seed_everything(recipe.seed, workers=True)
    started = time.time()
    data = prepare(recipe)
    write_references(recipe, data.test)
    print(f"data ready in {time.time() - started:.0f}s: {len(data.train)} train, {len(data.dev)} dev utterances")
    datamodule = ASRDataModule(recipe, data.tokenizer, data.train, data.dev)  # ShardError: unreadable data.shards
    for line in datamodule.report:
        print(f"warning: {line}")
    module = (module_class or ASRModule)(recipe, data.tokenizer, data.mean, data.std)
    if recipe.model.init and resume is None:  # resuming: the checkpoint holds every weight
        from asr.training.pretrained import load_pretrained

        print(load_pretrained(module.model, recipe))
    params = sum(p.numel() for p in module.parameters())
    hours = sum(e.duration for e in datamodule.train_entries) / 3600
    print(f"model: {params / 1e6:.2f}M parameters, vocabulary {data.tokenizer.vocab_size}; training on {hours:.2f} h")
    torch.set_float32_matmul_precision(MATMUL_PRECISION)
    clock = WallClock()
    extra = [clock, Progress(recipe.name), *callbacks]
    if curve:
        extra.append(TestWER(data.test, clock))
    trainer, checkpoints = build_trainer(recipe, extra, save_every_steps, keep_best)
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
    best = final_checkpoint(trainer, module, datamodule, checkpoints)
    model = None
    if export and trainer.global_rank == 0:
        model = export_model(best, recipe.exp_path / "model.pt")
        print(f"exported {model} from {best} after {(time.time() - started) / 60:.1f} min")
    return FitResult(trainer, module, best, model)
