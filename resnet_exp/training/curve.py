"""The training loss within epochs: where the curves part first.

He et al. 2016 (Fig. 6) see pre-activation ease optimisation first in the training loss of the
first iterations; ``metrics.csv`` has one row an epoch. ``TrainingCurve`` (``+callbacks=training_curve``)
writes ``train_curve.csv`` next to it: every ``every`` optimizer steps, and at each epoch's last
batch, the mean training loss of the images of those steps (each batch's cross-entropy weighted by
its images, as ``train/loss`` is over the epoch: the rows of an epoch average to its
``train/loss``). A window never spans two epochs; ``steps`` says how many optimizer steps a row
covers. Where the job has a W&B run, each row is logged there too, as ``curve/train_loss`` against
``curve/step``.

The losses add up on the device and are read at each row (one wait for the device then, none
between). In a run on several processes the windows are summed over all of them. A resumed job
keeps the rows up to the step its checkpoint holds; a checkpoint taken within an epoch (a stop on
a signal) holds the open window, summed over the processes, so the rows end as an unstopped job's.
A job the divergence guard stops writes its open window, the bad step's NaN included, as its last
row.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from resnet_exp.runs.job import Diverged
from resnet_exp.runs.records import CURVE_FILE, append_csv, write_csv
from resnet_exp.tracking.logger import mirror
from resnet_exp.training.job_callbacks import JobContext

COLUMNS = ("epoch", "step", "steps", "images", "train/loss")


class TrainingCurve(pl.Callback):
    """The training loss every ``every`` optimizer steps, into ``job_dir/train_curve.csv`` (none
    where ``job_dir`` is None: the other processes of a run) and the job's W&B run. Reads the
    module's ``batch_loss``: the batch's mean loss and its images (``Classifier`` sets it)."""

    def __init__(self, job_dir: Path | None, every: int = 10, wandb: Any = None) -> None:
        self.every, self.wandb = every, wandb
        self.path = Path(job_dir) / CURVE_FILE if job_dir is not None else None
        self.window: torch.Tensor | None = None  # this process's (loss x images, images) since the last row
        self.last_step = 0  # the optimizer step of the last row
        self.restored: torch.Tensor | None = None  # the open window a checkpoint held, all processes'
        self.trainer: pl.Trainer | None = None

    @classmethod
    def for_job(cls, job: JobContext, every: int = 10) -> TrainingCurve:
        """The curve of ``job`` (``callbacks.training_curve``, built as a partial by job_callbacks)."""
        return cls(job.dir, every, job.wandb)

    def setup(self, trainer: pl.Trainer, module: pl.LightningModule, stage: str) -> None:
        self.trainer = trainer  # for state_dict, which Lightning calls without it

    def _summed(self, trainer: pl.Trainer) -> torch.Tensor:
        """The open window, summed over the processes (every process calls this at the same point)."""
        window = self.window if self.window is not None else torch.zeros(2)
        window = window.to(trainer.strategy.root_device)
        return trainer.strategy.reduce(window.clone(), reduce_op="sum").cpu()

    def state_dict(self) -> dict[str, Any]:
        """A checkpoint holds the open window, summed over the processes (they all save a checkpoint
        together), and the step of the last row."""
        window = self._summed(self.trainer) if self.trainer is not None else None
        return {"window": window, "last_step": self.last_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.restored, self.last_step = state.get("window"), state.get("last_step", 0)

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        """A resume's start: the rows up to the checkpoint's step kept, the rest (written after it
        by the attempt that stopped) dropped; a fresh job's file started empty. The window the
        checkpoint held goes on in the first process (the others start theirs empty), and is
        written now where the checkpoint was taken at the step its row is due."""
        self._start(trainer)
        if self.restored is not None:
            device = trainer.strategy.root_device
            self.window = self.restored.to(device) if trainer.is_global_zero else torch.zeros(2, device=device)
            self.restored = None
            if self._due(trainer):
                self._row(trainer)

    def _start(self, trainer: pl.Trainer) -> None:
        if self.path is None or not trainer.is_global_zero:
            return
        kept = []
        if trainer.global_step > 0 and self.path.is_file():
            with open(self.path, newline="", errors="replace") as f:
                kept = [row for row in csv.DictReader(f) if _whole(row) and int(row["step"]) <= trainer.global_step]
        write_csv(self.path, COLUMNS, kept)
        mirror(self.wandb, lambda run: run.define_metric("curve/*", step_metric="curve/step"))

    def on_after_backward(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        """The batch joins the window as soon as its loss is known: before the batch's end, where a
        stop on a signal saves its checkpoint."""
        loss, images = module.batch_loss  # this batch's mean cross-entropy, unscaled, and its images
        add = torch.stack([loss.float() * images, loss.new_tensor(float(images))])
        self.window = add if self.window is None else self.window.to(add.device) + add

    def _due(self, trainer: pl.Trainer) -> bool:
        """A row is due every ``every`` optimizer steps (several batches make a step where
        gradients accumulate: the row comes with the step)."""
        return trainer.global_step > self.last_step and trainer.global_step % self.every == 0

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if batch_idx + 1 == trainer.num_training_batches or self._due(trainer):
            self._row(trainer)

    def on_exception(self, trainer: pl.Trainer, module: pl.LightningModule, exception: BaseException) -> None:
        # the guard stops every process at the same step: the open window is the curve's last row
        if isinstance(exception, Diverged) and self.window is not None:
            self._row(trainer)

    def _row(self, trainer: pl.Trainer) -> None:
        total, images = self._summed(trainer).tolist()
        steps, self.window, self.last_step = trainer.global_step - self.last_step, None, trainer.global_step
        if self.path is None or not trainer.is_global_zero or not images:
            return
        row = {"epoch": trainer.current_epoch + 1, "step": trainer.global_step, "steps": steps,
               "images": round(images), "train/loss": total / images}  # fmt: skip
        append_csv(self.path, COLUMNS, [row])
        mirror(self.wandb, lambda run: run.log({"curve/train_loss": row["train/loss"], "curve/step": row["step"]}))


def _whole(row: dict[str, Any]) -> bool:
    """A row written whole (a kill while appending can leave the last one cut short)."""
    return all(row.get(k) not in (None, "") for k in COLUMNS) and str(row["step"]).isdigit()
