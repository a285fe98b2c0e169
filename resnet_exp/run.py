"""The entry point: ``python -m resnet_exp.run [-m] [KEY=VALUE ...]``.

Hydra composes conf/ (typed and validated), then ``train`` builds the data, the network, the
LightningModule, the loggers and the callbacks from the config and fits. Each job's directory
gets config.yaml (resolved), metrics.csv (one row per epoch), checkpoints/, status.json and wandb/.
"""

from __future__ import annotations

import json
import logging
import os
import traceback
import warnings
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, Logger

from resnet_exp.config import config_path
from resnet_exp.data import FashionMNISTDataModule
from resnet_exp.module import METRICS, Classifier
from resnet_exp.resnet import ResNet
from resnet_exp.sweep import job_identity

log = logging.getLogger("resnet_exp")

# The job directory already holds Hydra's files when the CSV logger opens it, and metrics are
# logged once per epoch by design, so these two Lightning warnings say nothing useful here.
warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not empty")
warnings.filterwarnings("ignore", message=r"The number of training batches .* is smaller than the logging interval")


def wandb_logger(cfg: DictConfig, job_dir: Path, config: dict[str, Any]) -> Logger | None:
    """Lightning's WandbLogger for this job, started now; None (with a one-line warning) where W&B
    is disabled or cannot start, so that training goes on with the CSV metrics."""
    w = cfg.logger.wandb
    if w.mode == "disabled":
        return None
    hc = HydraConfig.get()
    sweep_dir = Path(hc.sweep.dir) if hc.mode == RunMode.MULTIRUN else None
    name, group = job_identity(list(hc.overrides.task), sweep_dir)
    try:
        import wandb
        from pytorch_lightning.loggers import WandbLogger

        logger = WandbLogger(
            project=w.project, entity=w.entity, mode=w.mode, save_dir=str(job_dir), name=name, group=group,
            tags=[cfg.block.order], config=config, job_type="train",
            settings=wandb.Settings(init_timeout=60, console="off"),
        )
        run = logger.experiment  # starts the W&B run now, so a failure shows here
        run.define_metric("epoch")
        for key in METRICS:
            run.define_metric(key, step_metric="epoch", **({"summary": "max"} if key == "test/acc" else {}))
        return logger
    except Exception as e:  # W&B is a mirror of metrics.csv: never let it stop training
        reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
        log.warning("W&B could not start (%s: %s); training goes on, metrics go to metrics.csv",
                    type(e).__name__, reason)
        return None


def write_status(job_dir: Path, **status: Any) -> None:
    tmp = job_dir / "status.json.tmp"
    tmp.write_text(json.dumps(status, indent=2) + "\n")
    os.replace(tmp, job_dir / "status.json")


def train(cfg: DictConfig, job_dir: Path) -> dict[str, float]:
    """Train one job into ``job_dir``; returns the last epoch's metrics."""
    job_dir.mkdir(parents=True, exist_ok=True)
    config = OmegaConf.to_container(cfg, resolve=True)
    OmegaConf.save(OmegaConf.create(config), job_dir / "config.yaml")
    pl.seed_everything(cfg.seed, workers=True)

    datamodule = FashionMNISTDataModule(**cfg.data, seed=cfg.seed)
    net = ResNet(**cfg.block, **cfg.model)
    module = Classifier(net, optim=cfg.optim, scheduler=cfg.scheduler or None, num_classes=cfg.model.num_classes)

    loggers: list[Logger] = [CSVLogger(save_dir=str(job_dir), name="", version="")]
    wandb = wandb_logger(cfg, job_dir, config)
    if wandb is not None:
        loggers.append(wandb)
    checkpoints = ModelCheckpoint(
        dirpath=job_dir / "checkpoints", filename="best", monitor="test/acc", mode="max",
        save_top_k=1, save_last=True,
    )
    trainer = pl.Trainer(**cfg.trainer, logger=loggers, callbacks=[checkpoints], default_root_dir=str(job_dir))
    write_status(job_dir, status="running")
    try:
        trainer.fit(module, datamodule=datamodule)
    except BaseException as e:
        write_status(job_dir, status="failed", error=f"{type(e).__name__}: {e}", epoch=trainer.current_epoch,
                     traceback=traceback.format_exc())
        raise
    finally:
        if wandb is not None:
            wandb.experiment.finish()  # each job its own W&B run, also in a multirun
    final = {k: float(v) for k, v in trainer.logged_metrics.items() if k in METRICS}
    write_status(job_dir, status="completed", epochs=trainer.current_epoch, final=final)
    return final


@hydra.main(version_base="1.3", config_path=config_path(), config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Train one job (config validated by resnet_exp.sweep.SweepCallback before it starts)."""
    final = train(cfg, Path(HydraConfig.get().runtime.output_dir))
    return final.get("test/acc")


if __name__ == "__main__":
    main()
