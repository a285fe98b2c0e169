"""Typed configs registered in Hydra's ConfigStore, and the checks no type can express.

Hydra merges ``conf/`` onto the ``Config`` schema below, so a mistyped key or a value of the wrong
type fails at composition. ``validate`` checks what types cannot (orderings, ranges) and raises
``ConfigError`` with one line that names the bad value and the valid choices.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import pytorch_lightning as pl
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from resnet_exp.blocks import ORDERINGS, PROJECTION_INPUTS, SHORTCUTS
from resnet_exp.data import PIPELINES
from resnet_exp.ddp import processes
from resnet_exp.resnet import valid_final_norm

WANDB_MODES = ("online", "offline", "disabled")
# torch.compile's modes for the network (``compile=MODE``); reduce-overhead captures CUDA graphs.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class ConfigError(ValueError):
    """A config value that passes type checks but cannot work; the message is one line."""


@dataclass
class BlockConfig:
    order: str = "post"
    shortcut: str = "projection"
    projection_input: str = "relu"


@dataclass
class ModelConfig:
    stem_channels: int = 32
    channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    blocks: list[int] = field(default_factory=lambda: [2, 2, 2])
    num_classes: int = 10
    in_channels: int = 1
    final_norm: Any = False


@dataclass
class DataConfig:
    root: Optional[str] = None
    cache_dir: str = "~/.cache/resnet-exp"
    download: bool = True
    resize: int = 96
    batch_size: int = 256
    num_workers: int = 2
    pipeline: str = "auto"
    val_size: int = 0


@dataclass
class WandbConfig:
    mode: str = "offline"
    project: str = "resnet-exp"
    entity: Optional[str] = None


@dataclass
class LoggerConfig:
    wandb: WandbConfig = field(default_factory=WandbConfig)


# Lightning's Trainer arguments that run.py sets itself; every other one is a key under `trainer.`.
# (use_distributed_sampler: the data module shards the data per process itself.)
MANAGED_TRAINER_ARGS = (
    "logger",
    "callbacks",
    "plugins",
    "default_root_dir",
    "model_registry",
    "use_distributed_sampler",
)


def _trainer_schema() -> type:
    """A dataclass with one field per Lightning Trainer argument, defaulting as Lightning does."""
    fields = []
    for name, p in inspect.signature(pl.Trainer.__init__).parameters.items():
        if name == "self" or name in MANAGED_TRAINER_ARGS or p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            continue
        fields.append((name, Any, field(default=p.default)))
    return dataclasses.make_dataclass("TrainerConfig", fields)


TrainerConfig = _trainer_schema()


@dataclass
class Config:
    block: BlockConfig = field(default_factory=BlockConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: Any = None
    scheduler: Any = None
    trainer: Any = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    seed: int = 0
    output_dir: str = "outputs"
    force_resume: bool = False
    compile: Optional[str] = None


def one_line_error(e: BaseException) -> str:
    """Hydra's and OmegaConf's multi-line composition errors as one line: the message and its cause,
    without the bookkeeping lines (full_key, object_type, search path, the HYDRA_FULL_ERROR hint);
    a list under a line ending in ':' (the available options of a group) is joined with commas."""
    parts: list[str] = []
    while e is not None:
        for raw in str(e).splitlines():
            line = raw.strip()
            if line.startswith("Config search path"):
                break
            if not line or line.startswith(("full_key:", "reference_type=", "object_type=", "Set the environment")):
                continue
            if raw[:1].isspace() and parts and parts[-1].endswith((":", ",")):
                parts[-1] = f"{parts[-1]} {line},"
            elif line.rstrip(".") not in parts:
                parts.append(line.rstrip("."))
        e = e.__cause__
    return "; ".join(p.rstrip(",") for p in parts)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def validate(cfg: DictConfig) -> None:
    """Check what the schema's types cannot; raise ConfigError naming the value and the fix."""
    order = cfg.block.order
    _check(order in ORDERINGS, f"block.order={order} is not a known ordering; choose one of: {', '.join(ORDERINGS)}")
    b = cfg.block
    _check(
        b.shortcut in SHORTCUTS, f"block.shortcut={b.shortcut} is not a shortcut; choose one of: {', '.join(SHORTCUTS)}"
    )
    _check(
        b.projection_input in PROJECTION_INPUTS,
        f"block.projection_input={b.projection_input} is not valid; choose one of: {', '.join(PROJECTION_INPUTS)}",
    )
    d = cfg.data
    _check(d.batch_size >= 1, f"data.batch_size={d.batch_size} must be a whole number of at least 1")
    count = processes(cfg.trainer)
    _check(
        count is None or d.batch_size % count == 0,
        f"data.batch_size={d.batch_size} cannot be split evenly over {count} processes "
        f"(trainer.devices x trainer.num_nodes); choose a multiple of {count}",
    )
    _check(d.resize >= 1, f"data.resize={d.resize} must be a size in pixels of at least 1 (the seed uses 96)")
    _check(
        d.pipeline in PIPELINES,
        f"data.pipeline={d.pipeline} is not a pipeline; choose one of: {', '.join(PIPELINES)}",
    )
    _check(
        0 <= d.val_size < 60_000,
        f"data.val_size={d.val_size} must be from 0 (no validation split, the seed's recipe) to 59999 "
        "training images held out",
    )
    _check(d.num_workers >= 0, f"data.num_workers={d.num_workers} must be 0 (load in the main process) or more")
    m = cfg.model
    _check(
        len(m.channels) == len(m.blocks) and len(m.channels) > 0,
        f"model.channels={list(m.channels)} and model.blocks={list(m.blocks)} must list one entry per stage",
    )
    _check(
        min(m.channels) >= 1 and min(m.blocks) >= 1 and m.stem_channels >= 1 and m.in_channels >= 1,
        f"model.channels={list(m.channels)}, model.blocks={list(m.blocks)}, model.stem_channels="
        f"{m.stem_channels} and model.in_channels={m.in_channels} must all be at least 1",
    )
    _check(
        valid_final_norm(m.final_norm),
        f"model.final_norm={m.final_norm} is not valid; choose one of: true, false, auto",
    )
    _check(cfg.optim is not None and "_target_" in cfg.optim, "optim must name an optimizer: optim=sgd or optim=adamw")
    lr = cfg.optim.get("lr")
    _check(lr is None or lr > 0, f"optim.lr={lr} must be greater than 0 (the seed uses 0.1)")
    mode = cfg.logger.wandb.mode
    _check(mode in WANDB_MODES, f"logger.wandb.mode={mode} is not a W&B mode; choose one of: {', '.join(WANDB_MODES)}")
    mode = cfg.get("compile")
    _check(
        mode is None or mode in COMPILE_MODES,
        f"compile={mode} is not a torch.compile mode; choose one of: {', '.join(COMPILE_MODES)} (or null: eager)",
    )
    epochs = cfg.trainer.max_epochs
    _check(epochs is None or epochs == -1 or epochs >= 1, f"trainer.max_epochs={epochs} must be at least 1")


def run_id() -> str:
    """A name unique to this process: its start time plus a random suffix (two sweeps started in
    the same second get different directories). The same value for every call in one process."""
    global _RUN_ID
    if _RUN_ID is None:
        _RUN_ID = f"{datetime.now():%Y-%m-%d_%H-%M-%S}_{secrets.token_hex(3)}"
    return _RUN_ID


_RUN_ID: str | None = None


def register() -> None:
    """Register the schema and the ``run_id`` resolver (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    if not OmegaConf.has_resolver("run_id"):
        OmegaConf.register_new_resolver("run_id", run_id, use_cache=True)


register()


def compose_config(overrides: list[str] | tuple[str, ...] = (), return_hydra_config: bool = False) -> DictConfig:
    """The composed config for ``overrides``, outside a Hydra run (for tools and tests)."""
    from hydra import compose, initialize_config_dir, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=return_hydra_config)
    path = config_path()
    init = (
        initialize_config_module(path.removeprefix("pkg://"), version_base="1.3")
        if path.startswith("pkg://")
        else initialize_config_dir(path, version_base="1.3")
    )
    with init:
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=return_hydra_config)


def load_config(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """``compose_config`` then ``validate``, for the project's other commands: any bad override,
    unknown key, wrong type or invalid value raises ConfigError with one line."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        cfg = compose_config(overrides)
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError(one_line_error(e)) from None
    validate(cfg)
    return cfg


def config_path() -> str:
    """Where Hydra finds conf/: the installed package ``resnet_exp.conf`` (pyproject maps the
    repository's conf/ there), else the conf/ beside the package in a source checkout."""
    if importlib.util.find_spec("resnet_exp.conf") is not None:
        return "pkg://resnet_exp.conf"
    return str(Path(__file__).resolve().parents[1] / "conf")
