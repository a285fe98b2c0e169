"""The job's callbacks from its config: ``callbacks`` (the schema's defaults, ``+callbacks=NAME``
from conf/callbacks/, any ``_target_`` a user adds), each built by Hydra's ``instantiate``.

A config that builds a Lightning callback from its arguments alone (``DivergenceGuard``,
``EarlyStopping``) is instantiated as it is. One that needs the job it serves (its folder, its
data, its W&B run) says ``_partial_: true``: Hydra builds the partial, and it is called here with
the job's ``JobContext``; it returns a callback, a list of them, or None where the config turns it
off (``SignalPropagation.for_job`` and ``diagnostics.signal=false``).

What is the job's life rather than a choice is not here but in fit.py: its checkpoints, the
records they write, the stop on a signal and the console's progress bar. Without them a job could
not resume or say where it stopped.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig


@dataclass(frozen=True)
class JobContext:
    """What a callback built for one job may need of it."""

    cfg: DictConfig  # the job's config, composed and checked
    dir: Path | None  # its folder; None where nothing may be written: the processes of a run on
    # several but the first, and bench's timed path
    datamodule: Any  # the ImageDataModule that serves it (training_images, train_size)
    wandb: Any  # its W&B logger, or None
    resumed_after: int | None  # whole epochs its checkpoint kept; None when it starts from scratch


def job_callbacks(parts: Mapping[str, Any], context: JobContext) -> Iterator[pl.Callback]:
    """Every callback of ``parts`` (the config's ``callbacks``), in its order."""
    for part in parts.values():
        if part is None:  # turned off: callbacks.divergence_guard=null
            continue
        built = instantiate(part)
        if isinstance(built, functools.partial):
            built = built(context)
        if built is None:
            continue
        yield from built if isinstance(built, (list, tuple)) else [built]
