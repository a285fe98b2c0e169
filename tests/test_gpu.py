"""The CUDA path: run where a CUDA GPU is (``pytest -m gpu``; ``python -m resnet_exp.gpu_check``
runs them with the rest of the GPU proof). Without one every test here is skipped, and listed as
skipped with the reason."""

from __future__ import annotations

from datetime import datetime

import pytest
import pytorch_lightning as pl
import torch

from resnet_exp.config import compose_config
from resnet_exp.training.build import build, trainer_args
from tests.conftest import RESULTS, SMALL, TINY, rows, run_cli, start, status, wait_for_epoch

pytestmark = pytest.mark.gpu


def steps(overrides: list[str], count: int = 5) -> list[float]:
    """The training losses of the first ``count`` steps of the default path (through Lightning,
    with the framework's own data module and module) on the GPU."""
    cfg = compose_config(["trainer.accelerator=gpu", "data.batch_size=64", *overrides])
    pl.seed_everything(cfg.seed)
    datamodule, module = build(cfg)
    losses: list[float] = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            losses.append(float(outputs["loss"]))

    args = trainer_args(cfg.trainer)
    args.update(max_epochs=1, limit_train_batches=count, limit_val_batches=0, enable_progress_bar=False)
    trainer = pl.Trainer(**args, logger=False, callbacks=[Record()], enable_checkpointing=False)
    trainer.fit(module, datamodule=datamodule)
    return losses


def test_bf16_mixed_steps_follow_fp32_within_two_percent():
    """Five SGD steps from the same initial weights on the same batches: bf16 autocast's losses
    stay within 2% of fp32's (bf16 keeps 8 bits of mantissa; the steps compound its rounding)."""
    bf16, fp32 = steps(["trainer.precision=bf16-mixed"]), steps(["trainer.precision=32-true"])
    assert len(bf16) == len(fp32) == 5
    assert bf16 == pytest.approx(fp32, rel=0.02)
    assert trainer_args(compose_config(["trainer.accelerator=gpu"]).trainer)["precision"] == (
        "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    )


def test_channels_last_reaches_the_network_and_the_batches():
    cfg = compose_config(["trainer.accelerator=gpu", "data.batch_size=32"])
    datamodule, module = build(cfg)
    seen: list[bool] = []
    conv = module.net.conv
    conv.register_forward_pre_hook(
        lambda m, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last))
    )
    args = trainer_args(cfg.trainer)
    args.update(max_epochs=1, limit_train_batches=2, limit_val_batches=0, enable_progress_bar=False)
    pl.Trainer(**args, logger=False, enable_checkpointing=False).fit(module, datamodule=datamodule)
    assert seen == [True, True]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and conv.weight.is_cuda


def test_device_pipeline_on_cuda_gives_the_cpus_batches(data_dir):
    """The same samples in the same order and the same labels; pixels within one grey level (the
    GPU's bilinear resize may round a few pixels the other way)."""
    from resnet_exp.data.module import ImageDataModule

    def batches(device: str):
        dm = ImageDataModule(root=str(data_dir), batch_size=64, seed=3, pipeline="device")
        dm.place(torch.device(device))
        dm.setup()
        return [(x.cpu(), y.cpu()) for (x, y), _ in zip(dm.train_dataloader(), range(3))]

    for (xg, yg), (xc, yc) in zip(batches("cuda"), batches("cpu")):
        assert torch.equal(yg, yc)
        assert (xg - xc).abs().max() <= 1 / 255 + 1e-6


def test_divergence_guard_names_the_exact_step_between_its_checks():
    """On a GPU the guard reads the device flag every 25 steps; a loss that turns NaN at step 7 is
    still reported as step 7 (at the check of step 25)."""
    from resnet_exp.runs.job import Diverged
    from resnet_exp.training.guard import DivergenceGuard

    class NanAtSeven(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            loss = self.layer(batch[0]).pow(2).mean()
            return loss * float("nan") if self.global_step == 6 else loss  # optimizer step 7

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(64, 4)), batch_size=2)
    trainer = pl.Trainer(accelerator="gpu", devices=1, max_epochs=1, callbacks=[DivergenceGuard()], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False)  # fmt: skip
    with pytest.raises(Diverged) as err:
        trainer.fit(NanAtSeven(), data)
    assert (err.value.epoch, err.value.step) == (1, 7)
    assert trainer.global_step == 26  # stopped at the first check after it, not at once


def test_compile_reduce_overhead_trains_and_matches_eager():
    eager = steps(["trainer.precision=32-true"], count=4)
    compiled = steps(["trainer.precision=32-true", "compile=reduce-overhead"], count=4)
    assert compiled == pytest.approx(eager, rel=1e-3)


def test_resume_on_cuda_is_exact(tmp_path, data_dir):
    common = ["resnet_exp.run", "-m", "trainer.accelerator=gpu", "trainer.max_epochs=2",
              "trainer.limit_train_batches=12", "trainer.deterministic=true", *SMALL,
              "logger.wandb.mode=disabled"]  # fmt: skip
    clean = run_cli(*common, f"hydra.sweep.dir={tmp_path}/clean", cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr[-2000:]
    job = tmp_path / "stopped" / "0"
    proc = start([*common, f"hydra.sweep.dir={tmp_path}/stopped"], tmp_path)
    wait_for_epoch(job, proc, 1)
    proc.kill()
    proc.communicate()
    resumed = run_cli(*common, f"hydra.sweep.dir={tmp_path}/stopped", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    got, want = rows(job), rows(tmp_path / "clean" / "0")
    assert [{k: r[k] for k in ("epoch", *RESULTS)} for r in got] == [
        {k: r[k] for k in ("epoch", *RESULTS)} for r in want
    ]
    assert status(job)["pipeline"] == "device" and status(job)["precision"] in ("bf16-mixed", "32-true")


def test_two_jobs_of_the_parallel_launcher_share_one_gpu(tmp_path, data_dir):
    sweep = tmp_path / "sweep"
    r = run_cli("resnet_exp.run", "-m", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", "block.order=post,pre",
                *TINY, "trainer.limit_train_batches=20", f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    jobs = [status(sweep / n) for n in "01"]
    assert all(j["status"] == "completed" and j["pipeline"] == "device" for j in jobs)
    (a0, a1), (b0, b1) = ((datetime.fromisoformat(j["started"]), datetime.fromisoformat(j["finished"])) for j in jobs)
    assert jobs[0]["pid"] != jobs[1]["pid"] and a0 < b1 and b0 < a1


def test_ddp_on_one_gpu_runs_with_nccl_and_syncbatchnorm(tmp_path, data_dir):
    run = tmp_path / "run"
    r = run_cli("resnet_exp.run", "trainer=ddp", "trainer.devices=1", *TINY, f"hydra.run.dir={run}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    log = (run / "run.log").read_text()
    assert "nccl" in log.lower() and status(run)["status"] == "completed"
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert any(k.endswith("bn.running_mean") for k in state)  # SyncBatchNorm keeps BatchNorm's state names
