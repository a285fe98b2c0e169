"""The LightningModule: cross-entropy, the optimizer from config, accuracy, the seed-style epoch line."""

from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import torchmetrics
from hydra.utils import instantiate
from torch import nn
from torch.func import functional_call

from resnet_exp.config import FIRST_DEFAULTS
from resnet_exp.library_internals import compiled_in_place
from resnet_exp.models.resnet import network
from resnet_exp.runs.console import CONSOLE_LOGGER, remaining
from resnet_exp.runs.records import METRICS
from resnet_exp.training.hardware import synced_clock

log = logging.getLogger(CONSOLE_LOGGER)


def epoch_line(epoch: int, m: dict[str, float]) -> str:
    """The seed's per-epoch line, e.g. ``epoch 1, loss 1.1860, train acc 0.692, test acc 0.841, time 41.7 sec``
    (with a validation split, ``val acc`` before ``test acc``). With precise BN, each accuracy is the
    recomputed statistics' and the running averages' follows it in brackets:
    ``test acc 0.912 (running 0.905)``."""
    test = "".join(
        f", {k[:-4]} acc {m[k]:.3f}" + (f" (running {m[k + '_running']:.3f})" if k + "_running" in m else "")
        for k in ("val/acc", "test/acc")
        if k in m
    )
    return (
        f"epoch {epoch}, loss {m['train/loss']:.4f}, train acc {m['train/acc']:.3f}{test}, "
        f"time {m['time/epoch_s']:.1f} sec"
    )


class Classifier(pl.LightningModule):
    """Trains the network that ``config`` (a job's resolved config) describes, with cross-entropy and
    the configured optimizer (and optional LR scheduler). The config is its one hyperparameter, kept
    in every checkpoint: ``Classifier.load_from_checkpoint("best.ckpt")`` rebuilds it alone.

    Metrics accumulate on the device (no host sync per step) and are logged once per epoch, after
    the test-set evaluation, as one row: train/loss, train/acc, test/loss, test/acc, time/epoch_s
    and time/images_per_s (training images per second of the training phase). With ``validation``
    the evaluation has two loaders, the validation split first (val/loss, val/acc), then the test
    set. In a run on several processes (DDP) the metrics gather the processes' states before they
    are computed, so they are those of the whole data seen, and the image count is summed.
    """

    def __init__(self, config: dict[str, Any], fixed_images: Any = None) -> None:
        """``fixed_images``: where precise BN takes its fixed training batches from (the data module's
        ``train_size`` and ``training_images``), given by who builds the module; not a hyperparameter."""
        super().__init__()
        self.save_hyperparameters("config", logger=False)  # the job's config.yaml and W&B config hold it already
        self.fixed_images = fixed_images
        self.net: nn.Module = network(config)
        self.validation = config["data"]["val_size"] > 0
        self.compile_mode = config.get("compile")
        self.optim_cfg, self.scheduler_cfg = config["optim"], config.get("scheduler") or None
        self.batch_size = config["data"]["batch_size"]
        # a config saved before these keys existed ran as their first defaults (config.FIRST_DEFAULTS)
        self.loss_reduction = config.get("loss", {}).get("reduction", FIRST_DEFAULTS["loss.reduction"])
        self.precise_bn_batches = config.get("evaluation", {}).get(
            "precise_bn_batches", FIRST_DEFAULTS["evaluation.precise_bn_batches"]
        )
        self._precise_bn_s = 0.0
        self._running_bn: dict[str, torch.Tensor] = {}  # the running statistics precise BN replaced
        num_classes = config["model"]["num_classes"]
        # One metric object per split and measure, not a MetricCollection: a collection updates every
        # member with the same inputs, where the loss metric takes the loss and the accuracy the
        # logits; and these names are the keys of the states a mid-epoch checkpoint keeps.
        # validate_args=False: the input checks look at the labels' values, a host sync every step
        acc = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes, validate_args=False)
        self.train_acc, self.test_acc = acc.clone(), acc.clone()
        self.val_acc = acc.clone()
        # nan_strategy="disable": its NaN check is a host sync every step (the divergence guard
        # watches for NaN on the device instead), and a NaN loss must show, not be dropped
        loss = torchmetrics.MeanMetric(nan_strategy="disable")
        self.train_loss, self.test_loss, self.val_loss = loss.clone(), loss.clone(), loss.clone()
        # with precise BN: the same weights evaluated with the running averages too, paired
        self.test_acc_running, self.val_acc_running = acc.clone(), acc.clone()
        self.test_loss_running, self.val_loss_running = loss.clone(), loss.clone()
        # in checkpoints, so that a run resumed mid-epoch ends the epoch with the whole epoch's numbers
        self.train_loss.persistent(True)
        self.train_acc.persistent(True)
        self._epoch_start = self._train_end = 0.0
        self._epoch_times: list[float] = []  # this attempt's, for the estimate of the time left
        self._train_images = 0
        self._logged_epoch = -1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def configure_optimizers(self) -> Any:
        optimizer = instantiate(self.optim_cfg, params=self.parameters())
        if not self.scheduler_cfg:
            return optimizer
        scheduler = instantiate(self.scheduler_cfg, optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], loss_metric, acc_metric) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        loss_metric.update(loss.detach(), weight=y.numel())
        if self.training:  # the batch's mean loss and its images, for the curve within the epoch (curve.py)
            self.batch_loss = (loss.detach(), y.numel())
        acc_metric.update(logits.detach(), y)
        if self.loss_reduction == "batch_size" and self.training:
            # the seed's (MXNet's trainer.step(batch_size)): the summed loss over the nominal batch,
            # so a last, partial batch of n images takes a step n/batch_size as long
            return loss * (y.numel() / (self.batch_size // self.trainer.world_size))
        return loss

    def _sync(self) -> float:
        return synced_clock(self.device)

    def configure_model(self) -> None:
        # In place (nn.Module.compile): the state dict keeps its keys, so checkpoints of compiled
        # and eager runs load into each other. Compilation itself happens at the first step.
        if self.compile_mode and not compiled_in_place(self.net):
            self.net.compile(mode=self.compile_mode)

    def on_fit_start(self) -> None:
        # convolutions run fastest on NHWC tensors, on a GPU and on the CPU (measured with bench)
        self.net.to(memory_format=torch.channels_last)

    def on_train_start(self) -> None:
        self._epoch_start = self._sync()  # also where a run resumed mid-epoch starts timing

    def on_train_epoch_start(self) -> None:
        self.train_loss.reset()
        self.train_acc.reset()
        self._train_images = 0
        self._train_end = 0.0
        self._epoch_start = self._sync()

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        self._train_images += batch[1].numel()
        return self._step(batch, self.train_loss, self.train_acc)

    def on_validation_epoch_start(self) -> None:
        for metric in (self.val_loss, self.val_acc, self.test_loss, self.test_acc, self.val_loss_running,
                       self.val_acc_running, self.test_loss_running, self.test_acc_running):  # fmt: skip
            metric.reset()
        if not self.trainer.sanity_checking:
            self._train_end = self._sync()
            if self.precise_bn_batches:
                self._recompute_bn()

    def _recompute_bn(self) -> None:
        """``precise_bn.recompute`` over ``evaluation.precise_bn_batches`` fixed training batches, in
        the training precision; its time is kept apart (time/precise_bn_s). The running averages
        it replaces are kept for the evaluation of the same weights with them (``*_running``)."""
        from resnet_exp.training.precise_bn import indices, recompute, running_statistics

        # given by who built the module; a module rebuilt from a checkpoint alone takes the trainer's
        data = self.fixed_images or getattr(self.trainer, "datamodule", None)
        if data is None:
            raise RuntimeError("precise BN needs the training images: build the Classifier with fixed_images=")
        batch = self.batch_size // self.trainer.world_size
        chosen = indices(data.train_size, self.precise_bn_batches, batch)
        batches = [data.training_images(i, self.device)[0] for i in chosen]
        self._running_bn = running_statistics(self.net)
        with self.trainer.precision_plugin.forward_context():
            recompute(self.net, batches)
        self._precise_bn_s = self._sync() - self._train_end

    def validation_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        split = "val" if self.validation and dataloader_idx == 0 else "test"
        self._step(batch, getattr(self, f"{split}_loss"), getattr(self, f"{split}_acc"))
        if self._running_bn:  # precise BN: the same batch through the same weights, with the running averages
            x, y = batch
            logits = functional_call(self.net, self._running_bn, (x,))
            getattr(self, f"{split}_loss_running").update(F.cross_entropy(logits, y), weight=y.numel())
            getattr(self, f"{split}_acc_running").update(logits, y)

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self._log_epoch(with_test=True)

    def on_train_epoch_end(self) -> None:
        if self._logged_epoch != self.current_epoch:  # no test evaluation ran this epoch
            self._log_epoch(with_test=False)

    def _images_trained(self) -> float:
        """Training images of this epoch so far, over all processes of the run."""
        count = torch.tensor(float(self._train_images), device=self.device)
        return float(self.trainer.strategy.reduce(count, reduce_op="sum"))

    def _log_epoch(self, with_test: bool) -> None:
        end = self._sync()
        train_s = (self._train_end or end) - self._epoch_start
        metrics = {
            "train/loss": self.train_loss.compute(),
            "train/acc": self.train_acc.compute(),
            "time/epoch_s": end - self._epoch_start,
            "time/images_per_s": self._images_trained() / max(train_s, 1e-9),
        }
        if with_test and self.precise_bn_batches:
            metrics["time/precise_bn_s"] = self._precise_bn_s
        if with_test and self.validation:
            metrics["val/loss"] = self.val_loss.compute()
            metrics["val/acc"] = self.val_acc.compute()
        if with_test:
            metrics["test/loss"] = self.test_loss.compute()
            metrics["test/acc"] = self.test_acc.compute()
        if with_test and self._running_bn:
            for split in ("val", "test") if self.validation else ("test",):
                metrics[f"{split}/loss_running"] = getattr(self, f"{split}_loss_running").compute()
                metrics[f"{split}/acc_running"] = getattr(self, f"{split}_acc_running").compute()
        self.log_dict({k: metrics[k] for k in METRICS if k in metrics})
        self.log("epoch", float(self.current_epoch + 1))  # the x-axis: 1 for the first epoch, as printed
        self._logged_epoch = self.current_epoch
        line = epoch_line(self.current_epoch + 1, {k: float(v) for k, v in metrics.items()})
        self._epoch_times.append(float(metrics["time/epoch_s"]))
        left = (self.trainer.max_epochs or 0) - (self.current_epoch + 1)
        if left > 0 and self.trainer.max_epochs > 0:
            line += f"; about {remaining(left * sum(self._epoch_times) / len(self._epoch_times))} left in this job"
        if self.trainer.is_global_zero:
            log.info(line)
