"""Everything a run needs, built from its config, in one place: the data module, the network, the
LightningModule and the Trainer's arguments. ``python -m resnet_exp.run``, ``bench``, ``summary``
and the experiment scripts all build through here, so that a config means the same thing to each.
The caller seeds first (``pl.seed_everything(cfg.seed)``): the initial weights follow from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from resnet_exp.resnet import network  # noqa: F401  (the network of a config: build.network)

if TYPE_CHECKING:
    from resnet_exp.data import FashionMNISTDataModule
    from resnet_exp.module import Classifier


def plain(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """A config as plain Python values, resolved (a checkpoint stores it so)."""
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)


def datamodule(cfg: Mapping[str, Any]) -> FashionMNISTDataModule:
    """The data module of ``data.*``, shuffling from ``seed``."""
    from resnet_exp.data import FashionMNISTDataModule

    return FashionMNISTDataModule(**cfg["data"], seed=cfg["seed"])


def module(cfg: Mapping[str, Any]) -> Classifier:
    """The LightningModule: the network of ``cfg`` and its training (``optim``, ``scheduler``,
    ``compile``, ``data.val_size``); it keeps the config, so a checkpoint rebuilds it alone."""
    from resnet_exp.module import Classifier  # here: bench and summary need no Lightning module

    return Classifier(plain(cfg))


def build(cfg: Mapping[str, Any]) -> tuple[FashionMNISTDataModule, Classifier]:
    """The data module and the LightningModule that ``cfg`` describes."""
    return datamodule(cfg), module(cfg)


def trainer_args(trainer: Mapping[str, Any]) -> dict[str, Any]:
    """The Trainer's arguments from ``trainer.*``, with the project's ``auto`` values decided for
    this machine: ``precision=auto`` (``hardware.auto_precision``) and the progress bar (default:
    where the console is a terminal)."""
    from resnet_exp.console import console_is_terminal
    from resnet_exp.hardware import auto_precision

    args = plain(trainer)
    if args.get("precision") == "auto":
        args["precision"] = auto_precision(trainer)
    if args.get("enable_progress_bar") is None:
        args["enable_progress_bar"] = console_is_terminal()
    return args
