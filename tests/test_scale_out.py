"""Scale-out on the CPU: one run on two DDP processes (gloo), and sweeps through submitit's local
executor, the stand-in for SLURM (real CLI, real data)."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from resnet_exp.config import compose_config
from resnet_exp.data.fashion_mnist import load_split
from resnet_exp.data.pipelines import resize_batch
from resnet_exp.data.sampling import EpochShuffle
from resnet_exp.models.resnet import ResNet
from tests.conftest import rows, run_cli, status


def files(job: Path) -> set[str]:
    return {str(p.relative_to(job)) for p in job.rglob("*") if p.is_file()}


# One step of a batch of 32 on two processes (16 each, gloo on the CPU, fp32) and three test batches.
DDP_RUN = ("trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu", "trainer.sync_batchnorm=false",
           "trainer.precision=32-true", "trainer.max_epochs=1", "trainer.limit_train_batches=1",
           "trainer.limit_val_batches=3", "data.batch_size=32", "data.num_workers=0",
           "trainer.enable_progress_bar=false", "logger.wandb.mode=disabled")  # fmt: skip


@pytest.mark.long
def test_ddp_on_two_processes_sees_each_sample_once_and_reports_metrics_over_both(tmp_path, data_dir):
    """A multirun of two jobs, each on two processes (Lightning would relaunch the whole sweep in
    each process; resnet_exp.runs.ddp gives it the job's own command), with the learning-rate
    monitor, which needs a logger in every process, and the training curve, whose rows sum both. Each process trains on its half
    of the batch of 32 and evaluates its half of the first 96 test images: the logged metrics must
    be those of both halves together, recomputed here in one process. (In fp32, which this check
    recomputes to 1e-5; the bf16 fast path's rounding depends on how a batch is split.)"""
    sweep = tmp_path / "sweep"
    r = run_cli("resnet_exp.run", "-m", "block.order=post,pre", *DDP_RUN, "+callbacks=[lr_monitor,training_curve]",
                f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    for job in (sweep / "0", sweep / "1"):  # Lightning's set-up messages are in each job's log
        assert "Starting with 2 processes" in (job / "run.log").read_text()
    for job in (sweep / "0", sweep / "1"):
        assert (job / "train_ddp_process_1.log").is_file()  # the second process ran as part of this job
        assert_two_process_metrics(job, data_dir)
        # the learning-rate monitor finds a logger in the second process too; the first records it
        assert [row["lr-SGD"] for row in rows(job)] == ["0.1"]
        # the training curve sums both processes' halves: one row, the step's 32 images, the epoch's loss
        (curve,) = rows(job, "train_curve.csv")
        assert (curve["step"], curve["steps"], curve["images"]) == ("1", "1", "32")
        assert float(curve["train/loss"]) == pytest_approx(float(rows(job)[0]["train/loss"]))


def assert_two_process_metrics(job: Path, data_dir: Path) -> None:
    """A completed job of DDP_RUN (two processes, each on its half of the batch of 32 and of the first
    96 test images): its logged metrics are those of both halves together, recomputed here in one
    process from the seeded initial weights and the job's last checkpoint."""
    train_x, train_y = load_split(data_dir, "train")
    test_x, test_y = load_split(data_dir, "test")

    def resize(images: torch.Tensor) -> torch.Tensor:  # the default pipeline's batches, in its layout
        return resize_batch(images, 96).contiguous(memory_format=torch.channels_last)

    first_batch = list(EpochShuffle(60_000, seed=0))[:32]  # the one-process run's first batch
    assert status(job)["status"] == "completed"
    cfg = OmegaConf.load(job / "config.yaml")
    logged = {k: float(v) for k, v in rows(job)[0].items()}

    # Training, one step from the seeded initial weights: process r on positions r, r+2, ...
    pl.seed_everything(0, verbose=False)
    net = ResNet(**cfg.block, **cfg.model).train()  # BatchNorm over each process's 16 images
    net = net.to(memory_format=torch.channels_last)
    losses, correct = [], 0
    with torch.no_grad():
        for rank in (0, 1):
            idx = first_batch[rank::2]
            logits = net(resize(train_x[idx]))
            losses.append(float(F.cross_entropy(logits, train_y[idx])))
            correct += int((logits.argmax(1) == train_y[idx]).sum())
    assert losses[0] != losses[1]  # the halves differ, so one half alone would not pass
    assert logged["train/loss"] == pytest_approx(sum(losses) / 2)
    assert logged["train/acc"] == pytest_approx(correct / 32)

    # Test set: the trained weights on the first 96 images, gathered from both processes.
    state = torch.load(job / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    net.load_state_dict({k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")})
    net.eval()
    with torch.no_grad():
        logits = net(resize(test_x[:96]))
    hits = logits.argmax(1) == test_y[:96]
    assert logged["test/acc"] == pytest_approx(float(hits.float().mean()))
    assert logged["test/loss"] == pytest_approx(float(F.cross_entropy(logits, test_y[:96])))
    assert float(hits[0::2].float().mean()) != float(hits.float().mean()) or float(
        F.cross_entropy(logits[0::2], test_y[:96:2])
    ) != pytest_approx(logged["test/loss"])


def pytest_approx(x: float):
    import pytest

    return pytest.approx(x, rel=1e-5, abs=1e-6)


# What the default launcher leaves in a job directory with W&B off (README, "What a run does").
BASIC_JOB_FILES = {
    "config.yaml", "metrics.csv", "signal.csv", "status.json", "run.log", ".lock", ".hydra/config.yaml",
    ".hydra/hydra.yaml",
    ".hydra/overrides.yaml", "checkpoints/best.ckpt", "checkpoints/last.ckpt",
}  # fmt: skip


def test_slurm_preset_and_launcher_checks(tmp_path):
    """hydra/launcher=slurm: the project's defaults on top of submitit_slurm, each overridable; a
    DDP run whose processes SLURM would not start is refused before anything is queued."""
    cfg = compose_config(["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=240"],
                         return_hydra_config=True)  # fmt: skip
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.resnet_exp.SlurmLauncher"  # the plugin's, waiting for every job
    assert (launcher.partition, launcher.timeout_min, launcher.gpus_per_node, launcher.tasks_per_node) == (
        "gpu",
        240,
        1,
        1,
    )
    assert launcher.max_num_timeout > 0  # a job at its time limit is requeued
    r = run_cli("resnet_exp.run", "-m", "hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.splitlines() == [
        "error: trainer.devices=4 x trainer.num_nodes=1 processes but hydra.launcher.tasks_per_node=1 x "
        "hydra.launcher.nodes=1 SLURM tasks; SLURM starts one process per device: make them equal (and "
        "gpus_per_node too)"
    ]
    r = run_cli("resnet_exp.run", "-m", "hydra/launcher=parallel", "trainer=ddp", "trainer.devices=2", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.splitlines() == [
        "error: trainer.strategy=ddp on 2 devices cannot run under hydra/launcher=parallel; use "
        "hydra/launcher=slurm (one task per device), or the default launcher"
    ]
    assert not (tmp_path / "outputs").exists()
