"""Everything a run needs, built from its config, in one place: the data module, the network, the
LightningModule and the Trainer's arguments. ``python -m resnet_exp.run``, ``bench``, ``summary``
and the experiment scripts all build through here, so that a config means the same thing to each.
The caller seeds first (``pl.seed_everything(cfg.seed)``): the initial weights follow from it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import torch
from hydra.utils import get_class, get_object, instantiate
from omegaconf import DictConfig, OmegaConf

from resnet_exp.config import TrainerConfig, processes
from resnet_exp.data import data_set
from resnet_exp.models.resnet import network  # noqa: F401  (the network of a config: build.network)
from resnet_exp.runs.console import console_is_terminal
from resnet_exp.runs.records import describe
from resnet_exp.runs.saved_config import job_config
from resnet_exp.runs.slurm import cluster_environment
from resnet_exp.training.hardware import accelerator_problem, auto_precision

if TYPE_CHECKING:
    from resnet_exp.data.module import ImageDataModule
    from resnet_exp.training.classifier import Classifier


def plain(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """A config as plain Python values, resolved (a checkpoint stores it so)."""
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True) if isinstance(cfg, DictConfig) else dict(cfg)


def datamodule(cfg: Mapping[str, Any]) -> ImageDataModule:
    """The data module of ``data.*``, shuffling from ``seed``."""
    from resnet_exp.data.module import ImageDataModule

    return ImageDataModule(**cfg["data"], seed=cfg["seed"])


def module(cfg: Mapping[str, Any], fixed_images: ImageDataModule | None = None) -> Classifier:
    """The LightningModule: the network of ``cfg`` and its training (``optim``, ``scheduler``,
    ``compile``, ``data.val_size``); it keeps the config, so a checkpoint rebuilds it alone; precise
    BN takes its fixed batches from ``fixed_images``, given here."""
    from resnet_exp.training.classifier import Classifier  # here: summary needs no Lightning module

    return Classifier(plain(cfg), fixed_images)


def build(cfg: Mapping[str, Any]) -> tuple[ImageDataModule, Classifier]:
    """The data module and the LightningModule that ``cfg`` describes, the module given the data
    module's fixed training images (precise BN) by hand, not through the trainer."""
    data = datamodule(cfg)
    return data, module(cfg, data)


def trainer_args(trainer: Mapping[str, Any]) -> dict[str, Any]:
    """The Trainer's arguments from ``trainer.*``, with the project's ``auto`` values decided for
    this machine: ``precision=auto`` (``hardware.auto_precision``) and the progress bar (default:
    where the console is a terminal); and the cluster environment (``runs.slurm.cluster_environment``:
    SLURM's without Lightning's own requeue) in ``plugins``, where it is not Lightning's to detect."""

    args = plain(trainer)
    environment = cluster_environment()
    if environment is not None:
        args["plugins"] = [environment]
    if args.get("precision") == "auto":
        args["precision"] = auto_precision(trainer)
    if args.get("enable_progress_bar") is None:
        args["enable_progress_bar"] = console_is_terminal()
    return args


def activation_bytes(cfg: Mapping[str, Any]) -> int:
    """At least the memory one training step's activations take: every convolution's output for a
    batch of ``data.batch_size`` images at ``data.resize`` (what the normalisation or the sum after
    it keeps for the backward pass), at two bytes an element where the precision is 16-bit
    (``auto`` decided for this machine, ``hardware.auto_precision``), else four. Measured by running the network on PyTorch's meta device: shapes
    only, no memory, milliseconds."""

    config = job_config(cfg) if isinstance(cfg, DictConfig) else dict(cfg)  # a run's config has Hydra's node
    data = config["data"]
    spec = data_set(data["name"])
    size = data["resize"] or spec.size
    with torch.device("meta"):
        net = network(config)
    elements = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: elements.append(out.numel()))
        for m in net.modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    try:
        net(torch.empty(data["batch_size"], spec.channels, size, size, device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    precision = str(config["trainer"]["precision"])
    if precision == "auto":
        precision = auto_precision(OmegaConf.create(config["trainer"]))
    return sum(elements) * (2 if "16" in precision else 4)


class PartRefused(ValueError):
    """A part of a config (optimizer, scheduler, Trainer) that its library refuses; one line."""


def check_parts(cfg: Mapping[str, Any]) -> None:
    """Build the parts whose arguments only their libraries can judge, on stand-ins, before any job
    starts and before anything is written: the optimizer (torch.optim's own checks, on one dummy
    parameter), the scheduler on it (stepped once, where ``step_size=0`` fails), and Lightning's
    Trainer from ``trainer.*`` (on the CPU, writing nothing: no logger, no checkpoints; CUDA is not
    started); and the classes of ``callbacks`` and ``logger.others`` found, their arguments' kinds
    checked. Raises PartRefused naming the part and the library's own words."""

    lightning_defaults = {f.name: f.default for f in dataclasses.fields(TrainerConfig)}

    def refuse(part: str, args: Mapping[str, Any], e: BaseException) -> None:
        given = " ".join(f"{part}.{k}={v}" for k, v in args.items() if k != "_target_")
        target = args.get("_target_", "pytorch_lightning.Trainer")
        raise PartRefused(f"{target} refuses {part}: {describe(e)} (given: {given or 'no arguments'})") from None

    def check_types(part: str, args: Mapping[str, Any], signature: Any) -> None:
        """A value of another kind than the argument's default (a word where a number is): refused
        naming the key, before the library compares it with a number."""
        for name, value in args.items():
            param = signature.parameters.get(name)
            if param is None:
                continue
            default, kind = param.default, param.annotation
            target = args.get("_target_", part)
            if isinstance(default, bool) or kind in (bool, "bool"):
                if not isinstance(value, bool):
                    raise PartRefused(f"{part}.{name}={value} must be true or false ({target}'s {name})")
                continue
            whole = kind in (int, "int") or (isinstance(default, int) and kind is inspect.Parameter.empty)
            numeric = isinstance(default, (int, float)) or kind in (int, float, "int", "float")
            if numeric and (isinstance(value, (str, bool)) or value is None):
                takes = "a whole number" if whole else "a number"
                raise PartRefused(f"{part}.{name}={value} must be {takes} ({target}'s {name})")

    optim, scheduler = cfg["optim"], cfg.get("scheduler") or None
    for part, args in (("optim", optim), ("scheduler", scheduler)):
        if args and "_target_" in args:
            check_types(part, args, inspect.signature(get_class(args["_target_"])))
    # callbacks and loggers are built as each job starts (they write into its folder): here their
    # targets are found and their arguments' kinds checked
    for group, parts in (
        ("callbacks", cfg.get("callbacks") or {}),
        ("logger.others", (cfg.get("logger") or {}).get("others") or {}),
    ):
        for name, args in parts.items():
            if not args:
                continue
            try:
                with quiet("hydra.utils", logging.CRITICAL):  # it logs a target not found as well as raising
                    target = get_object(args["_target_"])
            except Exception as e:
                cause = describe(e.__cause__ or e).splitlines()[0]  # Hydra's own words add lines of advice
                raise PartRefused(f"{group}.{name}._target_={args['_target_']} cannot be found ({cause})") from None
            check_types(f"{group}.{name}", args, inspect.signature(target))
    try:
        optimizer = instantiate(optim, params=[torch.nn.Parameter(torch.zeros(1))])
    except Exception as e:  # InstantiationException wraps the optimizer's own error
        refuse("optim", optim, e.__cause__ or e)
    if scheduler:
        try:
            with warnings.catch_warnings():  # its note on the order of steps: a stand-in's, not the run's
                warnings.simplefilter("ignore")
                instantiate(scheduler, optimizer=optimizer).step()
        except Exception as e:
            refuse("scheduler", scheduler, e.__cause__ or e)
    trainer = cfg["trainer"]
    args = plain(trainer)
    accelerator, devices = str(args.get("accelerator")), args.get("devices")
    if accelerator in ("gpu", "cuda", "mps"):  # asking needs torch: here, not in the config's checks
        problem = accelerator_problem(accelerator, devices, args.get("num_nodes", 1))
        if problem:
            raise PartRefused(f"trainer.accelerator={accelerator} trainer.devices={devices}: {problem}")
    gpus = torch.cuda.is_available() and str(args.get("accelerator")) in ("auto", "gpu", "cuda")
    if args.get("sync_batchnorm") and not gpus:
        raise PartRefused(
            "trainer.sync_batchnorm=true needs CUDA GPUs (SyncBatchNorm), and this run trains on the CPU; "
            "set trainer.sync_batchnorm=false"
        )
    if processes(trainer) != 1:  # DDP: its processes are started by the job itself (ddp.py)
        return
    import pytorch_lightning as pl  # first: importing it sets its logger's level

    try:
        # the Trainer's set-up messages belong to the job's log, later
        with quiet("pytorch_lightning", logging.ERROR), tempfile.TemporaryDirectory() as scratch:
            # on the CPU, in fp32: the stand-in must not start CUDA in this process (launchers fork
            # the jobs from it), and the accelerator, devices and precision are checked already
            stand_in = {"accelerator": "cpu", "devices": 1, "precision": "32-true", "enable_progress_bar": False,
                        "enable_model_summary": False, "enable_checkpointing": False}  # fmt: skip
            environment = [e for e in [cluster_environment()] if e is not None]
            pl.Trainer(**{**args, **stand_in}, plugins=environment, logger=False, default_root_dir=scratch,
                       use_distributed_sampler=False)  # fmt: skip
    except Exception as e:
        explicit = {k: v for k, v in trainer.items() if v is not None and v != lightning_defaults.get(k)}
        refuse("trainer", explicit, e)


@contextlib.contextmanager
def quiet(logger: str, level: int) -> Iterator[None]:
    """``logger`` set to ``level`` for the block, and back to its own level after it."""
    log = logging.getLogger(logger)
    before = log.level
    log.setLevel(level)
    try:
        yield
    finally:
        log.setLevel(before)
