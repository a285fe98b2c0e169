"""One run on several processes (Lightning's DDP), inside a single run or a multirun.

``trainer=ddp`` (conf/trainer/ddp.yaml) trains one job on ``trainer.devices`` processes. Who starts
the processes:

- SLURM (``hydra/launcher=slurm`` with ``tasks_per_node`` equal to the GPUs) or ``torchrun``: they
  start one process per GPU and Lightning joins them; nothing to do here.
- Otherwise Lightning starts processes 1..N-1 itself by running the command line again. Inside a
  Hydra multirun that command line is the whole sweep (Lightning #18175, Hydra #2070), so
  ``single_run_command`` presents the job to Lightning as the single run it is: its own overrides
  and its own directory. After the job, ``single_run_command`` also puts back the environment and
  closes the process group, so that the sweep's next job starts its own processes.

Each process reads its shard of the data (``resnet_exp.data``), ``data.batch_size`` is the batch of
all processes together (the recipe's 256 stays 256), and metrics are reduced over the processes.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.rank_zero import rank_zero_only


def global_rank() -> int:
    """This process's rank in its run (0 alone), from the environment Lightning, SLURM or torchrun set."""
    return int(getattr(rank_zero_only, "rank", 0) or 0)


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


@contextlib.contextmanager
def single_run_command(trainer: pl.Trainer, job_dir: Path, overrides: list[str]) -> Iterator[None]:
    """While Lightning starts this job's other processes: the command line it repeats is this job's
    (``overrides``, written into ``job_dir``), not the sweep's. Afterwards: the environment as it
    was, the process group closed."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import read_write

    launcher = getattr(trainer.strategy, "launcher", None)
    relaunches = type(launcher).__name__ == "_SubprocessScriptLauncher" and trainer.world_size > 1
    hydra = HydraConfig.get() if HydraConfig.initialized() else None
    environ, argv = dict(os.environ), list(sys.argv)
    run_dir = hydra.run.dir if relaunches and hydra is not None else None
    if run_dir is not None:
        sys.argv = [sys.argv[0], *overrides]
        with read_write(hydra):
            hydra.run.dir = str(job_dir)
    try:
        yield
    finally:
        sys.argv = argv
        if run_dir is not None:
            with read_write(hydra):
                hydra.run.dir = run_dir
        if relaunches:
            os.environ.clear()
            os.environ.update(environ)
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()


def agree(trainer: pl.Trainer, flag: bool) -> bool:
    """True on every process if ``flag`` is true on any (a collective: all processes must call it)."""
    if trainer.world_size == 1:
        return flag
    return bool(trainer.strategy.reduce_boolean_decision(flag, all=False))
