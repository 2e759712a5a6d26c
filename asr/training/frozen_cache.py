"""The frozen front's outputs, kept per utterance for the epochs after the first.

A recipe that starts from a pretrained encoder and keeps its lower layers fixed
(``model.freeze_layers``) computes the same function of each utterance every epoch; with
``data.cache_frozen_gb > 0`` the training step keeps each utterance's output of the frozen
front (:meth:`asr.model.CTCModel.frozen_front`: augmentation, features, subsampling and the
frozen layers) in memory, up to that many GB, and a batch whose utterances are all held
goes straight to the trained layers (:meth:`asr.model.CTCModel.from_frozen`). SpecAugment
masks the front's output there, not the features, so each pass draws fresh masks. The
price: a held utterance keeps the waveform augmentation it drew the first time. On 2 CPU
cores the main job's step falls from 0.76 s to about 0.43 s once the corpus is held
(recipes/demo/README.md).

Per process, on the training device (GPU memory on a GPU): under DDP each rank holds what it
has seen.
"""

from __future__ import annotations

import torch

from asr.config import ConfigError, RecipeConfig


def check_cacheable(recipe: RecipeConfig) -> None:
    """Raise :class:`ConfigError` naming ``data.cache_frozen_gb`` where the front is not a
    fixed function of the audio it is given."""
    from asr.training.losses import has_auxiliary_losses

    model, gb = recipe.model, recipe.data.cache_frozen_gb
    if gb <= 0:
        return
    problems = (
        (model.freeze_layers == 0, "needs model.freeze_layers > 0 (a frozen front)"),
        (model.chunk_train_prob > 0, "needs model.chunk_train_prob 0 (chunks reach the frozen layers)"),
        (has_auxiliary_losses(model), "needs plain CTC (no InterCTC, no CR-CTC)"),
    )
    for bad, why in problems:
        if bad:
            raise ConfigError(f"config key 'data.cache_frozen_gb': {why}, got {gb!r}")


class FrozenCache:
    """{utterance id: (T'_i, D) frozen-front output}, at most ``max_bytes`` in all (what
    comes after that is not kept)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.bytes = 0
        self.outputs: dict[str, torch.Tensor] = {}
        self.full = False  # an output was turned away for lack of room

    def __len__(self) -> int:
        return len(self.outputs)

    def get(self, ids: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor] | None:
        """-> (B, T', D) zero-padded outputs and (B,) frame counts of ``ids``, or None unless
        every one is held."""
        if not ids or any(i not in self.outputs for i in ids):
            return None
        rows = [self.outputs[i] for i in ids]
        lengths = torch.tensor([len(r) for r in rows], device=rows[0].device)  # (B,)
        return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True), lengths

    def put(self, ids: tuple[str, ...], x: torch.Tensor, lengths: torch.Tensor) -> None:
        """Keep each row of (B, T', D) ``x`` up to its (B,) length, while there is room."""
        for b, (i, n) in enumerate(zip(ids, lengths.tolist())):
            if i in self.outputs:
                continue
            row = x[b, :n].detach().clone()  # (T'_i, D), its own storage
            size = row.numel() * row.element_size()
            if self.bytes + size > self.max_bytes:
                self.full = True
                continue
            self.outputs[i] = row
            self.bytes += size
