"""Faults injected into a job's files: a damaged mirror (metrics.csv, W&B's offline file) is set
aside, named and kept, and rebuilt from the checkpoint, never the reason a job cannot resume; a
report over damaged files lists them in one line each instead of a traceback; a full disk (a small
tmpfs) fails the job in its record, and it resumes once there is room; a kill during each file the
job writes leaves a job that resumes and ends as if never killed."""

from __future__ import annotations

import json
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest

from resnet_exp.report import main as report_main
from resnet_exp.tracking.offline import read_run
from tests.conftest import RESULTS, SMALL, rows, run_cli, start, status, wait_for_epoch


def test_damaged_mirrors_are_set_aside_and_rebuilt_on_resume(tmp_path, data_dir, capsys):
    job = tmp_path / "run"
    args = ["resnet_exp.run", "trainer.max_epochs=2", "trainer.limit_train_batches=6", *SMALL,
            "logger.wandb.mode=offline", f"hydra.run.dir={job}"]  # fmt: skip
    proc = start(args, tmp_path)
    wait_for_epoch(job, proc, 1)
    proc.send_signal(signal.SIGTERM)
    proc.communicate()
    assert status(job)["status"] == "interrupted"
    first = rows(job)[0]
    garbage = b"\x00\xffnot,a\ncsv\x00 at all\n"
    (job / "metrics.csv").write_bytes(garbage)
    (wandb_file,) = job.glob("wandb/offline-run-*/run-*.wandb")
    wandb_file.write_bytes(wandb_file.read_bytes()[:64] + b"\xff" * 4096)  # a protobuf no reader can parse
    # a report from W&B's files names the damaged run, and with nothing else to read refuses in one line
    assert report_main(["--wandb-offline", str(job), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"warning: {wandb_file.parent.name} ({wandb_file.parent}): cannot be read: DecodeError: ")
    assert err.splitlines()[-1].startswith(
        f"error: no job's records can be read ({wandb_file.parent.name}: cannot be read: DecodeError: "
    )
    assert not (tmp_path / "r").exists()

    resumed = run_cli(*args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    out = resumed.stdout + resumed.stderr
    assert f"{job}/metrics.csv cannot be read (" in out and f"kept as {job}/metrics.csv.damaged" in out
    assert (job / "metrics.csv.damaged").read_bytes() == garbage  # kept as it was
    got = rows(job)
    assert [r["epoch"] for r in got] == ["1.0", "2.0"] and got[0] == first  # rebuilt from the checkpoint
    assert status(job)["status"] == "completed"
    aside = list(job.glob("wandb/offline-run-*.damaged"))
    assert len(aside) == 1 and (aside[0] / wandb_file.name).is_file()
    assert f"W&B's offline run {wandb_file.parent} cannot be read (" in out
    # the run W&B continued, with every epoch (its name ends with its random id: any letter)
    (continued,) = [p for p in job.glob("wandb/offline-run-*") if not p.name.endswith(".damaged")]
    history = [h for h in read_run(continued).history if "test/acc" in h]
    assert sorted(h["epoch"] for h in history) == [1, 2]
    assert report_main(["--wandb-offline", str(job), "--out", str(tmp_path / "r2")]) == 0  # the set-aside run left out
    assert "unreadable" not in (tmp_path / "r2" / "report.md").read_text()


def test_report_lists_unreadable_jobs_in_one_line_each(tmp_path, capsys):
    from tests.test_report import make_job

    s = tmp_path / "sweep"
    for n, seed in enumerate((1, 2, 3)):
        make_job(s, n, "post", seed, [0.5, 0.8])
    (s / "1" / "metrics.csv").write_text("epoch,test/acc\n1.0,not a number\n")
    (s / "2" / "config.yaml").write_text("block: !!python/object:os.system {}\n")
    assert report_main([str(s), "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err.splitlines()
    number = "cannot be read: ValueError: could not convert string to float: 'not a number'"
    assert err[0] == f"warning: sweep/1 ({s}/1): {number}; left out of every statistic"
    assert err[1].startswith(f"warning: sweep/2 ({s}/2): cannot be read: ") and len(err) == 2
    text = (tmp_path / "r" / "report.md").read_text()
    top = text.split("## What was swept")[0]  # said before anything else
    assert "**Left out of every statistic: 2 jobs whose records cannot be read or trusted:**" in top
    assert f"- `sweep/1`: {number}" in top and "- `sweep/2`: cannot be read: " in top
    assert f"| sweep/1 | unreadable | 0 | {number} |" in text
    assert "| sweep/2 | unreadable | 0 | cannot be read: " in text
    assert "| all jobs | 1 | running averages | 80.00 (one run) |" in text  # the readable job alone
    # the sweep's console summary counts them apart from the jobs not started; a job folder that
    # lost its config.yaml, which the sweep's record lists, cannot be read either
    from resnet_exp.analysis.glance import glance

    (s / "sweep.yaml").write_text("group: sweep-ab12\nswept: []\njobs: 6\n")
    (s / "3").mkdir()
    (s / "3" / "status.json").write_text('{"status": "completed"}')  # ended, its config.yaml gone
    (s / "5").mkdir()  # made by Hydra, its job not set up yet: starting, not damaged
    lines = glance(s).splitlines()
    assert lines[2:4] == [
        "  and 2 jobs not started yet",
        "  and 3 jobs whose records cannot be read or trusted, left out",
    ]
    assert report_main([str(s), "--out", str(tmp_path / "r2")]) == 0
    assert capsys.readouterr().err.splitlines()[2] == (
        f"warning: sweep/3 ({s}/3): cannot be read: it has no config.yaml; left out of every statistic"
    )
    text = (tmp_path / "r2" / "report.md").read_text()
    assert "| sweep/4 | not started | 0 |  |" in text and "| sweep/5 | starting | 0 |  |" in text
    # nothing readable left: one line, exit 2, no report written
    (s / "0" / "metrics.csv").write_text("epoch,test/acc\n1.0,0.5\n2.0,oops\n")
    assert report_main([str(s), "--out", str(tmp_path / "r3")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("error: no job's records can be read (sweep/0: cannot be read: ValueError: ")
    assert err[-1].endswith("; nothing to report") and "sweep/2: cannot be read: " in err[-1]
    assert not (tmp_path / "r3").exists()


def test_a_config_changed_after_its_job_wrote_it_is_refused_by_the_resume_and_named_by_the_report(tmp_path, data_dir):
    """A completed job's config.yaml edited by hand (optim.lr 0.1 -> 0.2): the sweep's command again
    refuses in one line naming the file, the key and both values, before any work, leaving every
    record as it was, and the report leaves the job out, saying why. A change that keeps the
    config (a comment) is no reason: the sweep goes on, skipping both jobs."""
    from tests.conftest import TINY

    sweep = tmp_path / "sweep"
    args = ["resnet_exp.run", "-m", "block.order=post,pre", *TINY, f"hydra.sweep.dir={sweep}"]
    first = run_cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    config = sweep / "0" / "config.yaml"
    trained = config.read_text()
    assert "  lr: 0.1\n" in trained
    config.write_text(trained.replace("  lr: 0.1\n", "  lr: 0.2\n"))
    before = {p: p.read_bytes() for p in sweep.rglob("*") if p.is_file()}

    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr == (
        f"error: {config} was changed after its job wrote it: optim.lr is 0.2 there but the job trained with 0.1 "
        f"(checkpoints/last.ckpt); restore it, or delete {sweep / '0'} to train the job anew\n"
    )
    assert {p: p.read_bytes() for p in sweep.rglob("*") if p.is_file()} == before

    assert report_main([str(sweep), "--out", str(tmp_path / "r")]) == 0
    text = (tmp_path / "r" / "report.md").read_text()
    assert f"- `sweep/0`: cannot be trusted: {config} was changed after its job wrote it: optim.lr is 0.2" in text
    assert "| all jobs | 1 |" in text  # job 1 alone

    config.write_text("# read again by hand\n" + trained)
    resumed = run_cli(*args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stdout.count("completed before: skipped") == 2


def test_a_completed_job_whose_status_json_was_damaged_is_recorded_true_again(tmp_path, data_dir):
    """Its record is set aside and rebuilt from the checkpoint: completed, with the final metrics it
    ended with, in the same W&B run; nothing is trained again."""
    job = tmp_path / "run"
    args = ["resnet_exp.run", "trainer.max_epochs=1", "trainer.limit_train_batches=2", *SMALL,
            "logger.wandb.mode=offline", f"hydra.run.dir={job}"]  # fmt: skip
    assert run_cli(*args, cwd=tmp_path).returncode == 0
    before = status(job)
    (job / "status.json").write_text('{"status": "comp')  # cut short
    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    out = again.stdout + again.stderr
    assert f"{job}/status.json cannot be read; kept as {job}/status.json.damaged" in out
    assert f"and W&B run {before['wandb_id']}" in out
    assert (job / "status.json.damaged").read_text() == '{"status": "comp'
    after = status(job)
    assert after["status"] == "completed" and after["final"] == before["final"] and after["final"]
    assert after["wandb_id"] == before["wandb_id"]
    assert [r["epoch"] for r in rows(job)] == ["1.0"]
    assert {p.name.rsplit("-", 1)[-1] for p in job.glob("wandb/offline-run-*")} == {before["wandb_id"]}


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MiB file system of its own (tmpfs), to be filled; unmounted after the test."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(disk)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill here ({mounted.stderr.strip()}); run the suite as root")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def fill(disk: Path) -> Path:
    """Write a file until the disk is full; returns it."""
    filler = disk / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
        except OSError as e:
            assert e.errno == 28, e  # ENOSPC
    return filler


def test_a_full_disk_fails_the_job_in_its_record_and_it_resumes_once_there_is_room(tmp_path, data_dir, small_disk):
    """The disk fills during epoch 2: the job ends failed, its record says why (not ``running`` with
    a dead process), its last good checkpoint and rows are intact and no half-written copy is
    left; freed, the same command resumes it after epoch 1 and it completes with every epoch once."""
    job = small_disk / "run"
    args = ["resnet_exp.run", "trainer.max_epochs=3", "trainer.limit_train_batches=4", *SMALL, f"hydra.run.dir={job}"]
    proc = start(args, tmp_path)
    wait_for_epoch(job, proc, 1)
    filler = fill(small_disk)
    out, _ = proc.communicate()
    assert proc.returncode == 1, out[-3000:]
    assert f"error: {job}: OSError: [Errno 28] No space left on device (details in {job}/status.json)" in out
    assert "Traceback" not in out
    failed = status(job)
    assert failed["status"] == "failed" and failed["error"] == "OSError: [Errno 28] No space left on device"
    assert failed["epoch"] in (2, 3)
    assert [r["epoch"] for r in rows(job)][0] == "1.0"
    assert not list(job.glob("**/*.tmp"))  # a full disk left no fuller
    filler.unlink()

    resumed = run_cli(*args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming after epoch" in resumed.stdout + resumed.stderr
    assert status(job)["status"] == "completed"
    assert [r["epoch"] for r in rows(job)] == ["1.0", "2.0", "3.0"]


# Loaded first by every Python process started with it on PYTHONPATH: SIGKILL the process when it
# moves its N-th finished copy of file NAME into place, with that copy cut to half (a kill in the
# middle of writing it). The job's own writes go through os.replace (records.atomic_write, the
# checkpoint writer), so each file it writes can be hit.
KILL_AT_WRITE = """
import os, signal
name, n = os.environ["KILL_AT_WRITE"].rsplit(":", 1)
seen = 0
real = os.replace
def replace(src, dst, *args, **kwargs):
    global seen
    if os.path.basename(os.fspath(dst)) == name:
        seen += 1
        if seen == int(n):
            os.truncate(src, os.path.getsize(src) // 2)
            os.kill(os.getpid(), signal.SIGKILL)
    return real(src, dst, *args, **kwargs)
os.replace = replace
"""


@pytest.mark.long
def test_a_kill_during_each_file_the_job_writes_leaves_a_job_that_ends_as_if_never_killed(tmp_path, data_dir):
    """Killed while writing config.yaml, then epoch 1's metrics.csv row, then its last.ckpt (best.ckpt
    has the same writer), then the final ``completed`` record, the job resumes each time and ends
    with the rows of a twin never killed, recorded completed, with no half-written file left."""
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(textwrap.dedent(KILL_AT_WRITE))
    common = ["resnet_exp.run", "trainer.max_epochs=2", "trainer.limit_train_batches=3", *SMALL]
    twin = tmp_path / "twin"
    assert run_cli(*common, f"hydra.run.dir={twin}", cwd=tmp_path).returncode == 0
    job = tmp_path / "job"
    args = [*common, f"hydra.run.dir={job}"]
    for write in ("config.yaml:1", "metrics.csv:1", "last.ckpt:1", "status.json:4"):
        killed = run_cli(*args, cwd=tmp_path, env={"PYTHONPATH": str(inject), "KILL_AT_WRITE": write})
        assert killed.returncode == -signal.SIGKILL, (write, killed.stderr[-3000:])
        name = write.split(":")[0]
        (tmp,) = job.glob(f"**/{name}.tmp")  # killed midway through this file
        if (job / "status.json").is_file():
            assert json.loads((job / "status.json").read_text())["status"] == "running"  # the last good record
    assert len(rows(job)) == 2  # the last kill hit the completed record: both epochs were trained
    resumed = run_cli(*args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert status(job)["status"] == "completed"
    final = {k: status(job)["final"][k] for k in RESULTS}
    assert final == {k: status(twin)["final"][k] for k in RESULTS}
    assert [{k: r[k] for k in ("epoch", *RESULTS)} for r in rows(job)] == [
        {k: r[k] for k in ("epoch", *RESULTS)} for r in rows(twin)
    ]
    assert not list(job.glob("**/*.tmp"))
