"""Faults injected into a job's files: a damaged mirror (metrics.csv, W&B's offline file) is set
aside, named and kept, and rebuilt from the checkpoint, never the reason a job cannot resume; a
report over damaged files lists them in one line each instead of a traceback."""

from __future__ import annotations

import signal

from resnet_exp.report import main as report_main
from resnet_exp.tracking.offline import read_run
from tests.conftest import SMALL, rows, run_cli, start, status, wait_for_epoch


def test_damaged_mirrors_are_set_aside_and_rebuilt_on_resume(tmp_path, data_dir):
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
    (continued,) = job.glob("wandb/offline-run-*[!d]")  # the run W&B continued, with every epoch
    history = [h for h in read_run(continued).history if "test/acc" in h]
    assert sorted(h["epoch"] for h in history) == [1, 2]


def test_report_lists_unreadable_jobs_in_one_line_each(tmp_path, capsys):
    from tests.test_report import make_job

    s = tmp_path / "sweep"
    for n, seed in enumerate((1, 2, 3)):
        make_job(s, n, "post", seed, [0.5, 0.8])
    (s / "1" / "metrics.csv").write_text("epoch,test/acc\n1.0,not a number\n")
    (s / "2" / "config.yaml").write_text("block: !!python/object:os.system {}\n")
    assert report_main([str(s), "--out", str(tmp_path / "r")]) == 0
    assert "Traceback" not in capsys.readouterr().err
    text = (tmp_path / "r" / "report.md").read_text()
    assert "| sweep/1 | unreadable | 0 | cannot be read: ValueError: could not convert string to float: 'not a number' |" in text
    assert "| sweep/2 | unreadable | 0 | cannot be read: " in text
    assert "| all jobs | 1 | running averages | 80.00 (one run) |" in text  # the readable job alone


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
