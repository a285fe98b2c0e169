"""One job, from its config to its end: ``train(cfg, job_dir)``.

The job's life belongs to ``job.Job`` (its lock, its resume point, every status record); what it
trains is built by ``build``; W&B comes from ``tracking``; signals stop it at a batch's end
(``signals``). This module puts them together around Lightning's ``Trainer.fit``. In a run on
several processes (``trainer=ddp``) every process calls ``train``; the first one (rank 0) alone
locks the job and writes its files (config.yaml, status.json, metrics.csv, W&B, checkpoints).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import Logger

from resnet_exp.config import validate
from resnet_exp.data.module import ImageDataModule
from resnet_exp.data.pipelines import resolve_pipeline
from resnet_exp.library_internals import inductor_default_cache_dir
from resnet_exp.runs.console import CONSOLE_LOGGER, progress_bar
from resnet_exp.runs.ddp import global_rank, single_run_command
from resnet_exp.runs.job import (
    AtomicCheckpointIO,
    CheckpointRecords,
    Diverged,
    Job,
    JobMetrics,
    SilentLogger,
    checkpoint_callbacks,
)
from resnet_exp.runs.records import (
    CHECKPOINTS,
    CONFIG_FILE,
    FINISHED,
    INTERRUPTED_CKPT,
    METRICS,
    atomic_write,
    describe,
    flatten,
    read_metrics,
)
from resnet_exp.runs.saved_config import config_digest, job_config, keep_saved, resume_plan
from resnet_exp.runs.signals import Signals, StopOnSignal
from resnet_exp.runs.slurm import slurm_job
from resnet_exp.tracking import identity
from resnet_exp.tracking.logger import add_config, replay, wandb_logger
from resnet_exp.training.build import build, plain, trainer_args
from resnet_exp.training.classifier import Classifier
from resnet_exp.training.hardware import keep_freed_memory, machine
from resnet_exp.training.job_callbacks import JobContext, job_callbacks

log = logging.getLogger(CONSOLE_LOGGER)


def train(cfg: DictConfig, job_dir: Path) -> dict[str, float]:
    """Train one job into ``job_dir`` (or resume it there); returns the last epoch's metrics. A job
    that completed or diverged before is not trained again."""
    first = global_rank() == 0
    job = Job(job_dir, writer=first)
    with job.locked():
        status = job.status
        if status.get("status") in FINISHED:
            log.info("%s %s before: skipped (delete its status.json to train it again)", job_dir, status["status"])
            if status["status"] == "diverged":
                raise Diverged(status["epoch"], status.get("step"))
            return status.get("final", {})
        overrides = list(HydraConfig.get().overrides.task)
        plan = resume_plan(job_dir, cfg, overrides)
        if plan.kept:  # a default changed since the job started: it goes on as it ran
            if first:
                log.info("%s resumes with the config it ran with: %s", job_dir, plan.note(flatten(job_config(cfg))))
            keep_saved(cfg, plan, job_dir)
        trainer: pl.Trainer | None = None
        signals = Signals()
        with job.attempt(epoch=lambda: trainer.current_epoch + 1, interruption=lambda: signals.received) as attempt:
            trainer, module, datamodule, wandb = _prepare(cfg, job, first, signals)
            try:
                with signals, single_run_command(trainer, job_dir, overrides):
                    try:
                        trainer.fit(module, datamodule=datamodule, ckpt_path=job.resume.checkpoint, weights_only=True)
                    except SystemExit:
                        # Lightning ends a fit that a KeyboardInterrupt stopped with sys.exit(1); a stop
                        # on a signal stays an interruption, which run.cli answers with the resume
                        # command. (Where submitit took the signal over, its requeue's exit stands.)
                        if signals.received and signals.handover is None:
                            raise KeyboardInterrupt(signals.received) from None
                        raise
            finally:
                if wandb is not None:
                    try:
                        wandb.experiment.finish()  # each job its own W&B run, also in a multirun
                    except Exception as e:
                        log.warning("W&B could not finish the run (%s)", describe(e))
            planned = cfg.trainer.max_epochs
            if planned and planned > 0 and trainer.current_epoch < planned and not trainer.interrupted:
                # a callback ended training (+callbacks=early_stopping): the record says so
                job.fields["ended_early"] = (
                    f"a callback stopped training after epoch {trainer.current_epoch} of {planned}"
                )
            final = {k: float(v) for k, v in trainer.logged_metrics.items() if k in METRICS}
            if not final and job.resume.rows:  # resumed at its end (its record was lost): nothing trained now
                final = {k: v for k, v in job.resume.rows[-1].items() if k in METRICS}
            if not math.isfinite(final.get("train/loss", 0.0)):
                # the guard was off (callbacks.divergence_guard=null) and training went on to its
                # end: the job diverged all the same, from the first epoch whose loss says so
                epochs = [row for row in read_metrics(job.dir) if not math.isfinite(row.get("train/loss", 0.0))]
                raise Diverged(int(epochs[0]["epoch"]) if epochs else trainer.current_epoch, None)
            attempt.completed(trainer.current_epoch, final)
    return final


def _prepare(
    cfg: DictConfig, job: Job, first: bool, signals: Signals
) -> tuple[pl.Trainer, Classifier, ImageDataModule, Logger | None]:
    """Everything an attempt needs before ``fit``: its resume point, its saved config, the data,
    network and LightningModule, its loggers and callbacks, the Trainer; the attempt's record
    updated with what it runs with."""
    validate(cfg)  # the sweep checked every job up front; a sweeper that picks jobs as it goes did not
    resume = job.resume = job.resume_point()
    if resume.unreadable:  # every record of this attempt names them
        job.fields["unreadable_checkpoints"] = resume.unreadable
        job.record("running")
    if resume.checkpoint and first:
        where = f"epoch {resume.epochs}" + (
            f" and {resume.batches} batches of epoch {resume.epochs + 1}" if resume.batches else ""
        )
        log.info("%s: resuming after %s from %s", job.dir, where, resume.checkpoint)
    config = plain(cfg)
    if first:
        # its digest recorded first: a kill between the two leaves the old file, which its
        # checkpoints were trained with (saved_config.config_edited)
        text = OmegaConf.to_yaml(OmegaConf.create(config))
        job.fields["config_sha256"] = config_digest(text)
        job.record("running")
        atomic_write(job.dir / CONFIG_FILE, text)
    pl.seed_everything(cfg.seed, workers=True, verbose=first)
    keep_freed_memory()
    if cfg.compile:
        use_compile_cache(Path(cfg.output_dir).expanduser().resolve() / ".cache" / "torchinductor")

    datamodule, module = build(cfg)
    datamodule.resume_at(resume.epochs, resume.batches)

    loggers: list[Logger] = []
    metrics = wandb = None
    if first:
        metrics = JobMetrics(job.dir, resume.rows)
        loggers.append(metrics)
        hc = HydraConfig.get()
        name, group = identity(list(hc.overrides.task), Path(hc.sweep.dir) if hc.mode == RunMode.MULTIRUN else None)
        wandb = wandb_logger(
            cfg.logger.wandb, job.dir, config, name, group, [cfg.block.order], job.fields.get("wandb_id")
        )
        if wandb is not None:
            loggers.append(wandb)
        loggers += [other_logger(part, job.dir) for part in cfg.logger.others.values()]  # logger=tensorboard, ...
    else:
        loggers.append(SilentLogger())
    folder = job.dir / CHECKPOINTS
    args = trainer_args(cfg.trainer)
    environment = args.pop("plugins", [])  # SLURM's, where the job runs in one (runs/slurm.py)
    kept_signal = resume.epochs if resume.checkpoint is not None else None  # from scratch: none kept
    trainer = pl.Trainer(
        **args,
        logger=loggers,
        callbacks=[
            *checkpoint_callbacks(folder, "val/acc" if cfg.data.val_size else "test/acc"),
            CheckpointRecords(metrics),
            StopOnSignal(signals, folder / INTERRUPTED_CKPT),
            *([progress_bar()] if args["enable_progress_bar"] else []),
            # the divergence guard, the signal probe, +callbacks=early_stopping, ...: from the config
            *job_callbacks(cfg.callbacks, JobContext(cfg, job.dir if first else None, datamodule, wandb, kept_signal)),
        ],
        plugins=[AtomicCheckpointIO(), *environment],
        default_root_dir=str(job.dir),
        use_distributed_sampler=False,  # the data module shards the data per process itself
    )
    # What every status record of this attempt carries: the W&B run, what precision=auto and
    # data.pipeline=auto became here, the machine, and the SLURM job it runs in (the W&B run's
    # config too).
    if wandb is not None:
        job.fields["wandb_id"] = wandb.version
    slurm = slurm_job()
    if slurm is not None:
        job.fields["slurm_job"] = slurm
        if wandb is not None:
            add_config(wandb, {"slurm_job": slurm})
    job.fields.update(
        precision=str(trainer.precision),
        pipeline=resolve_pipeline(cfg.data.pipeline, trainer.strategy.root_device.type),
        machine=machine(trainer.strategy.root_device),  # the CPU, the GPU it trains on, torch: costs by machine kind
    )
    if wandb is not None and resume.epochs and cfg.logger.wandb.mode == "offline":
        try:  # W&B mirrors the checkpoint's rows: never the reason a job cannot go on
            replay(wandb, job.dir, resume.rows)
        except Exception as e:
            log.warning("W&B could not be given the epochs before the resume (%s); metrics.csv has them", describe(e))
    job.fields["resumed_after_epoch"] = resume.epochs  # kept by the attempt's every record, its last included
    job.record("running")
    return trainer, module, datamodule, wandb


def other_logger(part: DictConfig, job_dir: Path) -> Logger:
    """A logger of ``logger.others``, built by Hydra from its ``_target_``; a ``save_dir`` left null
    is the job's folder, so that its files lie beside the job's own."""
    given = {"save_dir": str(job_dir)} if "save_dir" in part and part.save_dir is None else {}
    return instantiate(part, **given)


def use_compile_cache(directory: Path) -> None:
    """Keep torch.compile's compiled code in ``directory`` (under output_dir), so that the later jobs
    of a sweep, and later sweeps, load it instead of compiling again; unless the user chose a place
    with TORCHINDUCTOR_CACHE_DIR. (Importing torch sets that variable to its temporary default.)
    The environment is the one way torch takes this setting; set for this process, as every job of
    it shares the one cache."""
    default = inductor_default_cache_dir()
    default = os.path.abspath(default) if default else None
    current = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if current is None or os.path.abspath(current) == default:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(directory)
