"""A job's life, with one owner: its directory, the one process that trains it, its records.

A job directory holds ``status.json``: ``running``, ``completed`` (with the final metrics),
``failed`` (with the error), ``diverged`` (at which epoch and step) or ``interrupted``, with the
host, process and times of the latest attempt. ``Job`` is its only writer:

- **One writer.** ``Job.lock`` takes an OS file lock on ``.lock`` in the directory while a process
  trains the job (released on any exit, so a crashed job leaves no stale lock); a second process
  finds it held and skips the job (``JobBusy``, naming the holder's host and process).
- **Resume.** A job found ``completed`` or ``diverged`` is skipped when its sweep runs again; any
  other resumes from its newest readable checkpoint (``last.ckpt`` at the end of every epoch,
  ``interrupted.ckpt`` from mid-epoch, else ``best.ckpt``); one that cannot be read is named and
  passed over. Checkpoints and records are written atomically and flushed to the disk
  (``AtomicCheckpointIO`` and ``records.atomic_write``, both through ``records.replacing``): a kill or
  a full disk leaves the last good one.
- **Records that do not lie.** Every checkpoint carries the rows of ``metrics.csv`` so far
  (``CheckpointRecords``), and a resume rewrites the file from them: each epoch once, none missing.
  Every attempt's end, whatever it is, lands in ``status.json`` (``Job.attempt``).

A job whose saved config differs from the new one is refused, unless the user forces it
(``force_resume=true``).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import Logger
from pytorch_lightning.plugins import TorchCheckpointIO
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from resnet_exp.library_internals import checkpoint_progress
from resnet_exp.runs.records import (
    BEST_CKPT,
    CHECKPOINTS,
    INTERRUPTED_CKPT,
    LAST_CKPT,
    LOCK_FILE,
    METRICS_FILE,
    STATUS_FILE,
    JobBusy,
    JobError,
    describe,
    read_metrics,
    read_status,
    replacing,
    set_aside,
    write_csv,
    write_status,
)

log = logging.getLogger("resnet_exp")


class Diverged(RuntimeError):
    """The training loss became NaN or infinite: at ``step`` where the divergence guard saw it, or,
    with the guard off (``step`` None), in the epoch whose training loss says so."""

    def __init__(self, epoch: int, step: int | None) -> None:
        where = f"step {step}" if step is not None else "found at the epoch's end (callbacks.divergence_guard was off)"
        super().__init__(f"diverged at epoch {epoch}, {where}")
        self.epoch, self.step = epoch, step


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, made atomic: each file is written beside its place and moved
    there in one step, so a kill leaves the previous checkpoint or the new one, never half of one."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        with replacing(Path(path)) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)


@dataclass
class Resume:
    """Where a job goes on: the checkpoint (None: from scratch), the whole epochs it holds, the
    batches of the next epoch already trained, and metrics.csv's rows up to there."""

    checkpoint: Path | None = None
    epochs: int = 0
    batches: int = 0
    rows: list[dict[str, float]] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


def _progress(ckpt: dict[str, Any], name: str) -> tuple[int, int]:
    """(whole epochs, batches of the next epoch) that a checkpoint holds: the project's own record
    of it (``CheckpointRecords``). Checkpoints written before that record existed are read from
    Lightning's loop state (``library_internals.checkpoint_progress``): a checkpoint saved at the end of a
    training batch (interrupted.ckpt) holds that batch processed but not yet completed."""
    if "progress" in ckpt:
        return int(ckpt["progress"]["epochs"]), int(ckpt["progress"]["batches"])
    epoch, batches = checkpoint_progress(ckpt)
    if name != INTERRUPTED_CKPT or batches == 0:  # saved at the end of that epoch
        return epoch + 1, 0
    return epoch, batches


class JobMetrics(Logger):
    """The job's ``metrics.csv``, one row per epoch, rewritten whole and atomically at every row
    (ten rows: nothing to save by appending). Resuming, it starts from the rows the checkpoint
    carries (``Resume.rows``), so an epoch logged after that checkpoint, or a row lost from the
    file, cannot end up twice or missing."""

    def __init__(self, job_dir: Path, rows: list[dict[str, float]] = ()) -> None:
        super().__init__()
        self.path = Path(job_dir) / METRICS_FILE
        self.rows = [dict(r) for r in rows]
        self.between: dict[str, float] = {}
        self._write()

    @property
    def name(self) -> str:
        return "metrics"

    @property
    def version(self) -> str:
        return ""

    @property
    def save_dir(self) -> str:
        return str(self.path.parent)

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass  # the job's config.yaml holds them

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        row = {k: float(v) for k, v in metrics.items()}
        if "epoch" not in row:
            # a callback's value logged between the epochs' rows (+callbacks=lr_monitor, at an
            # epoch's start): it joins the row of the epoch it was logged in, one row an epoch (the
            # last value of a key logged more than once; one logged after the last epoch's row, or
            # in an epoch that did not end, has no row: metrics.csv holds whole epochs)
            self.between.update(row)
            return
        row = {**self.between, **row}
        self.between = {}
        if step is not None:
            row["step"] = float(step)
        self.rows.append(row)
        self._write()

    def _write(self) -> None:
        if not self.rows:
            self.path.unlink(missing_ok=True)
            return
        keys = sorted(dict.fromkeys(k for row in self.rows for k in row))
        write_csv(self.path, keys, self.rows)


class SilentLogger(Logger):
    """The logger of a process that writes none of the job's files (in a run on several processes,
    every one but the first): Lightning's callbacks that need a logger in every process
    (``+callbacks=lr_monitor``'s LearningRateMonitor) find one; what it is given, the first
    process's loggers record."""

    @property
    def name(self) -> str:
        return "silent"

    @property
    def version(self) -> str:
        return ""

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        pass


def checkpoint_callbacks(folder: Path, monitor: str) -> list[ModelCheckpoint]:
    """The job's two checkpoints, each overwritten in place (no -v1 copies): ``best.ckpt``, the
    epoch of highest ``monitor``; ``last.ckpt``, every finished epoch whatever ``monitor`` did
    (``save_last=True`` on the first one would skip the epochs where it did not improve)."""
    best = ModelCheckpoint(
        dirpath=folder, filename="best", monitor=monitor, mode="max", save_top_k=1, enable_version_counter=False
    )
    last = ModelCheckpoint(dirpath=folder, filename="last", monitor=None, save_top_k=1, enable_version_counter=False)
    return [best, last]


class CheckpointRecords(pl.Callback):
    """Puts into every checkpoint what a resume needs of the job's own records: metrics.csv's rows
    so far (``metrics_rows``: a resume rewrites the file exactly as it stood there) and how far
    training had got (``progress``: whole epochs, and batches of the epoch under way)."""

    def __init__(self, metrics: JobMetrics | None) -> None:
        self.metrics = metrics
        self.batches, self.epoch_done = 0, False

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.epoch_done = False

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        self.batches = args[-1] + 1  # batch_idx, counted from the epoch's start, also after a resume

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # a checkpoint written after the epoch's evaluation holds the whole epoch
        self.epoch_done = self.epoch_done or (
            not trainer.sanity_checking and self.batches >= trainer.num_training_batches
        )

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.epoch_done = True

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        checkpoint["metrics_rows"] = [dict(r) for r in self.metrics.rows] if self.metrics is not None else []
        epoch = trainer.current_epoch
        done = {"epochs": epoch + 1, "batches": 0} if self.epoch_done else {"epochs": epoch, "batches": self.batches}
        checkpoint["progress"] = done


class Job:
    """One job directory and the attempt of this process to train it (see the module's text).
    ``writer=False`` (the other processes of a DDP run): it reads but never writes or locks."""

    def __init__(self, directory: Path, writer: bool = True) -> None:
        self.dir = Path(directory)
        self.writer = writer
        self.fields: dict[str, Any] = {}
        self._lock: Any = None

    # --- one writer -------------------------------------------------------------------------
    def lock(self) -> None:
        """Take the job's lock, or raise JobBusy naming the process that holds it."""
        if not self.writer:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.dir / LOCK_FILE, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise JobBusy(f"{self.dir} is being trained by {holder}; skipped here") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"host {socket.gethostname()}, process {os.getpid()} (since {now()})\n")
        handle.flush()
        self._lock = handle  # held until unlock() or the process ends, however it ends

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file releases the lock
            self._lock = None

    @contextlib.contextmanager
    def locked(self) -> Iterator[Job]:
        self.lock()
        try:
            yield self
        finally:
            self.unlock()

    # --- records ----------------------------------------------------------------------------
    @property
    def status(self) -> dict[str, Any]:
        return read_status(self.dir)

    def record(self, status: str, **fields: Any) -> None:
        """Replace status.json: ``status``, this attempt's fields, then ``fields``."""
        if self.writer:
            self.dir.mkdir(parents=True, exist_ok=True)
            write_status(self.dir, status=status, **{**self.fields, **fields})

    @contextlib.contextmanager
    def attempt(self, epoch: Callable[[], int], interruption: Callable[[], str], **fields: Any) -> Iterator[Job]:
        """One attempt at training: recorded ``running`` now, and whatever ends it recorded too:
        ``diverged``, ``interrupted`` (Ctrl-C, SIGTERM, a requeue: ``interruption()`` says which) or
        ``failed`` (with the error and its traceback), before the exception goes on. ``epoch()``
        gives the epoch (from 1) under way; ``completed`` is the caller's to record."""
        self.fields = {"host": socket.gethostname(), "pid": os.getpid(), "started": now(), **fields}
        previous = self.status
        if previous.get("status") == "unknown" and self.writer:  # status.json cannot be read
            aside = set_aside(self.dir / STATUS_FILE)
            previous = {"wandb_id": self.wandb_run_on_disk()}
            log.warning("%s cannot be read; kept as %s, the job goes on from its newest checkpoint%s",
                        self.dir / STATUS_FILE, aside,
                        f" and W&B run {previous['wandb_id']}" if previous["wandb_id"] else "")  # fmt: skip
        if previous.get("wandb_id") and "wandb_id" not in self.fields:
            self.fields["wandb_id"] = previous["wandb_id"]  # the W&B run it continues, kept until known
        self.record("running")
        self.clear_half_written()
        try:
            yield self
        except Diverged as e:
            self.record("diverged", error=str(e), epoch=e.epoch, step=e.step)
            raise
        except (KeyboardInterrupt, SystemExit):
            self.record("interrupted", epoch=_safe(epoch), error=interruption() or "interrupted")
            raise
        except BaseException as e:
            self.record("failed", error=describe(e), epoch=_safe(epoch), traceback=traceback.format_exc())
            raise

    def clear_half_written(self) -> None:
        """Remove the ``NAME.tmp`` files a killed attempt left half written (``atomic_write``): never
        read, and a checkpoint's copy is as large as the checkpoint. Under the job's lock, so no
        other writer is midway through one."""
        if self.writer:
            for tmp in [*self.dir.glob("*.tmp"), *(self.dir / CHECKPOINTS).glob("*.tmp")]:
                tmp.unlink(missing_ok=True)

    def wandb_run_on_disk(self) -> str | None:
        """The id of the newest W&B offline run in the job's folder (``offline-run-TIME-ID``), for
        a job whose status.json, which names it, was lost; None if there is none."""
        runs = sorted(p.name for p in self.dir.glob("wandb/offline-run-*") if p.is_dir() and "." not in p.name)
        return runs[-1].rsplit("-", 1)[-1] if runs else None

    def completed(self, epochs: int, final: dict[str, float]) -> None:
        self.record("completed", epochs=epochs, final=final, finished=now())

    # --- resuming ---------------------------------------------------------------------------
    def resume_point(self) -> Resume:
        """The newest readable checkpoint and what it holds; checkpoints that cannot be read are
        named in one line each, recorded, and passed over for the next newest (last.ckpt and
        interrupted.ckpt by time, then best.ckpt). JobError where there are checkpoints but none
        readable, or where metrics.csv cannot be rebuilt."""
        folder = self.dir / CHECKPOINTS
        recent = sorted(
            (p for p in (folder / LAST_CKPT, folder / INTERRUPTED_CKPT) if p.is_file()),
            key=lambda p: p.stat().st_mtime_ns,
            reverse=True,
        )
        candidates = recent + [p for p in [folder / BEST_CKPT] if p.is_file()]
        unreadable = []
        for path in candidates:
            try:
                ckpt = torch.load(path, map_location="cpu", weights_only=True)
                epochs, batches = _progress(ckpt, path.name)
            except Exception as e:  # truncated, garbage, or not a training checkpoint
                unreadable.append(f"{path} cannot be read ({describe(e)})")
                log.warning("%s; trying the next checkpoint", unreadable[-1])
                continue
            rows = self._rows_up_to(epochs, ckpt.get("metrics_rows"))
            return Resume(path, epochs, batches, rows, unreadable)
        if unreadable:
            raise JobError(
                f"no readable checkpoint: {'; '.join(unreadable)}; delete {folder} to train the job from the start"
            )
        return Resume()

    def _rows_up_to(self, epochs: int, carried: list[dict[str, float]] | None) -> list[dict[str, float]]:
        """metrics.csv's rows of epochs 1..``epochs``: those the checkpoint carries, then any
        later ones from the file (a checkpoint written before its epoch's row was logged)."""
        rows = [r for r in (carried or []) if r.get("epoch", 0) <= epochs]
        have = {r.get("epoch") for r in rows}
        try:
            logged = read_metrics(self.dir)
        except Exception as e:  # garbage in metrics.csv: a mirror of the checkpoint's rows
            aside = set_aside(self.dir / METRICS_FILE)
            log.warning("%s cannot be read (%s); kept as %s and rebuilt from the checkpoint",
                        self.dir / METRICS_FILE, describe(e), aside)  # fmt: skip
            logged = []
        rows += [r for r in logged if r.get("epoch", 0) <= epochs and r.get("epoch") not in have]
        rows.sort(key=lambda r: r["epoch"])
        missing = sorted(set(range(1, epochs + 1)) - {int(r["epoch"]) for r in rows})
        if missing:
            raise JobError(
                f"{self.dir / METRICS_FILE} lacks epoch(s) {', '.join(map(str, missing))} and the checkpoint does "
                f"not carry them; delete {self.dir} to train the job anew"
            )
        return rows


def now() -> str:
    return datetime.now().isoformat(timespec="milliseconds")


def _safe(epoch: Callable[[], int]) -> int | None:
    try:
        return epoch()
    except Exception:  # no trainer yet: the attempt failed before training
        return None
