"""The training step outside a Trainer: the learning-rate schedule without warm-up, the
counting of left-out utterances by hand, and a non-finite loss dropping its update on the
device (fused AdamW's ``found_inf``), counted and reported a step later."""

from __future__ import annotations

import math

import torch

from asr.config import ModelConfig, OptimConfig, RecipeConfig
from asr.data.batch import Batch
from asr.text.tokenizer import Tokenizer
from asr.training.module import ASRModule, Schedule

TINY = ModelConfig(d_model=16, n_heads=2, n_layers=1, ff_dim=32, subsampling_channels=4, dropout=0.0)


def _module() -> ASRModule:
    torch.manual_seed(0)
    tokenizer = Tokenizer.train(["THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG"], 40, "char")
    return ASRModule(RecipeConfig(model=TINY), tokenizer)


def _batch(skipped: tuple[str, ...] = (), nan: bool = False) -> Batch:
    waves = 0.1 * torch.randn(2, 16000)
    if nan:
        waves[0, 100] = float("nan")
    tokens = torch.randint(1, 20, (2, 4))
    return Batch(waves, torch.tensor([16000, 12000]), tokens, torch.tensor([4, 3]), ("a", "b"), ("x", "y"), skipped)


def test_no_warm_up_steps_means_the_full_rate_at_once():
    """optim.warmup_steps: 0 is a valid config; the schedule once divided by it."""
    schedule = Schedule(OptimConfig(warmup_steps=0, final_lr_ratio=0.1), total_steps=100)
    assert schedule.factor(0) == 1.0
    assert math.isclose(schedule.factor(100), 0.1)
    assert 0.1 < schedule.factor(50) < 1.0


def test_left_out_utterances_are_counted_without_a_trainer(capsys):
    """Called by hand (no Trainer attached), the module counts what the loader left out;
    it once asked ``self.trainer``, which raises when none is attached."""
    module = _module()
    module._skip_unusable(_batch(skipped=("u1: unreadable", "u2: unreadable")))
    module._skip_unusable(_batch(skipped=("u1: unreadable",)))
    assert module.skipped_utterances == 2
    assert capsys.readouterr().err.count("warning: utterance left out") == 2
    module.on_validation_epoch_end()  # no trainer: nothing to record, and no error
    assert module.validated_at_step is None


def test_a_non_finite_loss_drops_its_update_on_the_device_and_is_reported_a_step_later(capsys):
    from asr.training.step import build_optimizer

    module = _module().train()
    optimizer = build_optimizer(module.model, module.recipe.optim)

    def step(batch: Batch) -> torch.Tensor:
        loss = module.training_step(batch, 0)
        loss.backward()
        module.on_before_optimizer_step(optimizer)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    before = {k: v.clone() for k, v in module.model.state_dict().items()}
    assert not torch.isfinite(step(_batch(nan=True)))
    for name, value in module.model.state_dict().items():
        assert torch.equal(value, before[name]), name  # no update, no weight decay
    assert all(float(s["step"]) == 0 for s in optimizer.state.values())  # AdamW's count unchanged too
    assert module.skipped_steps == 0  # read at the next step, not this one
    assert torch.isfinite(step(_batch()))
    assert module.skipped_steps == 1 and module.skipped_batches == 1 and module.bad_steps == 1
    assert "warning: non-finite loss at step 0" in capsys.readouterr().err
    assert not torch.equal(module.model.head.weight, before["head.weight"])  # a finite loss trains
    module.on_train_epoch_end()  # reads the last step's flags: finite, so the run of bad steps ends
    assert module.bad_steps == 0 and module.skipped_steps == 1
