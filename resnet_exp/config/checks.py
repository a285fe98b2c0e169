"""The checks no type can express: ranges, combinations, what the data set and Lightning's Trainer
would refuse once a job had started, and the choices that are not names (``choices.py``). Each
failure is a ``ConfigError`` with one line that names the key, the bad value and what is allowed.
"""

from __future__ import annotations

import math
import os
from typing import Any

from omegaconf import DictConfig, OmegaConf

from resnet_exp.config.choices import ACCELERATORS, COMPILE_MODES, FINAL_NORMS, PRECISIONS
from resnet_exp.config.schema import PROJECT_CALLBACKS, Config
from resnet_exp.data import DataError, data_set


class ConfigError(ValueError):
    """A config value that passes type checks but cannot work; the message is one line."""


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


def machine_memory() -> int | None:
    """This machine's memory in bytes (None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def bytes_text(n: float) -> str:
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
    if d.pipeline != "torchvision":  # the data set resized once, held whole (uint8) where it trains
        size = d.resize or spec.size
        need = (spec.train_images + spec.test_images) * spec.channels * size * size
        have = machine_memory()
        _check(
            have is None or need <= have,
            f"data.resize={d.resize} needs {bytes_text(need)} to hold {spec.title}'s "
            f"{spec.train_images + spec.test_images:,} images resized once (data.pipeline={d.pipeline}), and this "
            f"machine has {bytes_text(have or 0)}; choose a smaller data.resize (the seed uses 96), or "
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
    n = cfg.evaluation.precise_bn_batches
    _check(
        0 <= n * d.batch_size <= train_images,
        f"evaluation.precise_bn_batches={n} must be from 0 (off) to {train_images // d.batch_size} "
        f"batches of {d.batch_size} training images",
    )
    size = cfg.diagnostics.probe_size
    _check(1 <= size <= train_images, f"diagnostics.probe_size={size} must be from 1 to {train_images} training images")
    mode = cfg.get("compile")
    _check(
        mode is None or mode in COMPILE_MODES,
        f"compile={mode} is not a torch.compile mode; choose one of: {_choices(COMPILE_MODES)} (or null: eager)",
    )
    for name in PROJECT_CALLBACKS:
        _check(
            name in cfg.callbacks,
            f"callbacks.{name} was removed; set callbacks.{name}=null to turn it off, so that the job's "
            "saved config says it ran without it",
        )
    for key, parts in (("callbacks", cfg.callbacks), ("logger.others", cfg.logger.others)):
        for name, part in parts.items():
            if part is None and key == "callbacks":
                continue  # turned off
            _check(
                isinstance(part, DictConfig) and isinstance(part.get("_target_"), str),
                f"{key}.{name} must be a config with a _target_ (the class to build, e.g. "
                "pytorch_lightning.callbacks.EarlyStopping); see conf/callbacks/ and conf/logger/",
            )
            every = part.get("every", 1) if part["_target_"].startswith("resnet_exp.") else 1  # the project's: N steps
            _check(
                isinstance(every, int) and not isinstance(every, bool) and every >= 1,
                f"{key}.{name}.every={every} must be a whole number of steps, at least 1",
            )
            monitor = str(part.get("monitor", ""))
            _check(
                not monitor.startswith("val/") or d.val_size > 0,
                f"{key}.{name}.monitor={monitor} needs a validation split: set data.val_size (e.g. 5000 "
                "training images held out)",
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
