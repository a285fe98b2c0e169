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

Each process reads its shard of the data (``resnet_exp.data.sampling``), ``data.batch_size`` is the batch of
all processes together (the recipe's 256 stays 256), and metrics are reduced over the processes.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from resnet_exp.config import processes  # noqa: F401  (what a run's processes are: the config says)
from resnet_exp.library_internals import relaunches_processes

if TYPE_CHECKING:
    import pytorch_lightning as pl

# Where the launchers put a process's rank (Lightning reads the same, in this order).
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def global_rank() -> int:
    """This process's rank in its run (0 alone), from the environment Lightning, SLURM or torchrun
    set; without importing Lightning, so that the sweep's checks stay light."""
    for name in RANK_VARIABLES:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


@contextlib.contextmanager
def single_run_command(trainer: pl.Trainer, job_dir: Path, overrides: list[str]) -> Iterator[None]:
    """While Lightning starts this job's other processes: the command line it repeats is this job's
    (``overrides``, written into ``job_dir``), not the sweep's. Afterwards: the environment as it
    was, the process group closed."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import read_write

    relaunches = relaunches_processes(trainer)
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
            import torch

            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()


def agree(trainer: pl.Trainer, flag: bool) -> bool:
    """True on every process if ``flag`` is true on any (a collective: all processes must call it)."""
    if trainer.world_size == 1:
        return flag
    return bool(trainer.strategy.reduce_boolean_decision(flag, all=False))
