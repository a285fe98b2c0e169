"""Sweeps survive crashes, divergence, kills and interruption, and lose nothing (real CLI, CPU)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from resnet_exp.wandb_files import read_run
from tests.conftest import run_cli

SMALL = ("trainer.limit_val_batches=2", "data.batch_size=16", "data.num_workers=0", "trainer.enable_progress_bar=false")
RESULTS = ("train/loss", "train/acc", "test/loss", "test/acc")


def rows(job: Path) -> list[dict[str, str]]:
    with open(job / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def status(job: Path) -> dict:
    return json.loads((job / "status.json").read_text())


def test_failing_and_diverging_jobs_do_not_stop_the_sweep(tmp_path, data_dir):
    sweep = tmp_path / "sweep"
    args = (
        "resnet_exp.run",
        "-m",
        "optim.lr=1e6,0.1",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=4",
        *SMALL,
        "logger.wandb.mode=disabled",
        f"hydra.sweep.dir={sweep}",
    )
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 1
    diverged = status(sweep / "0")
    assert diverged["status"] == "diverged" and diverged["error"] == "diverged at epoch 1, step 3"
    assert status(sweep / "1")["status"] == "completed" and len(rows(sweep / "1")) == 1
    assert r.stderr.splitlines()[-2:] == [
        "1 of 2 job(s) did not complete:",
        f"  {sweep}/0: diverged: diverged at epoch 1, step 3",
    ]

    # Again in the same directory: both jobs ended for good, nothing is trained or rewritten.
    before = {p: p.stat().st_mtime_ns for p in sweep.glob("*/*") if p.is_file() and p.name != "run.log"}  # logs grow
    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 1
    assert f"{sweep}/1 completed before: skipped" in again.stdout + again.stderr
    assert {p: p.stat().st_mtime_ns for p in before} == before

    # A changed config is refused before any work, naming the keys, unless forced.
    changed = run_cli(*args[:-1], "trainer.max_epochs=2", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert changed.returncode == 2
    assert changed.stderr.strip() == (
        f"error: {sweep}/0 ran with another config (trainer.max_epochs: 1 -> 2); "
        "use a new hydra.sweep.dir, or force_resume=true to resume it anyway"
    )
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_a_job_that_raises_is_marked_failed_and_the_next_one_runs(tmp_path, data_dir):
    """model.num_classes=5 cannot hold Fashion-MNIST's labels 0-9: the loss raises in the first step."""
    sweep = tmp_path / "sweep"
    r = run_cli(
        "resnet_exp.run",
        "-m",
        "model.num_classes=5,10",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        *SMALL,
        "logger.wandb.mode=disabled",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert r.returncode == 1
    failed = status(sweep / "0")
    assert failed["status"] == "failed" and failed["epoch"] == 1 and "Traceback" in failed["traceback"]
    assert status(sweep / "1")["status"] == "completed"
    assert f"  {sweep}/0: failed: {failed['error']}" in r.stderr.splitlines()
    assert r.stderr.splitlines()[-1] == "Run the same command again to resume the ones that failed or were interrupted."


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def wait_for_epoch(job: Path, proc: subprocess.Popen, epochs: int, timeout: float = 120) -> None:
    """Wait until ``epochs`` epochs are logged and checkpointed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        ckpt = job / "checkpoints" / "last.ckpt"
        if (job / "metrics.csv").is_file() and len(rows(job)) >= epochs and ckpt.is_file():
            import torch

            try:
                if torch.load(ckpt, map_location="cpu", weights_only=True)["epoch"] + 1 >= epochs:
                    return
            except Exception:  # being replaced right now
                pass
        time.sleep(0.05)
    raise AssertionError(f"{job}: no checkpoint of epoch {epochs} in {timeout} s")


UNINTERRUPTED: dict[tuple[str, ...], Path] = {}  # command -> job directory of its uninterrupted run


def stop_in_epoch_2_and_resume(common: list[str], tmp_path: Path, signum: signal.Signals) -> tuple[Path, dict, str]:
    """Run ``common`` once through; run it again, stop it with ``signum`` early in epoch 2, check
    that the stopped run resumes to exactly the same per-epoch results. Returns the stopped job's
    directory, its status when stopped and what the resume printed."""
    if tuple(common) not in UNINTERRUPTED:  # the same run once through serves every test that stops it
        clean = run_cli(*common, f"hydra.sweep.dir={tmp_path}/clean", cwd=tmp_path)
        assert clean.returncode == 0, clean.stderr[-2000:]
        UNINTERRUPTED[tuple(common)] = tmp_path / "clean" / "0"
    job = tmp_path / "stopped" / "0"
    args = [*common, f"hydra.sweep.dir={tmp_path}/stopped"]
    proc = start(args, tmp_path)
    wait_for_epoch(job, proc, 1)
    time.sleep(0.4)  # into epoch 2
    proc.send_signal(signum)
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    status_when_stopped = status(job)
    resumed = run_cli(*args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    got, want = rows(job), rows(UNINTERRUPTED[tuple(common)])
    assert [float(r["epoch"]) for r in got] == [float(r["epoch"]) for r in want]  # no epoch twice or missing
    for g, w in zip(got, want):
        assert {k: g[k] for k in RESULTS} == {k: w[k] for k in RESULTS}
    assert status(job)["status"] == "completed"
    return job, status_when_stopped, resumed.stdout + resumed.stderr


def test_killed_mid_epoch_then_resumed_ends_as_if_never_killed(tmp_path, data_dir):
    common = [
        "resnet_exp.run",
        "-m",
        "block.order=pre",
        "trainer.max_epochs=3",
        "trainer.limit_train_batches=12",
        "trainer.deterministic=true",
        *SMALL,
    ]
    job, stopped, resumed = stop_in_epoch_2_and_resume(common, tmp_path, signal.SIGKILL)
    assert stopped["status"] == "running"  # killed: nothing had a chance to say otherwise
    assert "resuming after epoch 1 from" in resumed
    got = rows(job)
    # W&B continues the same run and ends with every epoch once, even those its helper process had
    # not yet written to disk when the job was killed.
    runs = [read_run(d) for d in sorted((job / "wandb").glob("offline-run-*"))]
    assert len(runs) == 2 and runs[-1].run_id == status(job)["wandb_id"]
    assert runs[0].path.parent.name.endswith(status(job)["wandb_id"])
    epochs = [h["epoch"] for r in runs for h in r.history if "test/acc" in h]
    assert sorted(epochs) == [1, 2, 3]
    by_epoch = {h["epoch"]: h for r in runs for h in r.history if "test/acc" in h}
    assert [by_epoch[e]["test/acc"] for e in (1, 2, 3)] == [float(r["test/acc"]) for r in got]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_ctrl_c_saves_where_it_stopped_and_resume_ends_as_if_never_stopped(tmp_path, data_dir, signum):
    common = ["resnet_exp.run", "-m", "block.order=post", "trainer.max_epochs=2", "trainer.limit_train_batches=12",
              "trainer.deterministic=true", *SMALL, "logger.wandb.mode=disabled"]  # fmt: skip
    job, s, resumed = stop_in_epoch_2_and_resume(common, tmp_path, signum)
    assert s["status"] == "interrupted" and s["epoch"] == 2 and s["error"] == f"signal {signum.name}"
    assert (job / "checkpoints" / "interrupted.ckpt").is_file()
    assert "batches of epoch 2" in resumed  # it went on from mid-epoch


def test_wandb_dying_mid_run_leaves_training_going(tmp_path, data_dir):
    """Kill W&B's helper process (wandb-core) after the first epoch: the job completes, the CSV is whole."""
    job = tmp_path / "run"
    proc = start(
        [
            "resnet_exp.run",
            "trainer.max_epochs=3",
            "trainer.limit_train_batches=10",
            *SMALL,
            "logger.wandb.mode=offline",
            f"hydra.run.dir={job}",
        ],
        tmp_path,
    )
    wait_for_epoch(job, proc, 1)
    helpers = [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit()
        and b"wandb-core" in _cmdline(p)
        and f"--pid {proc.pid}".encode() in _cmdline(p).replace(b"\0", b" ")
    ]
    assert helpers, "no wandb-core process found for the job"
    for pid in helpers:
        os.kill(pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out[-3000:]
    assert [float(r["epoch"]) for r in rows(job)] == [1.0, 2.0, 3.0]
    assert status(job)["status"] == "completed"
    warnings = [line for line in out.splitlines() if "W&B stopped working" in line]
    assert len(warnings) == 1 and warnings[0].endswith("training goes on, metrics go to metrics.csv")


def _cmdline(proc_dir: Path) -> bytes:
    try:
        return (proc_dir / "cmdline").read_bytes()
    except OSError:
        return b""
