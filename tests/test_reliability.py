"""Sweeps survive crashes, divergence, kills and interruption, and lose nothing; one process trains
a job at a time; every check runs and every record tells the truth (real CLI, CPU, real data)."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from resnet_exp.runs.console import python_command
from resnet_exp.runs.records import read_status
from resnet_exp.tracking.offline import read_run
from tests.conftest import (
    DEFAULT_THREADS,
    RESULTS,
    ROOT,
    SMALL,
    rows,
    run_cli,
    start,
    status,
    wait_for_epoch,
    wait_until,
)


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

    # The records to commit beside an experiment (experiments/keep.sh): with --completed only the
    # job that completed (what a sweep still running may commit), else every job; no checkpoints
    keep = [str(ROOT / "experiments" / "keep.sh")]
    r = subprocess.run([*keep, "--completed", str(sweep), str(tmp_path / "kept")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (
        r.stdout
        == f"kept the records of 1 completed job(s) of {sweep} in {tmp_path}/kept (0 kept before, left as they were)\n"
    )
    files = ["1/.hydra/config.yaml", "1/.hydra/hydra.yaml", "1/.hydra/overrides.yaml", "1/config.yaml",
             "1/metrics.csv", "1/signal.csv", "1/status.json", "multirun.yaml", "sweep.yaml"]  # fmt: skip
    kept = sorted(str(p.relative_to(tmp_path / "kept")) for p in (tmp_path / "kept").rglob("*") if p.is_file())
    assert kept == files
    assert all((tmp_path / "kept" / f).read_bytes() == (sweep / f).read_bytes() for f in files)
    r = subprocess.run([*keep, str(sweep), str(tmp_path / "all")], capture_output=True, text=True)
    assert r.returncode == 0 and status(tmp_path / "all" / "0")["status"] == "diverged", r.stderr
    assert (tmp_path / "all" / "0" / "config.yaml").is_file() and not (tmp_path / "all" / "0" / "metrics.csv").exists()
    assert not list((tmp_path / "all").rglob("*.ckpt"))
    r = subprocess.run(
        [*keep, "--completed", str(sweep / "1"), str(tmp_path / "wrong")], capture_output=True, text=True
    )
    assert (r.returncode, r.stderr) == (2, f"error: {sweep}/1 is not a sweep's folder (no multirun.yaml); "
                                        "give the hydra.sweep.dir of a sweep\n")  # fmt: skip
    assert not (tmp_path / "wrong").exists()

    # Again in the same directory (from another working directory): both jobs ended for good, nothing
    # is trained or rewritten; logs grow, and the lock file names its latest holder
    before = {p: p.stat().st_mtime_ns for p in sweep.glob("*/*") if p.is_file() and p.name not in ("run.log", ".lock")}
    (tmp_path / "elsewhere").mkdir()
    again = run_cli(*args, cwd=tmp_path / "elsewhere")
    assert again.returncode == 1
    assert f"{sweep}/1 completed before: skipped" in again.stdout + again.stderr
    assert {p: p.stat().st_mtime_ns for p in before} == before
    # Hydra rewrote its record of the skipped job (this launch's cwd); the kept one stays the training's
    hydra_record = [(tmp_path / d / "1" / ".hydra" / "hydra.yaml").read_text() for d in ("kept", "sweep")]
    assert f"cwd: {tmp_path}\n" in hydra_record[0] and f"cwd: {tmp_path}/elsewhere\n" in hydra_record[1]
    r = subprocess.run([*keep, "--completed", str(sweep), str(tmp_path / "kept")], capture_output=True, text=True)
    assert r.stdout.endswith(" (1 kept before, left as they were)\n"), r.stderr
    assert (tmp_path / "kept" / "1" / ".hydra" / "hydra.yaml").read_text() == hydra_record[0]

    # A changed config is refused before any work, naming the keys, unless forced.
    changed = run_cli(*args[:-1], "trainer.max_epochs=2", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert changed.returncode == 2
    assert changed.stderr.strip() == (
        f"error: {sweep}/0 ran with another config (trainer.max_epochs: 1 -> 2); "
        "use a new hydra.sweep.dir, or force_resume=true to resume it anyway"
    )
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_a_job_that_raises_is_marked_failed_and_the_next_one_runs(tmp_path, data_dir):
    """SparseAdam passes every check before the jobs start (its constructor takes the network's
    parameters) and refuses the first dense gradient, in the middle of the job's first epoch."""
    sweep = tmp_path / "sweep"
    swept = "optim._target_=torch.optim.SparseAdam,torch.optim.SGD"
    sgd_only = ["~optim.momentum", "~optim.weight_decay", "~optim.nesterov"]  # arguments SparseAdam lacks
    r = run_cli(
        "resnet_exp.run",
        "-m",
        swept,
        *sgd_only,
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
    assert failed["error"] == "RuntimeError: SparseAdam does not support dense gradients, please consider Adam instead"
    assert status(sweep / "1")["status"] == "completed"
    assert f"  {sweep}/0: failed: {failed['error']}" in r.stderr.splitlines()
    # the exact command that resumes it, with the sweep's directory
    hint = (
        f"To resume the ones that failed or were interrupted: {python_command(tmp_path)} -m resnet_exp.run "
        f"-m {swept} '~optim.momentum' "
    )
    assert r.stderr.splitlines()[-1].startswith(hint) and r.stderr.splitlines()[-1].endswith(f"hydra.sweep.dir={sweep}")


UNINTERRUPTED: dict[tuple[str, ...], Path] = {}  # command -> job directory of its uninterrupted run


def stop_in_epoch_2_and_resume(loader: str, tmp_path: Path, signum: signal.Signals) -> tuple[Path, dict, str, str]:
    """Run ``loader``'s STOPPED command once through; run it again, stop it with ``signum`` early in epoch 2, check
    that the stopped run resumes to exactly the same per-epoch results. Returns the stopped job's
    directory, its status when stopped, what the stopped run printed last and what the resume
    printed."""
    common, env = STOPPED[loader], STOPPED_ENV[loader]
    if tuple(common) not in UNINTERRUPTED:  # the same run once through serves every test that stops it
        clean = run_cli(*common, f"hydra.sweep.dir={tmp_path}/clean", cwd=tmp_path, env=env)
        assert clean.returncode == 0, clean.stderr[-2000:]
        losses = [float(r["train/loss"]) for r in rows(tmp_path / "clean" / "0")]
        assert max(losses) < STABLE_LOSS, f"training near divergence ({losses}): lower optim.lr in the test"
        UNINTERRUPTED[tuple(common)] = tmp_path / "clean" / "0"
    job = tmp_path / "stopped" / "0"
    args = [*common, f"hydra.sweep.dir={tmp_path}/stopped"]
    proc = start(args, tmp_path, env)
    wait_for_epoch(job, proc, 1)  # epoch 1 checkpointed: the next batch that ends is in epoch 2
    proc.send_signal(signum)
    stopped_output, _ = proc.communicate()
    assert proc.returncode != 0
    status_when_stopped = status(job)
    if signum == signal.SIGKILL:  # its record says running; read, it says the process is gone
        read = read_status(job)
        assert read["status"] == "stopped" and f"process {proc.pid} is gone without a record" in read["error"]
    resumed = run_cli(*args, cwd=tmp_path, env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    got, want = rows(job), rows(UNINTERRUPTED[tuple(common)])
    assert [float(r["epoch"]) for r in got] == [float(r["epoch"]) for r in want]  # no epoch twice or missing
    for g, w in zip(got, want):
        assert {k: g[k] for k in RESULTS} == {k: w[k] for k in RESULTS}
    if "+callbacks=training_curve" in common:  # the loss within epochs too, row for row
        curve = (job / "train_curve.csv").read_text()
        assert curve == (UNINTERRUPTED[tuple(common)] / "train_curve.csv").read_text() and curve.count("\n") == 7
    assert status(job)["status"] == "completed"
    return job, status_when_stopped, stopped_output, resumed.stdout + resumed.stderr


# One command per loader, shared by the tests that stop it (its uninterrupted run is made once per
# test process); SIGKILL and one of SIGTERM and Ctrl-C for each.
# At batch 16 the seed's lr 0.1 is on the edge of divergence on any CPU: pre's epoch-1 training loss
# is 10-30 (chance is ln 10 = 2.3), and lr 0.2 diverges in epoch 1; which CPU's rounding tips it over
# decided whether the suite passed. At lr 0.01 the loss stays near chance, with room to spare (lr
# 0.04 is the first to leave it, at about 5); UNINTERRUPTED's runs are held to that margin.
STOPPED = {
    "default": ["resnet_exp.run", "-m", "block.order=pre", "optim.lr=0.01", "trainer.max_epochs=2",
                "trainer.limit_train_batches=12", "trainer.deterministic=true", *SMALL],
    # with the training curve (+callbacks), whose rows must resume exactly too
    "torchvision-workers": ["resnet_exp.run", "-m", "block.order=pre", "optim.lr=0.01", "trainer.max_epochs=2",
                            "trainer.limit_train_batches=12", "trainer.deterministic=true", *SMALL,
                            "data.pipeline=torchvision", "+callbacks=training_curve", "callbacks.training_curve.every=5"],
}  # fmt: skip
# The default loader's runs spread their ops over every core, as a user's do (torch's default):
# exact resume is checked at the thread count users train with, not only at the suite's one.
STOPPED_ENV = {"default": DEFAULT_THREADS, "torchvision-workers": {}}
STABLE_LOSS = 2 * math.log(10)  # twice the loss of a uniform guess: far from the edge, on any CPU


def by_loader(*params: tuple) -> list:
    """Parameters of the tests that stop a STOPPED command, grouped by that command (its last value):
    the tests of one command run in one pytest-xdist worker, which makes its uninterrupted run once,
    and the two commands' groups run side by side."""
    return [pytest.param(*p, marks=pytest.mark.xdist_group(f"stopped-{p[-1]}")) for p in params]


@pytest.mark.parametrize("loader", by_loader(*((loader,) for loader in STOPPED)))
def test_killed_then_resumed_ends_as_if_never_killed(tmp_path, data_dir, loader):
    """With the default config's loader (the device pipeline) and with the torchvision DataLoader at
    its default 2 persistent worker processes, which fetch indices as soon as the loader is iterated."""
    job, stopped, _, resumed = stop_in_epoch_2_and_resume(loader, tmp_path, signal.SIGKILL)
    assert stopped["status"] == "running"  # killed: nothing had a chance to say otherwise
    assert "resuming after epoch 1 from" in resumed or "batches of epoch 2" in resumed
    # the record of the attempt that completed it says where that attempt began
    assert (status(job)["status"], status(job)["resumed_after_epoch"]) == ("completed", 1)
    got = rows(job)
    # W&B continues the same run and ends with every epoch once, even those its helper process had
    # not yet written to disk when the job was killed.
    runs = [read_run(d) for d in sorted((job / "wandb").glob("offline-run-*"))]
    assert len(runs) == 2 and runs[-1].run_id == status(job)["wandb_id"]
    assert runs[0].path.parent.name.endswith(status(job)["wandb_id"])
    epochs = [h["epoch"] for r in runs for h in r.history if "test/acc" in h]
    assert sorted(epochs) == [1, 2]
    by_epoch = {h["epoch"]: h for r in runs for h in r.history if "test/acc" in h}
    assert [by_epoch[e]["test/acc"] for e in (1, 2)] == [float(r["test/acc"]) for r in got]


@pytest.mark.parametrize(
    ("signum", "loader"), by_loader((signal.SIGTERM, "default"), (signal.SIGINT, "torchvision-workers"))
)
def test_sigterm_or_ctrl_c_saves_where_it_stopped_and_resume_ends_as_if_never_stopped(
    tmp_path, data_dir, signum, loader
):
    job, s, stopped_output, resumed = stop_in_epoch_2_and_resume(loader, tmp_path, signum)
    assert s["status"] == "interrupted" and s["epoch"] == 2 and s["error"] == f"signal {signum.name}"
    # it says how it stopped and the exact command that resumes it
    command = " ".join(
        [f"{python_command(tmp_path)} -m resnet_exp.run", *STOPPED[loader][1:], f"hydra.sweep.dir={tmp_path}/stopped"]
    )
    assert stopped_output.splitlines()[-1] == f"stopped (signal {signum.name}); to resume: {command}"
    assert (job / "checkpoints" / "interrupted.ckpt").is_file()
    assert "batches of epoch 2" in resumed  # it went on from mid-epoch


def test_stopped_in_its_first_epoch_a_job_keeps_the_signal_rows_of_initialisation(tmp_path, data_dir):
    """SIGTERM in the middle of epoch 1 (after the epoch-0 signal rows, before the epoch ends): the
    resume goes on from that batch and does not measure initialisation again, so signal.csv keeps
    the rows measured before the stop, then epoch 1's."""
    job = tmp_path / "run"
    args = ["resnet_exp.run", "trainer.max_epochs=1", "trainer.limit_train_batches=60", *SMALL,
            "logger.wandb.mode=disabled", f"hydra.run.dir={job}"]  # fmt: skip
    proc = start(args, tmp_path)
    signal_csv, units_and_stages = job / "signal.csv", 9  # the seed network: 6 units, 3 stages
    wait_until(lambda: signal_csv.is_file() and len(signal_csv.read_text().splitlines()) == 1 + units_and_stages, proc)
    at_init = signal_csv.read_text()
    proc.send_signal(signal.SIGTERM)
    proc.communicate()
    assert (status(job)["status"], status(job)["epoch"]) == ("interrupted", 1)
    resumed = run_cli(*args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "batches of epoch 1 from" in resumed.stdout + resumed.stderr  # it went on mid-epoch 1
    lines = signal_csv.read_text().splitlines()
    assert lines[: 1 + units_and_stages] == at_init.splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["0"] * units_and_stages + ["1"] * units_and_stages


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
    out, _ = proc.communicate()
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


def test_last_checkpoint_is_every_epoch_whatever_the_monitored_metric_did(tmp_path):
    """The job's checkpoint callbacks under a real Trainer, on a module whose test accuracy falls
    after epoch 1: best.ckpt stays at epoch 1, last.ckpt follows every epoch, each written whole."""
    import pytorch_lightning as pl

    from resnet_exp.runs.job import AtomicCheckpointIO, checkpoint_callbacks

    class Falling(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            return self.layer(batch[0]).pow(2).mean()

        def validation_step(self, batch, batch_idx):
            self.log("test/acc", [0.9, 0.5, 0.4][self.current_epoch])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 2)), batch_size=4)
    trainer = pl.Trainer(max_epochs=3, callbacks=checkpoint_callbacks(tmp_path, "test/acc"),
                         plugins=[AtomicCheckpointIO()], logger=False, enable_progress_bar=False,
                         enable_model_summary=False)  # fmt: skip
    trainer.fit(Falling(), data, data)
    epochs = {p.name: torch.load(p, weights_only=True)["epoch"] for p in tmp_path.iterdir()}
    assert epochs == {"best.ckpt": 0, "last.ckpt": 2}  # no last-v1.ckpt, no .tmp left behind


def test_a_job_held_by_another_process_is_skipped_and_two_sweeps_at_once_train_every_epoch_once(tmp_path, data_dir):
    from resnet_exp.runs.job import Job

    # A job whose lock another process holds (here: this one) is skipped, naming the holder.
    held = tmp_path / "a" / "sw"
    args = [
        "resnet_exp.run",
        "-m",
        "block.order=post,pre",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=4",
        *SMALL,
    ]
    with Job(held / "0").locked():
        r = run_cli(*args, f"hydra.sweep.dir={held}", cwd=tmp_path)
    assert r.returncode == 1
    assert f"{held}/0 is being trained by host {os.uname().nodename}, process {os.getpid()}" in r.stdout + r.stderr
    assert not (held / "0" / "metrics.csv").exists() and status(held / "1")["status"] == "completed"

    # The same sweep started twice at once into one directory: every epoch of every job once, one
    # W&B run per job, one group for the sweep (and not the other sweep's, though its folder has
    # the same name).
    both = tmp_path / "b" / "sw"
    procs = [start([*args, f"hydra.sweep.dir={both}"], tmp_path) for _ in range(2)]
    outputs = [p.communicate()[0] for p in procs]
    for job in (both / "0", both / "1"):
        assert [r["epoch"] for r in rows(job)] == ["1.0", "2.0"], outputs
        assert status(job)["status"] == "completed"
        (run_dir,) = (job / "wandb").glob("offline-run-*")
        assert read_run(run_dir).group == OmegaConf.load(both / "sweep.yaml").group
    assert OmegaConf.load(both / "sweep.yaml").group != OmegaConf.load(held / "sweep.yaml").group


def test_a_single_run_is_checked_before_any_work(tmp_path, data_dir):
    """Resumed with hydra.run.dir, a single run gets the same checks as a sweep: a changed config,
    a value that cannot be resolved and a saved config that cannot be read stop it with one line
    and exit 2, and nothing is written."""
    run = tmp_path / "run"
    args = [
        "resnet_exp.run",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        *SMALL,
        "logger.wandb.mode=disabled",
    ]
    assert run_cli(*args, f"hydra.run.dir={run}", cwd=tmp_path).returncode == 0
    (run / "status.json").unlink()  # as if it had been stopped

    def files() -> dict:
        return {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != "run.log"}

    before = files()
    changed = run_cli(*args, "optim.lr=0.5", f"hydra.run.dir={run}", cwd=tmp_path)
    assert changed.returncode == 2
    assert changed.stderr.strip() == (
        f"error: {run} ran with another config (optim.lr: 0.1 -> 0.5); use a new hydra.run.dir, "
        "or force_resume=true to resume it anyway"
    )
    unresolved = run_cli(*args, "optim.lr=${oc.env:RESNET_EXP_UNSET}", f"hydra.run.dir={tmp_path}/new", cwd=tmp_path)
    assert unresolved.returncode == 2 and not (tmp_path / "new").exists()
    assert unresolved.stderr.strip().startswith("error: a config value cannot be resolved: ")
    assert "RESNET_EXP_UNSET" in unresolved.stderr and len(unresolved.stderr.strip().splitlines()) == 1
    assert files() == before
    (run / "config.yaml").write_text("block: [unclosed\n")
    tampered = run_cli(*args, f"hydra.run.dir={run}", cwd=tmp_path)
    assert tampered.returncode == 2 and len(tampered.stderr.strip().splitlines()) == 1
    assert tampered.stderr.startswith(f"error: {run}/config.yaml cannot be read (")


@pytest.mark.long
def test_records_never_lie_after_a_lost_row_or_a_broken_checkpoint(tmp_path, data_dir):
    """One job, damaged three times, each time sent on one epoch further (force_resume: the epoch
    count changed). A lost metrics.csv row comes back from the checkpoint, as it was; a garbage
    last.ckpt is named in one line and recorded, and the job goes on from best.ckpt; no readable
    checkpoint at all fails the job with one line that says what to delete."""
    job = tmp_path / "job"
    base = ["resnet_exp.run", "trainer.limit_train_batches=3", "trainer.deterministic=true", *SMALL,
            "logger.wandb.mode=disabled", f"hydra.run.dir={job}"]  # fmt: skip

    def go_on_to(epochs: int) -> subprocess.CompletedProcess:
        (job / "status.json").unlink(missing_ok=True)  # as if it had been stopped
        return run_cli(*base, f"trainer.max_epochs={epochs}", "force_resume=true", cwd=tmp_path)

    assert go_on_to(2).returncode == 0
    two = [{k: r[k] for k in ("epoch", *RESULTS)} for r in rows(job)]
    (job / "metrics.csv").write_text("".join((job / "metrics.csv").read_text().splitlines(keepends=True)[:-1]))
    assert go_on_to(3).returncode == 0
    assert [{k: r[k] for k in ("epoch", *RESULTS)} for r in rows(job)][:2] == two
    assert [r["epoch"] for r in rows(job)] == ["1.0", "2.0", "3.0"]

    best_epoch = torch.load(job / "checkpoints" / "best.ckpt", weights_only=True)["epoch"] + 1
    (job / "checkpoints" / "last.ckpt").write_bytes(b"not a checkpoint")
    r = go_on_to(4)
    assert r.returncode == 0, r.stderr[-2000:]
    named = [line for line in (r.stdout + r.stderr).splitlines() if "last.ckpt cannot be read" in line]
    assert len(named) == 1 and "trying the next checkpoint" in named[0]
    assert status(job)["unreadable_checkpoints"][0].startswith(f"{job}/checkpoints/last.ckpt cannot be read (")
    assert f"resuming after epoch {best_epoch} from {job}/checkpoints/best.ckpt" in r.stdout + r.stderr
    assert [r["epoch"] for r in rows(job)] == ["1.0", "2.0", "3.0", "4.0"]
    assert status(job)["status"] == "completed"

    for ckpt in (job / "checkpoints").iterdir():
        ckpt.write_bytes(b"")
    r = go_on_to(5)
    assert r.returncode == 1
    error = status(job)["error"]
    assert status(job)["status"] == "failed" and error.startswith("JobError: no readable checkpoint: ")
    assert error.endswith(f"delete {job}/checkpoints to train the job from the start")
    assert f"{job}: {error} (details in {job}/status.json)" in r.stdout + r.stderr


def test_a_job_that_fails_before_training_is_recorded_with_the_reason(tmp_path, data_dir):
    """The job's process group cannot listen on its MASTER_PORT (another program holds it, as where
    two jobs on one node were given the same port): it fails while Lightning sets up the strategy,
    before the first training step, and the job's record says why. (A value a library refuses
    outright, trainer.strategy=bogus, is refused before any job starts: test_config.)"""
    run = tmp_path / "run"
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        r = run_cli("resnet_exp.run", "trainer.max_epochs=1", *SMALL, "trainer.strategy=ddp", "trainer.devices=1",
                    "logger.wandb.mode=disabled", f"hydra.run.dir={run}", cwd=tmp_path,
                    env={"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})  # fmt: skip
    assert r.returncode == 1
    s = status(run)
    assert s["status"] == "failed" and s["error"].startswith("DistNetworkError: ")
    assert f"port: {port}" in s["error"] and "address already in use" in s["error"]
    assert not (run / "metrics.csv").exists()  # nothing trained
    assert f"{run}: {s['error']} (details in {run}/status.json)" in r.stdout + r.stderr
    assert f"  {run}: failed: {s['error']}" in r.stderr.splitlines()


@pytest.mark.long
def test_a_job_started_under_old_defaults_resumes_with_its_saved_config(tmp_path, data_dir):
    """The defaults changed (loss.reduction mean -> batch_size, precise BN 0 -> 40 batches): a job
    started under the old ones and stopped resumes, when its command (which did not name them) runs
    again, with the values it ran with, says so, and ends exactly as the same job never stopped. A
    command line that sets one of them to another value is refused, naming it."""
    old = ["loss.reduction=mean", "evaluation.precise_bn_batches=0"]  # what the old defaults composed
    small = [o for o in SMALL if not o.startswith("evaluation.")]  # the command does not name them
    common = ["resnet_exp.run", "trainer.max_epochs=2", "trainer.limit_train_batches=6", "trainer.deterministic=true",
              *small, "logger.wandb.mode=disabled"]  # fmt: skip
    clean = run_cli(*common, *old, f"hydra.run.dir={tmp_path}/clean", cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr[-2000:]
    job = tmp_path / "stopped"
    proc = start([*common, *old, f"hydra.run.dir={job}"], tmp_path)
    wait_for_epoch(job, proc, 1)
    proc.send_signal(signal.SIGTERM)
    proc.communicate()
    assert status(job)["status"] == "interrupted"
    saved = (job / "config.yaml").read_bytes()

    refused = run_cli(*common, "evaluation.precise_bn_batches=40", f"hydra.run.dir={job}", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"error: {job} ran with another config (evaluation.precise_bn_batches: 0 -> 40); use a new "
        "hydra.run.dir, or force_resume=true to resume it anyway"
    )
    assert status(job)["status"] == "interrupted" and (job / "config.yaml").read_bytes() == saved

    resumed = run_cli(*common, f"hydra.run.dir={job}", cwd=tmp_path)  # today's defaults
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (
        f"{job} resumes with the config it ran with: loss.reduction=mean (the default now: batch_size), "
        "evaluation.precise_bn_batches=0 (the default now: 40)"
    ) in resumed.stdout + resumed.stderr
    assert status(job)["status"] == "completed"
    assert OmegaConf.load(job / "config.yaml").loss.reduction == "mean"
    assert OmegaConf.load(job / "config.yaml").evaluation.precise_bn_batches == 0
    got, want = rows(job), rows(tmp_path / "clean")
    assert [{k: r[k] for k in ("epoch", *RESULTS)} for r in got] == [
        {k: r[k] for k in ("epoch", *RESULTS)} for r in want
    ]
    assert all(not r.get("test/acc_running") for r in got)  # precise BN stayed off
    ckpt = torch.load(job / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"]["config"]["loss"]["reduction"] == "mean"

    # A new job under the same command takes today's defaults.
    fresh = run_cli(*common, "trainer.max_epochs=1", f"hydra.run.dir={tmp_path}/fresh", cwd=tmp_path)
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    assert OmegaConf.load(tmp_path / "fresh" / "config.yaml").loss.reduction == "batch_size"
    assert float(rows(tmp_path / "fresh")[0]["test/acc_running"]) > 0


# Sent to the job itself right after its Nth optimizer step (a sitecustomize on PYTHONPATH): a
# signal that lands exactly in a chosen training batch.
SIGTERM_AT_STEP = """
import os
import signal

_target = int(os.environ.get("SIGTERM_AT_STEP") or 0)
if _target:
    import torch

    _step, _count = torch.optim.SGD.step, [0]

    def _counted(self, *args, **kwargs):
        out = _step(self, *args, **kwargs)
        _count[0] += 1
        if _count[0] == _target:
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    torch.optim.SGD.step = _counted
"""


def test_a_stop_in_an_epochs_last_batch_resumes_from_the_checkpoint_before_it_and_ends_exactly(tmp_path, data_dir):
    """SIGTERM in the last training batch of epoch 2 (of 3 batches each): the job stops there
    without a checkpoint, as during the evaluation, and the resume redoes epoch 2 from last.ckpt,
    ending as the same job never stopped. (Lightning resumes a checkpoint of the last batch's end
    without evaluating that epoch: a checkpoint there lost the epoch's row, seen under SLURM's
    time limit.)"""
    import textwrap

    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(textwrap.dedent(SIGTERM_AT_STEP))
    common = ["resnet_exp.run", "trainer.max_epochs=3", "trainer.limit_train_batches=3", "trainer.deterministic=true",
              *SMALL, "logger.wandb.mode=disabled"]  # fmt: skip
    twin, job = tmp_path / "twin", tmp_path / "job"
    assert run_cli(*common, f"hydra.run.dir={twin}", cwd=tmp_path).returncode == 0
    stopped = run_cli(*common, f"hydra.run.dir={job}", cwd=tmp_path,
                      env={"PYTHONPATH": str(inject), "SIGTERM_AT_STEP": "6"})  # fmt: skip
    assert stopped.returncode == 130, stopped.stderr[-3000:]
    assert status(job)["status"] == "interrupted" and status(job)["epoch"] == 2
    assert [r["epoch"] for r in rows(job)] == ["1.0"]
    assert not (job / "checkpoints" / "interrupted.ckpt").exists()
    resumed = run_cli(*common, f"hydra.run.dir={job}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"{job}: resuming after epoch 1 from {job}/checkpoints/last.ckpt" in resumed.stdout + resumed.stderr
    assert [{k: r[k] for k in ("epoch", *RESULTS)} for r in rows(job)] == [
        {k: r[k] for k in ("epoch", *RESULTS)} for r in rows(twin)
    ]


def test_a_job_saved_before_the_projects_callbacks_were_config_entries_resumes_and_groups_as_it_ran(tmp_path):
    """Jobs saved while the project's callbacks were built in code hold ``callbacks: {}`` (or no
    ``callbacks`` at all): they ran with the divergence guard and the signal probe, so resuming one
    under today's config finds nothing changed, and a report files it beside today's jobs of the
    same recipe, not apart by a ``callbacks`` key."""
    from resnet_exp.analysis.groups import swept_keys
    from resnet_exp.analysis.jobs import read_job, with_gained_keys
    from resnet_exp.command_line import load_config
    from resnet_exp.runs.saved_config import job_config, resume_plan

    cfg = load_config(["block.order=pre"])
    today = job_config(cfg)
    jobs = []
    for name, callbacks in (("today", today["callbacks"]), ("empty", {}), ("absent", None)):
        saved = {k: v for k, v in today.items() if k != "callbacks" or callbacks is not None}
        if callbacks is not None:
            saved["callbacks"] = callbacks
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(saved)))
        plan = resume_plan(tmp_path / name, cfg, ["block.order=pre"])
        assert (plan.conflicts, plan.kept) == ([], {}), name
        jobs.append(read_job(tmp_path / name, name))
    assert "callbacks: {}" in (tmp_path / "empty" / "config.yaml").read_text()
    jobs = with_gained_keys(jobs)
    assert [j.config == jobs[0].config for j in jobs] == [True, True, True]
    assert swept_keys(jobs) == []
    # the project's callbacks watch and measure, they do not change what a job computes: turned
    # off or tuned, they are no part of the recipe (records.NOT_RECIPE), like diagnostics.*
    off = {**today, "callbacks": {"divergence_guard": None, "signal_propagation": None}}
    (tmp_path / "off").mkdir()
    (tmp_path / "off" / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(off)))
    plan = resume_plan(tmp_path / "off", cfg, ["block.order=pre"])
    assert (plan.conflicts, plan.kept) == ([], {})
    assert swept_keys(with_gained_keys([*jobs, read_job(tmp_path / "off", "off")])) == []
