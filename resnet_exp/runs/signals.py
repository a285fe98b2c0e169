"""Stopping a job cleanly on a signal: Ctrl-C, SIGTERM (a scheduler stopping it) and, under submitit
(the SLURM launcher), its preemption signal.

The first signal stops the job at the end of the training batch under way, with a checkpoint of
exactly that point (``StopOnSignal``; at an epoch's last batch without one, as during the evaluation); the same signal a second time stops it at once. After the
checkpoint the preemption signal goes on to submitit's own handler, which requeues the job: it
starts again and resumes from that checkpoint (also when SIGTERM came first).

Requeueing has one owner, submitit: inside a SLURM job Lightning's own auto-requeue is off
(``runs/slurm.cluster_environment``).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from resnet_exp.runs.ddp import agree


def preemption_signal() -> signal.Signals | None:
    """The signal by which submitit announces a preemption or the end of the time limit, where this
    job runs under submitit; None elsewhere."""
    if "SUBMITIT_EXECUTOR" not in os.environ:
        return None
    return getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"), None)


class Signals:
    """The signals one attempt at a job listens to, while it is installed (``with Signals() as s``):
    ``received`` names the first one that came, ``handover`` holds submitit's handler of the
    preemption signal, to be called once the checkpoint is saved. On leaving, the handlers that
    were there before are put back."""

    def __init__(self) -> None:
        self.received = ""
        self.handover: tuple[int, Any] | None = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> Signals:
        wanted = [signal.SIGINT, signal.SIGTERM] + [s for s in [preemption_signal()] if s is not None]
        self.previous = {s: signal.signal(s, self.handle) for s in wanted}
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def handle(self, signum: int, frame: Any) -> None:
        name = f"signal {signal.Signals(signum).name}"
        if self.received.startswith(name) and signum == preemption_signal():
            return  # SLURM's warning again (its timer, and a scancel --signal): the stop is arranged
        if self.received == name:
            raise KeyboardInterrupt(name)
        self.received = self.received or name
        previous = self.previous.get(signum)
        if signum == preemption_signal() and callable(previous):
            self.handover = (signum, previous)

    def stop(self) -> None:
        """Stop the job now: hand over to submitit (which requeues it and exits) where it asked,
        else stop as Ctrl-C does."""
        if self.handover is not None:
            signum, handler = self.handover
            try:
                handler(signum, None)
            except Exception as e:  # submitit did not requeue (out of requeues: max_num_timeout): a stop
                self.received = f"{self.received}; submitit: {str(e).rstrip('.')}"
                raise KeyboardInterrupt(self.received) from e
        raise KeyboardInterrupt(self.received or "stopped with the other processes of the run")


class StopOnSignal(pl.Callback):
    """After a signal: at the end of the training batch under way, save a checkpoint at ``path`` (a
    resume goes on with the next batch of the same epoch) and stop; during the test-set evaluation,
    stop at once (a resume redoes the epoch from the last checkpoint). At an epoch's last training
    batch it stops without a checkpoint, as during the evaluation: Lightning resumes a checkpoint
    of the last batch's end without evaluating that epoch, whose row would be lost, so the resume
    goes on from the newest checkpoint before it instead. In a run on several processes they
    agree after every batch, so that all of them stop at the same one."""

    def __init__(self, signals: Signals, path: Path) -> None:
        self.signals, self.path = signals, path

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if agree(trainer, bool(self.signals.received)):
            if args[-1] + 1 < trainer.num_training_batches:  # not the epoch's last batch
                trainer.save_checkpoint(self.path)
            self.signals.stop()

    def on_validation_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if self.signals.received:
            self.signals.stop()
