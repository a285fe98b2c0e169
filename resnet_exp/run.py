"""The entry point: ``python -m resnet_exp.run [-m] [KEY=VALUE ...]``.

Hydra composes conf/ (typed and validated), then ``train`` builds the data, the network, the
LightningModule, the loggers and the callbacks from the config and fits. Each job's directory
gets config.yaml (resolved), metrics.csv (one row per epoch), checkpoints/, status.json and wandb/.
Running a sweep again in the same directory skips its completed jobs and resumes the others
(resnet_exp/job.py); a job that fails or diverges is marked so and the sweep goes on.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import Logger, WandbLogger

from resnet_exp.config import config_path, one_line_error
from resnet_exp.console import (
    CONSOLE_LOGGER,
    DETAILS_LOGGER,
    EpochProgressBar,
    console_is_terminal,
    route_library_logs,
)
from resnet_exp.data import FashionMNISTDataModule, resolve_pipeline
from resnet_exp.ddp import agree, global_rank, single_run_command
from resnet_exp.hardware import auto_precision, keep_freed_memory
from resnet_exp.job import (
    CHECKPOINTS,
    CONFIG_FILE,
    FINISHED,
    INTERRUPTED_CKPT,
    AtomicCheckpointIO,
    Job,
    JobBusy,
    JobMetrics,
    MetricsHistory,
    checkpoint_callbacks,
    describe,
    wandb_epochs_recorded,
)
from resnet_exp.module import METRICS, Classifier, Diverged, DivergenceGuard
from resnet_exp.resnet import ResNet
from resnet_exp.sweep import job_identity

log = logging.getLogger(CONSOLE_LOGGER)
details = logging.getLogger(DETAILS_LOGGER)


def wandb_logger(cfg: DictConfig, job_dir: Path, config: dict[str, Any], run_id: str | None) -> Logger | None:
    """Lightning's WandbLogger for this job, started now (continuing W&B run ``run_id`` if given).
    Online but unable to start (no credentials, no network): offline instead, with a one-line
    warning. Unable to start at all: None, with a one-line warning; training goes on with the CSV
    metrics."""
    w = cfg.logger.wandb
    if w.mode == "disabled":
        return None
    hc = HydraConfig.get()
    sweep_dir = Path(hc.sweep.dir) if hc.mode == RunMode.MULTIRUN else None
    name, group = job_identity(list(hc.overrides.task), sweep_dir)
    modes = [w.mode, "offline"] if w.mode == "online" else [w.mode]
    for mode in modes:
        try:
            import wandb

            logger = SafeWandbLogger(
                project=w.project,
                entity=w.entity,
                mode=mode,
                save_dir=str(job_dir),
                name=name,
                group=group,
                tags=[cfg.block.order],
                config=config,
                job_type="train",
                id=run_id,
                resume="allow" if run_id else None,
                # quiet on the console (the job's log says where the run is); console="off": W&B
                # does not capture the job's output, which run.log holds
                settings=wandb.Settings(init_timeout=60, console="off", silent=True),
            )
            run = logger.experiment  # starts the W&B run now, so a failure shows here
            details.info("W&B run %s (%s) in %s", run.id, mode, run.dir)
            run.define_metric("epoch")
            for key in METRICS:
                run.define_metric(key, step_metric="epoch", **({"summary": "max"} if key.endswith("/acc") else {}))
            return logger
        except Exception as e:  # W&B is a mirror of metrics.csv: never let it stop training
            reason = describe(e)
            if mode == "online":
                log.warning(
                    "W&B could not start online (%s); logging offline into %s/wandb instead, "
                    "upload later with `wandb sync`",
                    reason,
                    job_dir,
                )
            else:
                log.warning("W&B could not start (%s); training goes on, metrics go to metrics.csv", reason)
    return None


class SafeWandbLogger(WandbLogger):
    """A WandbLogger that W&B failing in the middle of a run cannot stop: the first error is
    reported in one line and W&B is left alone from then on; metrics.csv stays complete."""

    failed = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Lightning always hands wandb.init an ``anonymous`` key (None when unset), and W&B 0.31 warns
        # on the console that the setting has no effect, once per job. The one internal this class
        # touches: the arguments Lightning keeps for wandb.init.
        self._wandb_init.pop("anonymous", None)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self.failed:
            return
        try:
            super().log_metrics(metrics, step)
        except Exception as e:
            self.failed = True
            log.warning("W&B stopped working (%s); training goes on, metrics go to metrics.csv", describe(e))


def replay_to_wandb(wandb: Logger, job_dir: Path, rows: list[dict[str, float]]) -> None:
    """Log to the continued W&B run the checkpointed epochs (``rows``) that its earlier offline
    files lack (lost to a hard kill before W&B wrote them), so that W&B ends with every epoch, once."""
    recorded = wandb_epochs_recorded(job_dir, wandb.version)
    for row in rows:
        if row["epoch"] not in recorded:
            wandb.experiment.log({k: row[k] for k in ("epoch", *METRICS) if k in row})


def preemption_signal() -> signal.Signals | None:
    """The signal by which submitit (the SLURM launcher) announces a preemption or the end of the
    time limit, where this job runs under submitit; None elsewhere."""
    if "SUBMITIT_EXECUTOR" not in os.environ:
        return None
    return getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"), None)


class _Signals:
    """SIGINT (Ctrl-C), SIGTERM (a scheduler stopping the job) and, under submitit, its preemption
    signal stop a job at the end of the training batch under way (``StopOnSignal``), with a
    checkpoint of exactly that point; the same signal a second time stops it at once. After the
    checkpoint, the preemption signal goes on to submitit's own handler, which requeues the job:
    it starts again and resumes from that checkpoint (also when SIGTERM came first)."""

    received = ""
    handover: Any = None  # (signal, submitit's handler of it), once the preemption signal came
    previous: dict[int, Any] = {}  # the handlers installed before ours

    @classmethod
    def handle(cls, signum: int, frame: Any) -> None:
        name = f"signal {signal.Signals(signum).name}"
        if cls.received == name:
            raise KeyboardInterrupt(name)
        cls.received = cls.received or name
        previous = cls.previous.get(signum)
        if signum == preemption_signal() and callable(previous):
            cls.handover = (signum, previous)

    @classmethod
    def install(cls) -> dict[int, Any]:
        cls.received, cls.handover = "", None
        signals = [signal.SIGINT, signal.SIGTERM] + [s for s in [preemption_signal()] if s is not None]
        cls.previous = {s: signal.signal(s, cls.handle) for s in signals}
        return cls.previous


class StopOnSignal(pl.Callback):
    """After a signal: at the end of the training batch under way, save a checkpoint there (a
    resume goes on with the next batch of the same epoch) and stop as Ctrl-C does, or hand over to
    submitit to be requeued; during the test-set evaluation, stop at once (a resume redoes the epoch
    from the last checkpoint). In a run on several processes they agree after every batch, so that
    all of them stop at the same one."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if agree(trainer, bool(_Signals.received)):
            trainer.save_checkpoint(self.path)
            self.stop()

    def on_validation_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if _Signals.received:
            self.stop()

    @staticmethod
    def stop() -> None:
        if _Signals.handover is not None:  # submitit requeues the job and exits
            signum, handler = _Signals.handover
            handler(signum, None)
        raise KeyboardInterrupt(_Signals.received or "stopped with the other processes of the run")


def trainer_args(trainer: DictConfig) -> dict[str, Any]:
    """The Trainer's arguments from ``trainer.*``, with ``precision=auto`` decided for this machine
    (``hardware.auto_precision``)."""
    args = OmegaConf.to_container(trainer, resolve=True)
    if args.get("precision") == "auto":
        args["precision"] = auto_precision(trainer)
    if args.get("enable_progress_bar") is None:  # the default: a bar where the console is a terminal
        args["enable_progress_bar"] = console_is_terminal()
    return args


def build(cfg: DictConfig) -> tuple[FashionMNISTDataModule, Classifier]:
    """The data module and the LightningModule (with its ResNet) that ``cfg`` describes; the
    caller seeds first, so that the initial weights follow from ``cfg.seed``."""
    datamodule = FashionMNISTDataModule(**cfg.data, seed=cfg.seed)
    net = ResNet(**cfg.block, **cfg.model)
    module = Classifier(
        net,
        optim=cfg.optim,
        scheduler=cfg.scheduler or None,
        num_classes=cfg.model.num_classes,
        compile_mode=cfg.compile,
        validation=cfg.data.val_size > 0,
    )
    if cfg.compile:
        use_compile_cache(Path(cfg.output_dir).expanduser().resolve() / ".cache" / "torchinductor")
    return datamodule, module


def use_compile_cache(directory: Path) -> None:
    """Keep torch.compile's compiled code in ``directory`` (under output_dir), so that the later jobs
    of a sweep, and later sweeps, load it instead of compiling again; unless the user chose a place
    with TORCHINDUCTOR_CACHE_DIR. (Importing torch sets that variable to its temporary default.)"""
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir

        default = os.path.abspath(default_cache_dir())
    except ImportError:
        default = None
    current = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if current is None or os.path.abspath(current) == default:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(directory)


def train(cfg: DictConfig, job_dir: Path) -> dict[str, float]:
    """Train one job into ``job_dir`` (or resume it there); returns the last epoch's metrics.

    ``Job`` (resnet_exp/job.py) owns the job's life: the lock, the resume point, every status
    record. In a run on several processes (``trainer=ddp``) every process calls this; the first one
    (rank 0) alone locks the job and writes its files (config.yaml, status.json, metrics.csv, W&B,
    checkpoints)."""
    first = global_rank() == 0
    job = Job(job_dir, writer=first)
    with job.locked():
        status = job.status
        if status.get("status") in FINISHED:
            log.info("%s %s before: skipped (delete its status.json to train it again)", job_dir, status["status"])
            if status["status"] == "diverged":
                raise Diverged(status["epoch"], status["step"])
            return status.get("final", {})
        trainer: pl.Trainer | None = None
        with job.attempt(epoch=lambda: trainer.current_epoch + 1, interruption=lambda: _Signals.received) as attempt:
            trainer, module, datamodule, wandb = _prepare(cfg, job, first)
            previous = _Signals.install()
            try:
                with single_run_command(trainer, job_dir, list(HydraConfig.get().overrides.task)):
                    trainer.fit(module, datamodule=datamodule, ckpt_path=job.resume.checkpoint, weights_only=True)
            finally:
                for signum, handler in previous.items():
                    signal.signal(signum, handler)
                if wandb is not None:
                    try:
                        wandb.experiment.finish()  # each job its own W&B run, also in a multirun
                    except Exception as e:
                        log.warning("W&B could not finish the run (%s)", describe(e))
            final = {k: float(v) for k, v in trainer.logged_metrics.items() if k in METRICS}
            attempt.completed(trainer.current_epoch, final)
    return final


def _prepare(
    cfg: DictConfig, job: Job, first: bool
) -> tuple[pl.Trainer, Classifier, FashionMNISTDataModule, Logger | None]:
    """Everything a job's attempt needs before ``fit``: its resume point, its saved config, the
    data, network and LightningModule, its loggers and callbacks, the Trainer; the attempt's record
    updated with what it runs with."""
    resume = job.resume = job.resume_point()
    if resume.unreadable:  # every record of this attempt names them
        job.fields["unreadable_checkpoints"] = resume.unreadable
        job.record("running")
    if resume.checkpoint and first:
        where = f"epoch {resume.epochs}" + (
            f" and {resume.batches} batches of epoch {resume.epochs + 1}" if resume.batches else ""
        )
        log.info("%s: resuming after %s from %s", job.dir, where, resume.checkpoint)
    config = OmegaConf.to_container(cfg, resolve=True)
    if first:
        OmegaConf.save(OmegaConf.create(config), job.dir / CONFIG_FILE)
    pl.seed_everything(cfg.seed, workers=True, verbose=first)
    keep_freed_memory()

    datamodule, module = build(cfg)
    datamodule.resume_at(resume.epochs, resume.batches)

    loggers: list[Logger] = []
    metrics = wandb = None
    if first:
        metrics = JobMetrics(job.dir, resume.rows)
        loggers.append(metrics)
        wandb = wandb_logger(cfg, job.dir, config, job.fields.get("wandb_id"))
        if wandb is not None:
            loggers.append(wandb)
    folder = job.dir / CHECKPOINTS
    checkpoints = checkpoint_callbacks(folder, "val/acc" if cfg.data.val_size else "test/acc")
    args = trainer_args(cfg.trainer)
    trainer = pl.Trainer(
        **args,
        logger=loggers or False,
        callbacks=[
            *checkpoints,
            MetricsHistory(metrics),
            DivergenceGuard(),
            StopOnSignal(folder / INTERRUPTED_CKPT),
            *([EpochProgressBar()] if args["enable_progress_bar"] else []),
        ],
        plugins=[AtomicCheckpointIO()],
        default_root_dir=str(job.dir),
        use_distributed_sampler=False,  # the data module shards the data per process itself
    )
    # What every status record of this attempt carries: the W&B run, what precision=auto and
    # data.pipeline=auto became here.
    if wandb is not None:
        job.fields["wandb_id"] = wandb.version
    job.fields.update(
        precision=str(trainer.precision),
        pipeline=resolve_pipeline(cfg.data.pipeline, trainer.strategy.root_device.type),
    )
    if wandb is not None and resume.epochs and cfg.logger.wandb.mode == "offline":
        replay_to_wandb(wandb, job.dir, resume.rows)
    job.record("running", resumed_after_epoch=resume.epochs)
    return trainer, module, datamodule, wandb


@hydra.main(version_base="1.3", config_path=config_path(), config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Train one job (config validated by resnet_exp.sweep.SweepCallback before it starts). A job
    that fails or diverges is recorded in its status.json and the sweep goes on; the sweep's summary
    at the end names it and the command exits non-zero."""
    job_dir = Path(HydraConfig.get().runtime.output_dir)
    route_library_logs()  # after Hydra set up this job's logging
    log.info("job %s", job_dir)
    try:
        final = train(cfg, job_dir)
    except JobBusy as e:
        log.warning("%s", e)
        return None
    except Exception as e:
        log.error("%s: %s (details in %s)", job_dir, describe(e), job_dir / "status.json")
        return None
    return final.get("test/acc")


def cli() -> None:
    """``python -m resnet_exp.run``: Hydra's composition errors (unknown key, wrong type) as one line
    and exit status 2, before any work; HYDRA_FULL_ERROR=1 shows them with their traceback."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    full = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let the errors reach us instead of being printed
    try:
        main()
    except (HydraException, OmegaConfBaseException) as e:
        if full:
            raise
        message = one_line_error(e)
        if "submitit" in message and importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None:
            message += "; the SLURM launcher is an extra: pip install 'resnet-exp[slurm]'"
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM: the job under way saved where it stopped
        from resnet_exp.sweep import resume_hint

        print(
            f"stopped ({e or 'interrupted'}); to resume: {resume_hint() or 'run the same command again'}",
            file=sys.stderr,
        )
        sys.exit(130)


if __name__ == "__main__":
    cli()
