"""The divergence guard: training stops at the first step whose loss is NaN or infinite."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from resnet_exp.runs.job import Diverged


class DivergenceGuard(pl.Callback):
    """Stops training as soon as the loss is NaN or infinite, naming the epoch (from 1) and the step.

    The check reads the loss on the host, which waits for the device: every step on the CPU, every
    ``every`` steps on an accelerator, where a device-side flag remembers the first bad step between
    checks (so the step named is exact either way). In a run on several processes the processes
    agree at each check (the worst of their flags), so that all of them stop at the same step.
    """

    def __init__(self, every: int = 25) -> None:
        self.every = every
        self.first_bad: torch.Tensor | None = None

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs["loss"].detach() if isinstance(outputs, dict) else outputs.detach()
        step = trainer.global_step  # optimizer steps so far, this one included
        if self.first_bad is None:
            self.first_bad = torch.full((), -1, dtype=torch.long, device=loss.device)
        bad = ~torch.isfinite(loss) & (self.first_bad < 0)
        self.first_bad = torch.where(bad, torch.full_like(self.first_bad, step), self.first_bad)
        if loss.device.type == "cpu" or batch_idx % self.every == 0 or batch_idx + 1 == trainer.num_training_batches:
            first = int(trainer.strategy.reduce(self.first_bad.clone(), reduce_op="max"))
            if first >= 0:
                raise Diverged(trainer.current_epoch + 1, first)
