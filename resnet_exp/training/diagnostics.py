"""Signal propagation through the residual units: why an ordering trains as it does.

He et al. 2016 ("Identity Mappings in Deep Residual Networks", Sections 3-4) argue that a clean
identity path carries the signal directly forward and backward through every unit. ``probe``
measures it on a fixed batch of training images (the same for every job of every sweep, see
``probe_indices``): per residual unit, the standard deviation of its output (forward) and the norm
of the loss's gradient at its input (backward), and per stage the norm of the loss's gradient with
respect to its weights.

``SignalPropagation`` takes the measure at initialisation and after every epoch, on a copy of the
network, so that training is left exactly as it would be without it: the weights, the BatchNorm
running statistics, the gradients and the random state are not touched (a test holds a run with
it to the metrics of one without). It writes ``signal.csv`` next to ``metrics.csv`` and, where the
job has a W&B run, logs one line per unit with ``epoch`` as x-axis.
"""

from __future__ import annotations

import copy
import csv
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from resnet_exp.library_internals import forget_compiled
from resnet_exp.models.blocks import ResidualUnit
from resnet_exp.runs.console import DETAILS_LOGGER
from resnet_exp.runs.records import SIGNAL_FILE, append_csv, write_csv
from resnet_exp.tracking.logger import mirror
from resnet_exp.training.job_callbacks import JobContext

details = logging.getLogger(DETAILS_LOGGER)

COLUMNS = ("epoch", "kind", "name", "depth", "act_std", "input_grad_norm", "weight_grad_norm")


def _whole(row: dict[str, Any]) -> bool:
    """A row of signal.csv written whole (a kill while appending can leave the last one cut short)."""
    return all(row.get(k) not in (None, "") for k in COLUMNS) and str(row["epoch"]).isdigit()


# The probe's images: drawn once with this seed from the training images every run trains on.
PROBE_SEED = 1_2016


def probe_indices(train_size: int, size: int) -> torch.Tensor:
    """Which of the run's ``train_size`` training images form the probe batch: the same ``size``
    images for every job and seed (a fixed draw), sorted."""
    generator = torch.Generator().manual_seed(PROBE_SEED)
    return torch.randperm(train_size, generator=generator)[:size].sort().values


def units(net: nn.Module) -> Iterator[tuple[str, ResidualUnit]]:
    """The residual units in order from input to output, named as in the state dict (``stage2.0``)."""
    for name, module in net.named_modules():
        if isinstance(module, ResidualUnit):
            yield name, module


def stages(net: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    for name, module in net.named_children():
        if name.startswith("stage"):
            yield name, module


def probe(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[dict[str, Any]]:
    """The signal measures of ``net`` (used as it is: train mode normalises with the batch's own
    statistics, as in training) on the batch ``(x, y)``: one row per residual unit (``act_std``,
    ``input_grad_norm``), then one per stage (``weight_grad_norm``). It runs a forward and a
    backward pass on ``net`` itself: give it a copy (``SignalPropagation`` does)."""
    outputs: dict[str, torch.Tensor] = {}
    inputs: dict[str, torch.Tensor] = {}
    hooks = []
    for name, unit in units(net):

        def before(module: nn.Module, args: tuple, name: str = name) -> tuple:
            x_in = args[0]
            if not x_in.requires_grad:
                x_in = x_in.detach().requires_grad_(True)
            x_in.retain_grad()
            inputs[name] = x_in
            return (x_in, *args[1:])

        def after(module: nn.Module, args: tuple, output: torch.Tensor, name: str = name) -> None:
            outputs[name] = output.detach()

        hooks += [unit.register_forward_pre_hook(before), unit.register_forward_hook(after)]
    try:
        net.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
    finally:
        for hook in hooks:
            hook.remove()
    rows = []
    for depth, (name, _) in enumerate(units(net), 1):
        grad = inputs[name].grad
        rows.append(
            {
                "kind": "unit",
                "name": name,
                "depth": depth,
                "act_std": float(outputs[name].float().std()),
                "input_grad_norm": float(grad.float().norm()) if grad is not None else float("nan"),
                "weight_grad_norm": float("nan"),
            }
        )
    for depth, (name, stage) in enumerate(stages(net), 1):
        grads = [p.grad.float().pow(2).sum() for p in stage.parameters() if p.grad is not None]
        norm = float(torch.stack(grads).sum().sqrt()) if grads else float("nan")
        rows.append(
            {
                "kind": "stage",
                "name": name,
                "depth": depth,
                "act_std": float("nan"),
                "input_grad_norm": float("nan"),
                "weight_grad_norm": norm,
            }
        )
    return rows


class SignalPropagation(pl.Callback):
    """Measures ``probe`` at initialisation (epoch 0) and after every epoch's training, on a copy
    of the network in fp32 under ``torch.random.fork_rng``; appends the rows to ``signal.csv`` (a
    resumed job, ``keep_epochs`` set, keeps the rows of initialisation and of the whole epochs it
    resumes after: a resume in the middle of epoch 1 keeps epoch 0's, which it does not measure
    again) and logs them to W&B."""

    def __init__(
        self,
        job_dir: Path | None,
        images: Any,
        probe_size: int = 256,
        keep_epochs: int | None = None,
        wandb: Any = None,
    ) -> None:
        """``images``: where the probe's fixed training images come from (the data module's
        ``train_size`` and ``training_images``)."""
        self.images = images
        self.path = Path(job_dir) / SIGNAL_FILE if job_dir is not None else None
        self.probe_size, self.wandb = probe_size, wandb
        self.batch: tuple[torch.Tensor, torch.Tensor] | None = None
        if self.path is not None:
            kept = []
            if keep_epochs is not None and self.path.is_file():
                with open(self.path, newline="", errors="replace") as f:
                    kept = [row for row in csv.DictReader(f) if _whole(row) and int(row["epoch"]) <= keep_epochs]
            write_csv(self.path, COLUMNS, kept)  # a resume's start: the rows kept, replaced whole

    @classmethod
    def for_job(cls, job: JobContext) -> SignalPropagation | None:
        """The probe of ``job`` (``callbacks.signal_propagation``, built as a partial by
        job_callbacks): sized by ``diagnostics.probe_size``, none where ``diagnostics.signal`` is
        false (a key a sweep can vary)."""
        if not job.cfg.diagnostics.signal:
            return None
        return cls(job.dir, job.datamodule, job.cfg.diagnostics.probe_size, job.resumed_after, job.wandb)

    def _probe_batch(self, trainer: pl.Trainer, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if self.batch is None:
            data = self.images
            idx = probe_indices(data.train_size, min(self.probe_size, data.train_size))
            self.batch = data.training_images(idx, device)
        return self.batch

    def measure(self, trainer: pl.Trainer, module: pl.LightningModule, epoch: int) -> None:
        """Every process of a run measures (a SyncBatchNorm copy needs all of them); the first
        writes. The time it takes goes to the job's log."""
        if trainer.sanity_checking:
            return
        start = time.perf_counter()
        x, y = self._probe_batch(trainer, module.device)
        with torch.random.fork_rng(devices=[module.device] if module.device.type == "cuda" else []):
            net = copy.deepcopy(module.net).float().train()
            forget_compiled(net)  # a compiled network's copy would call the original's code
            with torch.autocast(module.device.type, enabled=False):
                rows = probe(net, x, y)
        details.info("signal propagation at epoch %d measured in %.2f s", epoch, time.perf_counter() - start)
        if not trainer.is_global_zero or self.path is None:
            return
        rows = [{"epoch": epoch, **row} for row in rows]
        append_csv(self.path, COLUMNS, rows)
        logged = {"epoch": float(epoch)}
        for row in rows:
            if row["kind"] == "unit":
                logged[f"signal/act_std/{row['name']}"] = row["act_std"]
                logged[f"signal/input_grad_norm/{row['name']}"] = row["input_grad_norm"]
            else:
                logged[f"signal/weight_grad_norm/{row['name']}"] = row["weight_grad_norm"]
        mirror(self.wandb, lambda run: run.log(logged))

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if trainer.current_epoch == 0 and trainer.global_step == 0:
            # at initialisation, in every process alike (not again on a resume: a checkpoint holds
            # at least one batch)
            self.measure(trainer, module, 0)

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.measure(trainer, module, trainer.current_epoch + 1)
