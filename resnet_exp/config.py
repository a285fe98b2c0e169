"""The config: typed schema in Hydra's ConfigStore, the choices each part offers, and the checks no
type can express. A leaf: it imports no torch and no Lightning, so bad input is refused in the time
Hydra and OmegaConf take to load, before torch is imported at all.

Hydra merges ``conf/`` onto the ``Config`` schema below, so a mistyped key or a value of the wrong
type fails at composition. ``validate`` checks what types cannot (choices, ranges, what the data
and the Trainer would refuse later) and raises ``ConfigError`` with one line that names the bad
value and the valid choices. The components take their choices from here (``blocks.py`` implements
exactly ``ORDERINGS``, ...; the data wing's face holds its own, ``PIPELINES``), so each rule is written once.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from resnet_exp.data import PIPELINES, DataError, data_set

# --- the choices each part offers ------------------------------------------------------------
# block.order: the five residual units of He et al. 2016, Fig. 4 (a)-(e); blocks.py defines one
# class per name.
ORDERINGS = ("post", "bn_after_add", "relu_before_add", "relu_only_pre", "pre")
SHORTCUTS = ("projection", "none")
# Where a pre-activation unit's projection shortcut takes its input: relu(x) of the unit's input
# (the seed), or the output of the BN-ReLU that the unit shares with its residual branch (the
# paper's code, and timm's resnetv2).
PROJECTION_INPUTS = ("relu", "preact")
# model.final_norm: a BN-ReLU after the last unit; auto: for pre-activation orderings only.
FINAL_NORMS = (True, False, "auto")
# model.stem: the seed's (conv7x7/2, BN, ReLU, max-pool 3/2) or small, He et al.'s stem for 32 px
# images (conv3x3/1, BN, ReLU, no pool; their 2015 paper, Sec. 4.2), for images at their own size.
STEMS = ("seed", "small")
WANDB_MODES = ("online", "offline", "disabled")
# torch.compile's modes for the network (``compile=MODE``); reduce-overhead captures CUDA graphs.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
# trainer.precision: Lightning's values, and auto (hardware.py decides).
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true",
              "32", "16", "bf16", "64", 32, 16, 64)  # fmt: skip
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")


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
    in_channels: int = "${data_channels:${data.name}}"  # the data set's (resnet_exp.data.DATA_SETS)
    final_norm: Any = False
    stem: str = "seed"


@dataclass
class DataConfig:
    name: str = "fashion_mnist"  # a data set of resnet_exp.data.DATA_SETS (config group data=NAME)
    root: Optional[str] = None
    cache_dir: str = "~/.cache/resnet-exp"
    download: bool = True
    resize: Optional[int] = 96  # null: the data set's own size, not resized
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
    # Loggers beside metrics.csv and W&B, by name, each a ``_target_`` config that Hydra
    # instantiates (a Lightning Logger): logger=tensorboard adds one (conf/logger/).
    others: dict[str, Any] = field(default_factory=dict)


# Lightning's Trainer arguments that the project sets itself; every other one is a key under
# `trainer.` (use_distributed_sampler: the data module shards the data per process itself).
MANAGED_TRAINER_ARGS = (
    "logger",
    "callbacks",
    "plugins",
    "default_root_dir",
    "model_registry",
    "use_distributed_sampler",
)


@dataclass
class TrainerConfig:
    """Every argument of Lightning's ``Trainer`` (pytorch-lightning 2.6) but the managed ones, with
    Lightning's defaults; written out rather than read from Lightning, so that composing a config
    needs no Lightning import (a test holds it to the installed Trainer's signature)."""

    accelerator: Any = "auto"
    strategy: Any = "auto"
    devices: Any = "auto"
    num_nodes: Any = 1
    precision: Any = None
    fast_dev_run: Any = False
    max_epochs: Any = None
    min_epochs: Any = None
    max_steps: Any = -1
    min_steps: Any = None
    max_time: Any = None
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    limit_test_batches: Any = None
    limit_predict_batches: Any = None
    overfit_batches: Any = 0.0
    val_check_interval: Any = None
    check_val_every_n_epoch: Any = 1
    num_sanity_val_steps: Any = None
    log_every_n_steps: Any = None
    enable_checkpointing: Any = None
    enable_progress_bar: Any = None
    enable_model_summary: Any = None
    accumulate_grad_batches: Any = 1
    gradient_clip_val: Any = None
    gradient_clip_algorithm: Any = None
    deterministic: Any = None
    benchmark: Any = None
    inference_mode: Any = True
    profiler: Any = None
    detect_anomaly: Any = False
    barebones: Any = False
    sync_batchnorm: Any = False
    reload_dataloaders_every_n_epochs: Any = 0
    enable_autolog_hparams: Any = True


# loss.reduction: batch_size (the seed's recipe, MXNet's trainer.step(batch_size): the summed loss
# divided by data.batch_size, so the last, partial batch of an epoch takes a step 96/256 as long)
# or mean (PyTorch's mean over each batch: a full step on every batch, the partial one included;
# the project's default until experiments/seed_gap showed it is not the seed's).
LOSS_REDUCTIONS = ("batch_size", "mean")
# Precise BN's default: 40 batches of 256 (17% of an epoch's images, about 5% of its time), the number
# experiments/seed_gap ran.
PRECISE_BN_BATCHES = 40


@dataclass
class LossConfig:
    reduction: str = "batch_size"


@dataclass
class EvaluationConfig:
    # BatchNorm statistics recomputed over this many training batches before each evaluation, the
    # same weights also evaluated with the running averages (*_running); 0: running averages only
    precise_bn_batches: int = PRECISE_BN_BATCHES


# Keys whose default changed after they were added: the default they had first. A job saved before
# the project had the key ran with that value (not with today's default), which is what a report
# and a resume read for it.
FIRST_DEFAULTS = {"loss.reduction": "mean", "evaluation.precise_bn_batches": 0}


@dataclass
class DiagnosticsConfig:
    signal: bool = True  # signal propagation per residual unit (diagnostics.py), into signal.csv
    probe_size: int = 256  # training images in its fixed probe batch


@dataclass
class Config:
    block: BlockConfig = field(default_factory=BlockConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: Any = None
    scheduler: Any = None
    trainer: Any = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    # Lightning callbacks beside the job's own (checkpoints, the resume records, the divergence
    # guard, the stop on a signal, the signal probe), by name, each a ``_target_`` config that Hydra
    # instantiates: +callbacks=early_stopping adds one (conf/callbacks/).
    callbacks: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    output_dir: str = "outputs"
    force_resume: bool = False
    compile: Optional[str] = None


def processes(trainer: Any) -> int | None:
    """How many processes a run with these ``trainer.*`` settings uses, where the config alone says
    (``devices`` a number or a list, times ``num_nodes``); None where it depends on the machine
    (``devices=auto`` or -1)."""
    strategy, devices = str(trainer.get("strategy", "auto")), trainer.get("devices", "auto")
    if not strategy.startswith("ddp"):
        return 1
    if isinstance(devices, int) and devices > 0:
        count = devices
    elif isinstance(devices, str) and devices not in ("auto", "-1"):
        count = len([d for d in devices.split(",") if d.strip()]) if "," in devices else int(devices)
    elif not isinstance(devices, (int, str)):  # a list of device indices
        count = len(devices)
    else:
        return None
    return count * int(trainer.get("num_nodes", 1) or 1)


def final_norm_ok(value: object) -> bool:
    """``model.final_norm`` is true, false or "auto" (and not 1 or 0, which compare equal to bools)."""
    return value is True or value is False or value == "auto"


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


# Config groups that are not keys of the schema (their options are whole presets or Hydra's own).
GROUPS_WITHOUT_KEYS = ("experiment", "hydra/launcher")


def override_key(override: str) -> str:
    """The key of a command-line override: ``+optim.bogus=1`` -> ``optim.bogus``."""
    return override.split("=", 1)[0].lstrip("+~")


def _known_names() -> list[str]:
    """Every key of the schema, dotted (``block.order``), with the names of its groups and the
    groups that set no key of their own: what a command line may name."""

    def dotted(tree: dict, prefix: str = "") -> list[str]:
        keys = []
        for key, value in tree.items():
            keys += dotted(value, f"{prefix}{key}.") if isinstance(value, dict) and value else [f"{prefix}{key}"]
        return keys

    keys = dotted(OmegaConf.to_container(OmegaConf.structured(Config)))
    return list(dict.fromkeys([*(k.split(".")[0] for k in keys), *keys, *GROUPS_WITHOUT_KEYS]))


def _neighbours(name: str) -> tuple[str, list[str]]:
    """Where a mistyped ``name`` belongs and the names there: the keys of its group where it names a
    real group (``data.bogus``: the keys of data), else the top-level names."""
    known = _known_names()
    group, _, _ = name.rpartition(".")
    if group and any(k.startswith(f"{group}.") for k in known):
        return f"the keys of {group}", [k for k in known if k.rpartition(".")[0] == group]
    if group:
        return "the keys", [k for k in known if "." in k]
    return "the groups and top-level keys", [k for k in known if "." not in k]


def nearest_name(name: str) -> str | None:
    """The config group or key nearest to a mistyped ``name`` (``optimizer`` -> ``optim``,
    ``blocks.order`` -> ``block.order``, ``trainer.max_epoch`` -> ``trainer.max_epochs``), or None
    where none is close."""
    import difflib

    _, candidates = _neighbours(name)
    # a name that the other begins with (optimizer, optim), then the closest spelling
    stem = [c for c in candidates if min(len(c), len(name)) >= 4 and (name.startswith(c) or c.startswith(name))]
    found = stem or difflib.get_close_matches(name, candidates, n=1, cutoff=0.75)
    return found[0] if found else None


def with_hint(message: str, overrides: list[str]) -> str:
    """Hydra's "Could not override 'X'" for a key or group that does not exist, with the nearest
    real one in place of its advice to append the key with ``+`` (the project refuses unknown
    keys): ``Could not override 'optimizer': there is no such config group or key; did you mean
    optim=adamw?``; where none is near, the names there."""
    import re

    found = re.match(r"(?:ConfigCompositionException: )?Could not override '([^']+)'", message)
    if not found:
        return message
    name = found.group(1)
    near = nearest_name(name)
    value = next((o.split("=", 1)[1] for o in overrides if "=" in o and override_key(o) == name), None)
    if near is None:
        where, names = _neighbours(name)
        return (
            f"Could not override '{name}': there is no such config group or key; {where} are: {', '.join(names)} "
            "(python -m resnet_exp.run --help)"
        )
    suggestion = f"{near}={value}" if value is not None else near
    return f"Could not override '{name}': there is no such config group or key; did you mean {suggestion}?"


def config_groups() -> list[str]:
    """The config groups of conf/ (``model``, ``experiment``, ``hydra/launcher``, ...), from its folders."""
    import importlib.resources

    path = config_path()
    root = importlib.resources.files(path.removeprefix("pkg://")) if path.startswith("pkg://") else Path(path)
    groups = []
    for entry in root.iterdir():
        if entry.is_dir() and not entry.name.startswith(("_", ".")):
            groups += (
                [f"{entry.name}/{sub.name}" for sub in entry.iterdir() if sub.is_dir()]
                if entry.name == "hydra"
                else [entry.name]
            )
    return sorted(groups)


def group_options(group: str) -> list[str]:
    """The options Hydra has for config group ``group`` (conf/'s and the plugins')."""
    from hydra.core.global_hydra import GlobalHydra

    with hydra_initialized():
        return sorted(GlobalHydra.instance().config_loader().get_group_options(group))


@contextlib.contextmanager
def hydra_initialized() -> Iterator[None]:
    """Hydra initialised with conf/ for the project's tools and checks outside a Hydra run (as it
    already is, inside one)."""
    from hydra import initialize_config_dir, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        yield
        return
    path = config_path()
    init = (
        initialize_config_module(path.removeprefix("pkg://"), version_base="1.3")
        if path.startswith("pkg://")
        else initialize_config_dir(path, version_base="1.3")
    )
    with init:
        yield


def path_choice(overrides: list[str]) -> str | None:
    """The one-line error for a config group's choice that is a path (``experiment=../../tmp/x``,
    ``model=/tmp/x``): Hydra would load that file as the group's option. A choice is a name of the
    group's folder, or of the group's folder in a ``--config-dir`` the user gives; None where every
    choice is a name."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    groups = config_groups()
    for arg in overrides:
        key = override_key(arg)
        if arg.startswith("-") or "=" not in arg or key not in groups and "/" not in key:
            continue
        try:
            (o,) = OverridesParser.create().parse_overrides([arg])
            values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.get_value_element_as_str()]
        except HydraException:  # malformed: Hydra's own message says how
            continue
        for value in values:
            if value.startswith(("/", "~")) or ".." in value.replace("\\", "/").split("/"):
                return (
                    f"{key}={value} is a path, not a choice of {key}; choose one of: {', '.join(group_options(key))} "
                    f"(a preset of your own: --config-dir DIR, with DIR/{key}/NAME.yaml, then {key}=NAME)"
                )
    return None


def machine_memory() -> int | None:
    """This machine's memory in bytes (None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} PB"


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _choices(values: tuple) -> str:
    return ", ".join(str(v).lower() if isinstance(v, bool) else str(v) for v in values)


def validate(cfg: DictConfig) -> None:
    """Check what the schema's types cannot; raise ConfigError naming the value and the fix."""
    unknown = unknown_key(cfg, Config)
    if unknown:
        key, known = unknown
        raise ConfigError(f"{key} is not a config key; the keys there are: {', '.join(known)}")
    b = cfg.block
    _check(b.order in ORDERINGS, f"block.order={b.order} is not a known ordering; choose one of: {_choices(ORDERINGS)}")
    _check(
        b.shortcut in SHORTCUTS, f"block.shortcut={b.shortcut} is not a shortcut; choose one of: {_choices(SHORTCUTS)}"
    )
    _check(
        b.projection_input in PROJECTION_INPUTS,
        f"block.projection_input={b.projection_input} is not valid; choose one of: {_choices(PROJECTION_INPUTS)}",
    )
    d = cfg.data
    try:
        spec = data_set(d.name)
    except DataError as e:
        raise ConfigError(str(e)) from None
    _check(
        0 <= d.val_size < spec.train_images,
        f"data.val_size={d.val_size} must be from 0 (no validation split, the seed's recipe) to "
        f"{spec.train_images - 1} training images held out",
    )
    train_images = spec.train_images - d.val_size
    _check(d.batch_size >= 1, f"data.batch_size={d.batch_size} must be a whole number of at least 1")
    _check(
        d.batch_size <= train_images,
        f"data.batch_size={d.batch_size} is more than the {train_images} training images; "
        f"choose at most {train_images}",
    )
    count = processes(cfg.trainer)
    _check(
        count is None or d.batch_size % count == 0,
        f"data.batch_size={d.batch_size} cannot be split evenly over {count} processes "
        f"(trainer.devices x trainer.num_nodes); choose a multiple of {count}",
    )
    _check(
        d.resize is None or d.resize >= 1,
        f"data.resize={d.resize} must be a size in pixels of at least 1 (the seed uses 96), or null (the data "
        f"set's own {spec.size} px)",
    )
    _check(
        d.pipeline in PIPELINES, f"data.pipeline={d.pipeline} is not a pipeline; choose one of: {_choices(PIPELINES)}"
    )
    if d.pipeline != "torchvision":  # the data set resized once, held whole (uint8) where it trains
        size = d.resize or spec.size
        need = (spec.train_images + spec.test_images) * spec.channels * size * size
        have = machine_memory()
        _check(
            have is None or need <= have,
            f"data.resize={d.resize} needs {_bytes(need)} to hold {spec.title}'s "
            f"{spec.train_images + spec.test_images:,} images resized once (data.pipeline={d.pipeline}), and this "
            f"machine has {_bytes(have or 0)}; choose a smaller data.resize (the seed uses 96), or "
            "data.pipeline=torchvision (each batch resized as it is served)",
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
    classes = len(spec.classes)
    _check(
        m.num_classes >= classes,
        f"model.num_classes={m.num_classes} cannot hold {spec.title}'s {classes} classes (labels 0-{classes - 1}); "
        f"use {classes}",
    )
    _check(
        m.in_channels == spec.channels,
        f"model.in_channels={m.in_channels} does not match {spec.title}'s {spec.channels}-channel ({spec.colour}) "
        f"images; use {spec.channels} (the default takes the data set's)",
    )
    _check(m.stem in STEMS, f"model.stem={m.stem} is not a stem; choose one of: {_choices(STEMS)}")
    _check(
        final_norm_ok(m.final_norm),
        f"model.final_norm={m.final_norm} is not valid; choose one of: {_choices(FINAL_NORMS)}",
    )
    _check(cfg.optim is not None and "_target_" in cfg.optim, "optim must name an optimizer: optim=sgd or optim=adamw")
    lr = cfg.optim.get("lr")
    _check(
        lr is None or (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0),
        f"optim.lr={lr} must be a finite number greater than 0 (the seed uses 0.1)",
    )
    _check(0 <= cfg.seed < 2**32, f"seed={cfg.seed} must be from 0 to {2**32 - 1}")
    reduction = cfg.loss.reduction
    _check(
        reduction in LOSS_REDUCTIONS,
        f"loss.reduction={reduction} is not valid; choose one of: {_choices(LOSS_REDUCTIONS)}",
    )
    n = cfg.evaluation.precise_bn_batches
    _check(
        0 <= n * d.batch_size <= train_images,
        f"evaluation.precise_bn_batches={n} must be from 0 (off) to {train_images // d.batch_size} "
        f"batches of {d.batch_size} training images",
    )
    size = cfg.diagnostics.probe_size
    _check(1 <= size <= train_images, f"diagnostics.probe_size={size} must be from 1 to {train_images} training images")
    mode = cfg.logger.wandb.mode
    _check(mode in WANDB_MODES, f"logger.wandb.mode={mode} is not a W&B mode; choose one of: {_choices(WANDB_MODES)}")
    mode = cfg.get("compile")
    _check(
        mode is None or mode in COMPILE_MODES,
        f"compile={mode} is not a torch.compile mode; choose one of: {_choices(COMPILE_MODES)} (or null: eager)",
    )
    for key, parts in (("callbacks", cfg.callbacks), ("logger.others", cfg.logger.others)):
        for name, part in parts.items():
            _check(
                isinstance(part, DictConfig) and isinstance(part.get("_target_"), str),
                f"{key}.{name} must be a config with a _target_ (the class to build, e.g. "
                "pytorch_lightning.callbacks.EarlyStopping); see conf/callbacks/ and conf/logger/",
            )
    validate_trainer(cfg.trainer)
    validate_numbers(cfg)


def validate_numbers(cfg: DictConfig) -> None:
    """One rule for every number of the config (optim.*, scheduler.*, trainer.*, any key a preset
    adds): NaN and infinity are refused, where a library would take them and train on garbage
    (``optim.momentum=nan`` trains, and diverges at its third step)."""

    def walk(node: Any, prefix: str) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            name = f"{prefix}.{key}" if isinstance(key, str) else f"{prefix}[{key}]"
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{name.lstrip('.')}={value} must be a finite number")
            walk(value, name)

    walk({k: v for k, v in OmegaConf.to_container(cfg, resolve=False).items() if k != "hydra"}, "")


def unknown_key(node: Any, schema: type, prefix: str = "") -> tuple[str, list[str]] | None:
    """The first key of ``node`` that the ``schema`` dataclass (and the dataclasses of its fields'
    defaults) does not have, with the keys it does have; None if there is none. ``+key=value``
    adds keys that Hydra's own check lets through."""
    fields = schema.__dataclass_fields__
    for key in node:
        if key == "hydra" and not prefix:
            continue
        if key not in fields:
            return f"{prefix}{key}", list(fields)
        factory = fields[key].default_factory
        sub = factory() if callable(factory) else None
        if hasattr(sub, "__dataclass_fields__") and isinstance(node[key], DictConfig):
            found = unknown_key(node[key], type(sub), f"{prefix}{key}.")
            if found:
                return found
    return None


def validate_trainer(t: DictConfig) -> None:
    """What Lightning's Trainer would refuse once the job has started, refused here instead."""
    epochs = t.max_epochs
    for key in ("max_epochs", "min_epochs", "max_steps", "min_steps", "num_sanity_val_steps", "log_every_n_steps",
                "check_val_every_n_epoch", "reload_dataloaders_every_n_epochs"):  # fmt: skip
        value = t.get(key)
        _check(
            value is None or (isinstance(value, int) and not isinstance(value, bool)),
            f"trainer.{key}={value} must be a whole number",
        )
    for key in ("limit_train_batches", "limit_val_batches", "limit_test_batches", "limit_predict_batches",
                "overfit_batches", "val_check_interval", "gradient_clip_val"):  # fmt: skip
        value = t.get(key)
        _check(
            value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)),
            f"trainer.{key}={value} must be a number"
            + ("" if key == "gradient_clip_val" else " (a count of batches, or a fraction of them)"),
        )
    _check(epochs is None or epochs == -1 or epochs >= 1, f"trainer.max_epochs={epochs} must be at least 1")
    batches = t.limit_train_batches
    _check(
        batches is None or not (isinstance(batches, (int, float)) and batches == 0),
        f"trainer.limit_train_batches={batches} trains nothing; give a number of batches (e.g. 20) or a fraction "
        "of the epoch (e.g. 0.1)",
    )
    accumulate = t.accumulate_grad_batches
    _check(
        isinstance(accumulate, int) and not isinstance(accumulate, bool) and accumulate >= 1,
        f"trainer.accumulate_grad_batches={accumulate} must be a whole number of at least 1 (1: a step every batch)",
    )
    _check(
        t.precision is None or t.precision in PRECISIONS,
        f"trainer.precision={t.precision} is not a precision; choose one of: {_choices(PRECISIONS[:7])}",
    )
    accelerator = str(t.accelerator)
    _check(
        accelerator in ACCELERATORS,
        f"trainer.accelerator={accelerator} is not available here; choose one of: {_choices(ACCELERATORS)}",
    )
    devices = t.devices
    count = devices if isinstance(devices, int) and not isinstance(devices, bool) else None
    if isinstance(devices, str) and devices.lstrip("-").isdigit():
        count = int(devices)
    _check(
        count is None or count >= 1 or count == -1,
        f"trainer.devices={devices} must be at least 1 (or -1 or auto: every device there is, or a list of device "
        "indices)",
    )
    if not str(t.strategy).startswith("ddp"):
        _check(
            devices in ("auto", 1, "1", -1, "-1") or (not isinstance(devices, (int, str)) and len(devices) == 1),
            f"trainer.devices={devices} needs a run on several processes: use trainer=ddp (DDP on "
            "trainer.devices devices), or trainer.devices=1",
        )


def run_id() -> str:
    """A name unique to this process: its start time plus a random suffix (two sweeps started in
    the same second get different directories). The same value for every call in one process."""
    global _RUN_ID
    if _RUN_ID is None:
        _RUN_ID = f"{datetime.now():%Y-%m-%d_%H-%M-%S}_{secrets.token_hex(3)}"
    return _RUN_ID


_RUN_ID: str | None = None


def register() -> None:
    """Register the schema and the ``run_id`` and ``data_channels`` resolvers (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    if not OmegaConf.has_resolver("run_id"):
        OmegaConf.register_new_resolver("run_id", run_id, use_cache=True)
    if not OmegaConf.has_resolver("data_channels"):  # model.in_channels: the data set's
        OmegaConf.register_new_resolver("data_channels", lambda name: data_set(name).channels)


# At import, not on a call: Hydra's launchers start job processes (joblib, submitit) that import
# the task's module and compose or resolve configs there; the schema and the run_id resolver must
# exist in every process that imports the project. Registering is idempotent and touches nothing
# but Hydra's config store and OmegaConf's resolvers.
register()


def compose_config(overrides: list[str] | tuple[str, ...] = (), return_hydra_config: bool = False) -> DictConfig:
    """The composed config for ``overrides``, outside a Hydra run (for tools and tests)."""
    from hydra import compose

    with hydra_initialized():
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
