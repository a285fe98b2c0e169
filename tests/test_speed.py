"""The fast path's parts on the CPU: the device pipeline through the real CLI, several jobs of a
sweep at once, and the benchmark command (a smoke test: its numbers are measurements, not asserts)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
import torch

from tests.conftest import TINY, rows, run_cli, status


def test_device_pipeline_trains_like_the_torchvision_pipeline(tmp_path, data_dir):
    """One step and two test batches through both pipelines: the same samples, pixels within one grey
    level, so the metrics agree closely (not bit for bit: the rounding of a few pixels differs). In
    fp32: bf16's own rounding would blur the comparison of the pipelines."""
    sweep = tmp_path / "sweep"
    r = run_cli("resnet_exp.run", "-m", "data.pipeline=torchvision,device", *TINY, "trainer.limit_train_batches=1",
                "trainer.precision=32-true", "logger.wandb.mode=disabled", f"hydra.sweep.dir={sweep}",
                cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    tv, dev = ({k: float(v) for k, v in rows(sweep / n)[0].items()} for n in "01")
    assert status(sweep / "1")["status"] == "completed"
    # status.json records what the job ran with
    assert [(status(sweep / n)["pipeline"], status(sweep / n)["precision"]) for n in "01"] == [
        ("torchvision", "32-true"),
        ("device", "32-true"),
    ]
    assert abs(tv["train/loss"] - dev["train/loss"]) <= 1e-3 * tv["train/loss"]  # the initial weights: same inputs
    # after one step, with the running averages (precise BN's statistics, recomputed from a network
    # one step from its init, magnify the pipelines' one-grey-level differences)
    assert abs(tv["test/loss_running"] - dev["test/loss_running"]) <= 1e-2 * tv["test/loss_running"]
    assert abs(tv["train/acc"] - dev["train/acc"]) <= 1 / 16
    assert abs(tv["test/acc_running"] - dev["test/acc_running"]) <= 1 / 32


@pytest.mark.long
def test_parallel_launcher_runs_the_jobs_of_a_sweep_at_once(tmp_path, data_dir):
    """With the default config's loader settings: job 0 the default (device) pipeline, job 1 the
    torchvision DataLoader with its default 2 worker processes, started inside a launcher worker."""
    sweep = tmp_path / "sweep"
    r = run_cli("resnet_exp.run", "-m", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2",
                "data.pipeline=auto,torchvision", "trainer.max_epochs=1", "trainer.limit_train_batches=4",
                "trainer.limit_val_batches=2", "data.batch_size=16", "trainer.enable_progress_bar=false",
                f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in r.stdout + r.stderr
    jobs = [status(sweep / n) for n in "01"]
    assert [j["pipeline"] for j in jobs] == ["device", "torchvision"]
    assert jobs[0]["pid"] != jobs[1]["pid"]  # each job in its own process
    (a0, a1), (b0, b1) = ((datetime.fromisoformat(j["started"]), datetime.fromisoformat(j["finished"])) for j in jobs)
    assert a0 < b1 and b0 < a1  # the two jobs ran over the same time
    for job in (sweep / "0", sweep / "1"):
        assert status(job)["status"] == "completed" and len(rows(job)) == 1
        assert list((job / "wandb").glob("offline-run-*/run-*.wandb"))


def test_bench_measures_both_paths_and_writes_json(tmp_path, data_dir):
    """The bench's framework path is the run's, the config's callbacks included (a learning-rate
    monitor, which wants a logger, too)."""
    out = tmp_path / "bench.json"
    r = run_cli("resnet_exp.bench", "--steps", "2", "--warmup", "1", "--eval-batches", "1", "--out", str(out),
                "data.batch_size=32", "+callbacks=lr_monitor", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["batch_size"] == 32 and result["steps"] == 2 and result["device"].startswith("CPU")
    for path in ("reference", "framework"):
        assert all(result[path][k] > 0 for k in ("images_per_s", "eval_s", "startup_s", "warmup_s")), path
    # the plain loop on the framework's batches: 2 timed steps of 32 images
    plain = result["plain"]
    assert plain["precision"] == "32-true" and plain["images_per_s"] > 0
    assert plain["images_per_s"] * plain["ms_per_step"] / 1000 == pytest.approx(32)
    fw = result["framework"]
    assert (fw["pipeline"], fw["precision"], fw["compile"]) == ("device", "32-true", "none")  # the default path
    assert result["ratio"] == result["framework"]["images_per_s"] / result["reference"]["images_per_s"]
    assert "| reference: torchvision DataLoader (4 workers), fp32 eager |" in r.stdout
    assert f"framework / reference: {result['ratio']:.2f}x training images/s" in r.stdout
    # the machine it was measured on: ratios of different machine kinds are never mixed
    from resnet_exp.bench import machine_line
    from resnet_exp.training.hardware import cpu_model

    assert result["machine"]["cpu"] == cpu_model() and result["machine"]["torch"] == torch.__version__
    assert machine_line(result["machine"]) in r.stdout.splitlines()
    assert machine_line(result["machine"]).startswith(f"machine: {cpu_model()} (")


def test_bench_refuses_bad_input_in_one_line(capsys):
    from resnet_exp.bench import main

    assert main(["--steps", "0"]) == 2
    assert capsys.readouterr().err == "error: --steps=0 must be at least 1\n"
    assert main(["data.pipeline=gpu"]) == 2
    assert (
        capsys.readouterr().err
        == "error: data.pipeline=gpu is not a pipeline; choose one of: auto, device, torchvision\n"
    )
    assert main(["data.bogus=1"]) == 2
    assert capsys.readouterr().err.startswith("error: Could not override 'data.bogus'")
    # what only the libraries or the machine can judge, refused as a run refuses it, before any timing
    assert main(["optim.momentum=-1"]) == 2
    assert capsys.readouterr().err.startswith(
        "error: torch.optim.SGD refuses optim: ValueError: Invalid momentum value: -1"
    )
    if not torch.cuda.is_available():
        assert main(["trainer.accelerator=gpu"]) == 2
        assert capsys.readouterr().err == (
            "error: trainer.accelerator=gpu trainer.devices=1: no CUDA GPU is available here; use "
            "trainer.accelerator=auto (the CPU here) or cpu\n"
        )
