"""Each job's W&B run, through Lightning's ``WandbLogger``: started online, or offline where online
cannot start; never able to stop training; after a hard kill, the epochs W&B lost logged again."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import Logger, WandbLogger

from resnet_exp.library_internals import drop_wandb_init_argument
from resnet_exp.runs.console import CONSOLE_LOGGER, DETAILS_LOGGER
from resnet_exp.runs.records import METRICS, describe, set_aside

log = logging.getLogger(CONSOLE_LOGGER)
details = logging.getLogger(DETAILS_LOGGER)


def measures_note(config: dict[str, Any]) -> str:
    """The W&B run's notes: what its accuracy metrics measure."""
    if (config.get("evaluation") or {}).get("precise_bn_batches", 0) > 0:
        return (
            "test/acc, val/acc: precise BN (BatchNorm statistics recomputed over "
            f"{config['evaluation']['precise_bn_batches']} training batches before each evaluation; the verdicts' "
            "measure). test/acc_running, val/acc_running: the same weights with BatchNorm's running averages "
            "(the seed's protocol)."
        )
    return "test/acc, val/acc: BatchNorm's running averages (the seed's protocol; precise BN off)."


def wandb_logger(
    settings: Any,
    job_dir: Path,
    config: dict[str, Any],
    name: str,
    group: str | None,
    tags: list[str],
    run_id: str | None,
) -> Logger | None:
    """Lightning's WandbLogger for this job (``settings``: the config's ``logger.wandb``), started
    now, continuing W&B run ``run_id`` if given. Online but unable to start (no credentials, no
    network): offline instead, with a one-line warning. Unable to start at all: None, with a
    one-line warning; training goes on with the CSV metrics."""
    if settings.mode == "disabled":
        return None
    modes = [settings.mode, "offline"] if settings.mode == "online" else [settings.mode]
    for mode in modes:
        try:
            import wandb

            logger = SafeWandbLogger(
                project=settings.project,
                entity=settings.entity,
                mode=mode,
                save_dir=str(job_dir),
                name=name,
                group=group,
                tags=tags,
                config=config,
                job_type="train",
                notes=measures_note(config),
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
                best = {"summary": "max"} if key.endswith(("/acc", "/acc_running")) else {}
                run.define_metric(key, step_metric="epoch", **best)
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


def add_config(logger: Logger, values: dict[str, Any]) -> None:
    """Add ``values`` to the W&B run's config, replacing what an earlier attempt of the job put there
    (a requeued or resumed job runs in another SLURM job); a W&B failure is a one-line warning."""
    try:
        logger.experiment.config.update(values, allow_val_change=True)
    except Exception as e:  # W&B mirrors the job's records: never the reason a job cannot go on
        log.warning("W&B could not record %s (%s); status.json has it", ", ".join(values), describe(e))


def mirror(logger: Logger | None, write: Callable[[Any], Any]) -> None:
    """``write(run)`` on the job's W&B run, where it has one that has not failed: what a callback
    logs there beside the record it writes (signal.csv, train_curve.csv). W&B mirrors the records,
    so a failure here is left unsaid: the logger reports its own."""
    if logger is None or getattr(logger, "failed", False):
        return
    try:
        write(logger.experiment)
    except Exception:
        pass


class SafeWandbLogger(WandbLogger):
    """A WandbLogger that W&B failing in the middle of a run cannot stop: the first error is
    reported in one line and W&B is left alone from then on; metrics.csv stays complete."""

    failed = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        drop_wandb_init_argument(self, "anonymous")  # W&B's console warning that it has no effect

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self.failed:
            return
        try:
            super().log_metrics(metrics, step)
        except Exception as e:
            self.failed = True
            log.warning("W&B stopped working (%s); training goes on, metrics go to metrics.csv", describe(e))


def epochs_recorded(job_dir: Path, run_id: str) -> set[float]:
    """The epochs that the job's earlier offline W&B files of run ``run_id`` hold. W&B writes its
    files from a helper process with buffering, so a job killed hard can lose its last epochs there
    even though metrics.csv has them."""
    from resnet_exp.tracking.offline import read_run

    epochs: set[float] = set()
    for run_dir in sorted(Path(job_dir).glob(f"wandb/offline-run-*-{run_id}")):
        try:
            epochs |= {float(h["epoch"]) for h in read_run(run_dir).history if "epoch" in h}
        except Exception as e:  # cut short by a kill, damaged, or a format this reader does not know
            # W&B is a mirror of the checkpoint's rows: the file is set aside, named and kept, and
            # the epochs it held are logged again to the continued run
            aside = set_aside(run_dir)
            log.warning("W&B's offline run %s cannot be read (%s); kept as %s, its epochs logged again", run_dir,
                        describe(e), aside)  # fmt: skip
    return epochs


def replay(logger: Logger, job_dir: Path, rows: list[dict[str, float]]) -> None:
    """Log to the continued W&B run the checkpointed epochs (``rows``) that its earlier offline
    files lack (lost to a hard kill before W&B wrote them), so that W&B ends with every epoch, once."""
    recorded = epochs_recorded(job_dir, logger.version)
    for row in rows:
        if row["epoch"] not in recorded:
            logger.experiment.log({k: row[k] for k in ("epoch", *METRICS) if k in row})
