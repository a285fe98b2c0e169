"""The SLURM path against a real SLURM cluster: tools/slurm-local.sh's one node on this machine
(slurmctld, slurmd, slurmdbd with accounting), through the real CLI with ``hydra/launcher=slurm``:
sbatch, job arrays, SLURM's own time-limit signal, ``scontrol requeue``, ``scancel``, srun-started
DDP processes, and the cluster's refusals. Marked ``slurm``: skipped, with the reason, where the
cluster cannot run (no SLURM and no apt-get as root to install it).

SLURM holds a requeued job for about two minutes before it may start again (its BeginTime); the
tests let it start at once (``scontrol update StartTime=now``, an administrator's command) once they
have seen it requeued: what is tested is that it was requeued and resumes exactly, not SLURM's wait.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from resnet_exp.tracking.offline import read_run
from tests.conftest import (
    RESULTS,
    TINY,
    checkpointed,
    rows,
    run_cli,
    run_cli_here,
    slurm_cmd,
    start,
    status,
    wait_until,
)
from tests.test_scale_out import DDP_RUN, assert_two_process_metrics

pytestmark = pytest.mark.slurm

# What the one node can give a job: one CPU (of two), 2 GB, no GPU.
NODE = (
    "hydra/launcher=slurm",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=2",
    "hydra.launcher.gpus_per_node=0",
)
# Long enough that a time-limit signal after its first epoch finds it training (with a limit of one
# minute and a warning 10 s before it, SLURM's came 30 to 48 s into the job here): 480 batches of 16.
LONG = (
    "seed=7",
    "trainer.max_epochs=3",
    "trainer.limit_train_batches=160",
    "trainer.limit_val_batches=2",
    "data.batch_size=16",
    "diagnostics.probe_size=16",
    "evaluation.precise_bn_batches=2",
    "logger.wandb.mode=disabled",
)
# Two epochs of 60 batches: a stop in the middle of epoch 2 is easy to catch.
SHORT = (
    "seed=7",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=60",
    "trainer.limit_val_batches=2",
    "data.batch_size=16",
    "diagnostics.probe_size=16",
    "evaluation.precise_bn_batches=2",
    "logger.wandb.mode=disabled",
)


def results(job: Path) -> list[dict[str, str]]:
    return [{k: r[k] for k in ("epoch", *RESULTS)} for r in rows(job)]


def glance(stdout: str) -> list[str]:
    """The closing table's lines, without the sweep's folder."""
    lines = stdout.splitlines()
    start_at = next(i for i, line in enumerate(lines) if line.startswith("Final test accuracy"))
    return [re.sub(r"\S*/(basic|slurm)\S*", "SWEEP", line) for line in lines[start_at:]]


def job_state(job: str, env: dict[str, str]) -> str:
    """SLURM's state of a job, and why it waits where it does: ``PENDING BeginTime``."""
    return slurm_cmd("squeue", "-h", "-j", job, "-o", "%T %r", env=env).strip()


def final_states(job: str, env: dict[str, str]) -> list[str]:
    """sacct's ``JobID|State`` of ``job`` (each task of an array), once none is still pending or
    running. slurmctld tells slurmdbd of a job's end after the job has left squeue (where the sweep
    waits for it), and of a cancel after scancel returns: sacct may say RUNNING or PENDING, or know
    nothing of a job just queued, for a moment after. An event, not a time: a job
    that never ends is ended by its own SLURM time limit."""
    while True:
        states = slurm_cmd("sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", job, env=env).splitlines()
        if states and not any(s.endswith(("|PENDING", "|RUNNING", "|COMPLETING")) for s in states):
            return states
        time.sleep(0.05)  # polling interval


def time_limit_warning(job: str, env: dict[str, str]) -> None:
    """The signal SLURM sends a job ``signal_delay_s`` before its time limit (submitit asks for USR2);
    a job that has ended meanwhile: no matter, so scancel's exit status is not checked."""
    subprocess.run(["scancel", "--signal=USR2", job], env={**os.environ, **env}, capture_output=True)


def release_when_requeued(job: str, proc: subprocess.Popen, env: dict[str, str]) -> None:
    """Wait until SLURM has requeued ``job`` (pending until its BeginTime), then let it start now."""
    wait_until(lambda: job_state(job, env) == "PENDING BeginTime", proc)
    slurm_cmd("scontrol", "update", f"JobId={job}", "StartTime=now", env=env)


def test_a_sweep_is_a_slurm_array_and_ends_as_under_the_basic_launcher(tmp_path, data_dir, slurm):
    """The post/pre sweep as SLURM job array N_0, N_1 (sacct: completed), the same closing table
    and metrics.csv as the default launcher's, nothing on stderr with srun on the PATH, and each
    job's W&B offline run in the sweep's group with its SLURM job in the config and status.json."""
    args = ["resnet_exp.run", "-m", "block.order=post,pre", *TINY]
    basic = start([*args, f"hydra.sweep.dir={tmp_path / 'basic'}"], tmp_path, env=slurm)
    r = run_cli(*args, *NODE, f"hydra.sweep.dir={tmp_path / 'slurm'}", cwd=tmp_path, env=slurm)
    out, _ = basic.communicate()
    assert basic.returncode == 0, out[-3000:]
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr == ""  # no Lightning hint to prepend srun, no sacct warnings
    assert glance(r.stdout) == glance(out)
    ids = [status(tmp_path / "slurm" / n)["slurm_job"] for n in ("0", "1")]
    array = ids[0].split("_")[0]
    assert ids == [f"{array}_0", f"{array}_1"]
    assert final_states(array, slurm) == [f"{array}_0|COMPLETED", f"{array}_1|COMPLETED"]
    group = OmegaConf.load(tmp_path / "slurm" / "sweep.yaml").group
    for n, job_id in zip(("0", "1"), ids):
        assert results(tmp_path / "slurm" / n) == results(tmp_path / "basic" / n)
        (run_dir,) = (tmp_path / "slurm" / n / "wandb").glob("offline-run-*")
        run = read_run(run_dir)
        assert run.group == group and run.config["slurm_job"] == job_id
        log = (tmp_path / "slurm" / n / "run.log").read_text()
        assert "SLURM auto-requeueing enabled" not in log  # submitit alone requeues


@pytest.mark.long
def test_the_time_limit_requeues_and_resumes_exactly_until_no_requeue_is_left(tmp_path, data_dir, slurm):
    """SLURM's time-limit signal (timeout_min=1; sent by the test as SLURM sends it where the job
    saved its first epoch before SLURM's timer came): the job saves interrupted.ckpt, submitit requeues
    it, it resumes; the time limit again, with no requeue left (max_num_timeout=1), ends it with a
    record that says so and a resume command that finishes it, as the same job under the default
    launcher, never stopped."""
    timed = tmp_path / "timed"
    timed_args = [
        "resnet_exp.run",
        "-m",
        *NODE,
        "hydra.launcher.timeout_min=1",
        "hydra.launcher.signal_delay_s=10",
        "hydra.launcher.max_num_timeout=1",
        *LONG,
        f"hydra.sweep.dir={timed}",
    ]
    timed_proc = start(timed_args, tmp_path, env=slurm)
    never_stopped = start(["resnet_exp.run", "-m", *LONG, f"hydra.sweep.dir={tmp_path / 'basic'}"], tmp_path)

    # the time limit: SLURM's signal, a checkpoint, submitit's requeue. SLURM's timer warns 30 to 48 s
    # into the job here; where the job has saved its first epoch before that (a machine that trains
    # it faster: two epochs are left), the test sends the same signal, as SLURM sends it
    job = timed / "0"
    interrupted = job / "checkpoints" / "interrupted.ckpt"
    wait_until(lambda: interrupted.is_file() or (job / "checkpoints" / "last.ckpt").is_file(), timed_proc)
    slurm_id = status(job)["slurm_job"]
    if not interrupted.is_file():
        time_limit_warning(slurm_id, slurm)
    wait_until(interrupted.is_file, timed_proc)
    release_when_requeued(slurm_id, timed_proc, slurm)
    # resumed, inside trainer.fit (Lightning has restored the checkpoint): the time limit again,
    # whether SLURM's timer comes first or this signal, as SLURM sends it; no requeue is left
    restored = "Restored all states from the checkpoint"
    wait_until(lambda: (job / "run.log").read_text().count(restored) == 1, timed_proc)
    if status(job)["status"] == "running":  # not stopped by SLURM's timer already (a job gone: no matter)
        time_limit_warning(slurm_id, slurm)
    out, _ = timed_proc.communicate()
    assert timed_proc.returncode == 1, out[-3000:]
    record = status(job)
    assert record["status"] == "interrupted"
    assert record["error"].startswith("signal SIGUSR2; submitit: Job not requeued because: timed-out too many times")
    logs = {
        kind: "".join(p.read_text() for p in (timed / ".submitit").rglob(f"*_log.{kind}")) for kind in ("out", "err")
    }
    assert logs["err"].count("this job is timed-out") == 2 and "Requeued job" in logs["out"]
    assert f"  {job}: interrupted: signal SIGUSR2; submitit: Job not requeued" in out
    resume = out.split("To resume the ones that failed or were interrupted: ")[1].splitlines()[0]
    assert resume.split()[1:] == ["-m", "resnet_exp.run", *timed_args[1:]]
    # the printed command, with a longer time limit, finishes it
    done = subprocess.run(
        [*resume.split(), "hydra.launcher.timeout_min=5"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, **slurm, "WANDB_MODE": "offline"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out, _ = never_stopped.communicate()
    assert never_stopped.returncode == 0, out[-3000:]
    assert status(job)["status"] == "completed"
    assert results(job) == results(tmp_path / "basic" / "0")


def rerun(out: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The resume command a sweep's summary printed, run."""
    command = out.split("To resume the ones that failed or were interrupted: ")[1].splitlines()[0]
    return subprocess.run(
        command.split(), cwd=cwd, capture_output=True, text=True, env={**os.environ, **env, "WANDB_MODE": "offline"}
    )


@pytest.mark.long
def test_preemption_resumes_exactly_and_a_cancelled_job_is_named_and_rerun_alone(tmp_path, data_dir, slurm):
    """``scontrol requeue`` in the middle of epoch 2 (a preemption): SLURM's SIGTERM, a checkpoint,
    requeued by SLURM, resumed. ``scancel`` of task 0 of an array of two: task 1 goes on and
    completes, the sweep's summary names task 0 with what SLURM did, and the same command again
    queues task 0 alone, which resumes. All three end as task 1, the same job never stopped."""
    cancelled, preempted = tmp_path / "cancelled", tmp_path / "preempted"
    array = start(
        ["resnet_exp.run", "-m", *NODE, *SHORT, "seed=7,7", f"hydra.sweep.dir={cancelled}"], tmp_path, env=slurm
    )
    one = start(["resnet_exp.run", "-m", *NODE, *SHORT, f"hydra.sweep.dir={preempted}"], tmp_path, env=slurm)

    # each stopped as soon as its epoch 1 is checkpointed (the next batch to end is in epoch 2),
    # whichever SLURM started first (the node runs two jobs at once)
    stops = {"scancel": (cancelled / "0", array), "requeue": (preempted / "0", one)}
    ids = {}
    while stops:
        for action, (job, proc) in list(stops.items()):
            assert proc.poll() is None, proc.stdout.read()
            if checkpointed(job, 1):
                ids[action] = status(job)["slurm_job"]
                slurm_cmd(*(["scancel"] if action == "scancel" else ["scontrol", "requeue"]), ids[action], env=slurm)
                del stops[action]
        time.sleep(0.05)  # polling interval
    cancelled_id, preempted_id = ids["scancel"], ids["requeue"]
    release_when_requeued(preempted_id, one, slurm)

    out, _ = array.communicate()
    assert array.returncode == 1, out[-3000:]
    assert status(cancelled / "1")["status"] == "completed"
    assert f"  {cancelled / '0'}: interrupted: signal SIGTERM; SLURM ended job {cancelled_id} as CANCELLED" in out
    again = rerun(out, tmp_path, slurm)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "#1 : " in again.stdout + again.stderr and "completed before, not queued" in again.stdout + again.stderr
    rerun_id = status(cancelled / "0")["slurm_job"]
    assert "_" not in rerun_id  # task 0 alone: one job, not an array
    assert final_states(rerun_id, slurm) == [f"{rerun_id}|COMPLETED"]

    out, _ = one.communicate()
    assert one.returncode == 0, out[-3000:]
    assert status(preempted / "0")["slurm_job"] == preempted_id  # the same SLURM job, requeued
    assert status(preempted / "0")["resumed_after_epoch"] >= 1
    for job in (cancelled / "0", preempted / "0"):
        assert status(job)["status"] == "completed" and (job / "checkpoints" / "interrupted.ckpt").is_file()
        assert results(job) == results(cancelled / "1")


def queued_array(proc: subprocess.Popen) -> tuple[str, str]:
    """The SLURM job of the array a sweep ``proc`` queued, once it says so, and what it said until then."""
    said = ""
    while not (found := re.search(r"Queued as SLURM job (\d+) \(", said)):
        line = proc.stdout.readline()
        assert line, said[-3000:]  # it ended first
        said += line
    return found.group(1), said


def test_a_sweep_slurm_still_holds_is_not_queued_twice_and_a_stopped_command_names_its_jobs(tmp_path, data_dir, slurm):
    """A sweep's array held in SLURM's queue (sbatch --hold: pending, never started). SIGTERM to the
    waiting command: it says the SLURM job goes on and how to see and stop it. The same command
    while SLURM holds the jobs: refused in one line naming the job, nothing more queued. Once they
    are cancelled, the same command queues the sweep again."""
    sweep = tmp_path / "held"
    args = ["resnet_exp.run", "-m", *NODE, *TINY, "block.order=post,pre", "+hydra.launcher.additional_parameters.hold=true",
            f"hydra.sweep.dir={sweep}"]  # fmt: skip
    arrays = lambda: {p.name.split("_")[0] for p in (sweep / ".submitit").glob("[0-9]*")}  # noqa: E731 (one per job)
    try:
        first = start(args, tmp_path, env=slurm)
        array, said = queued_array(first)
        first.terminate()
        out, _ = first.communicate()
        assert first.returncode == 130, (said + out)[-3000:]
        assert out.splitlines()[-1] == (
            f"stopped waiting (SIGTERM); the sweep's SLURM jobs go on (squeue -j {array} shows them, scancel {array} "
            "stops them); once none is queued or running, the same command sums them up and queues again only "
            "those that did not finish"
        )
        assert (sweep / "slurm_jobs.txt").read_text() == f"{array}\n"

        again = run_cli(*args, cwd=tmp_path, env=slurm)
        assert again.returncode == 2 and again.stderr == (
            f"error: hydra.sweep.dir={sweep}: SLURM still holds jobs this sweep queued (job {array}: 2 pending); run "
            f"now, the command would queue them twice: wait until they end (squeue -j {array}) or stop them (scancel "
            f"{array}), then run it again\n"
        ), again.stderr
        assert arrays() == {array}  # nothing more queued
        assert slurm_cmd("squeue", "-h", "-j", array, "-o", "%T", env=slurm).split() == ["PENDING"]

        slurm_cmd("scancel", array, env=slurm)
        states = final_states(array, slurm)  # pending tasks cancelled: one record, 509_[0-1%2]
        assert states and all(state.split("|")[1].startswith("CANCELLED") for state in states), states
        third = start(args, tmp_path, env=slurm)
        requeued, _ = queued_array(third)
        assert requeued != array
        slurm_cmd("scancel", requeued, env=slurm)
        out, _ = third.communicate()
        assert third.returncode == 1, out[-3000:]
        assert (
            f"SLURM ended job {requeued}_0 as CANCELLED by 0 before it started; run the sweep again to queue it" in out
        )
        assert status(sweep / "1")["status"] == "stopped"  # a job that never started is said to have stopped
    finally:  # none left held in the cluster
        for held in arrays():
            slurm_cmd("scancel", held, env=slurm)


@pytest.mark.long
def test_ddp_processes_started_by_slurm_report_metrics_over_both(tmp_path, data_dir, slurm):
    """trainer=ddp with two SLURM tasks (srun starts both processes; Lightning reads its ranks from
    SLURM, starts none): the run test_scale_out checks with the processes Lightning starts, and the
    same check: the logged metrics are those of both processes' halves, recomputed in one process."""
    r = run_cli(
        "resnet_exp.run", "-m", *NODE, "hydra.launcher.tasks_per_node=2", "hydra.launcher.mem_gb=4", *DDP_RUN,
        f"hydra.sweep.dir={tmp_path / 'slurm'}", cwd=tmp_path, env=slurm,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    job = tmp_path / "slurm" / "0"
    slurm_id = status(job)["slurm_job"]
    steps = slurm_cmd("sacct", "-n", "-P", "-o", "JobID,NTasks", "-j", slurm_id, env=slurm).split()
    assert f"{slurm_id}.0|2" in steps  # one job step of two tasks: srun started both processes
    assert not (job / "train_ddp_process_1.log").exists()  # Lightning started none
    assert_two_process_metrics(job, data_dir)


def test_a_request_the_cluster_cannot_meet_is_refused_before_anything_is_queued(
    tmp_path, data_dir, slurm, monkeypatch, capfd
):
    """One line naming the key, exit status 2, no job queued (sacct knows no job of that name)."""
    cpus = len(os.sched_getaffinity(0))  # what nproc says, as the node's CPUs
    name = f"refused-{tmp_path.name}"
    monkeypatch.setenv("SLURM_CONF", slurm["SLURM_CONF"])
    cases = {
        f"hydra.launcher.cpus_per_task={cpus + 1}": f"error: hydra.launcher.cpus_per_task={cpus + 1} x "
        f"hydra.launcher.tasks_per_node=1 CPUs, but the nodes of partition debug have at most {cpus}; ask for at "
        f"most {cpus} per task",
        "hydra.launcher.mem_gb=100000": "error: hydra.launcher.mem_gb=100000, but the nodes of partition debug have "
        "at most",
        "hydra.launcher.partition=gpu": "error: hydra.launcher.partition=gpu is not a partition of this cluster; it "
        "has: debug",
        # the cluster's own refusals (sbatch --test-only): accounting is enforced, as on a real cluster
        "hydra.launcher.qos=bogus": "error: hydra.launcher.qos=bogus: the cluster refuses it (allocation failure: "
        "Invalid qos specification)",
        "hydra.launcher.account=bogus": "error: hydra.launcher.account=bogus: the cluster refuses it (allocation "
        "failure: Invalid account or account/partition combination specified)",
        "hydra.launcher.gpus_per_node=1": "error: hydra.launcher.gpus_per_node=1, but the nodes of partition debug "
        "have no GPUs; ask for 0 to train on its CPUs",
        "trainer=ddp trainer.devices=2 trainer.accelerator=cpu trainer.sync_batchnorm=false": "error: "
        "trainer.devices=2 x trainer.num_nodes=1 processes but hydra.launcher.tasks_per_node=1 x "
        "hydra.launcher.nodes=1 SLURM tasks; SLURM starts one process per device",
        # devices=auto: every GPU SLURM gives the node (refused before the cluster is asked about GPUs)
        "trainer=ddp hydra.launcher.gpus_per_node=2": "error: trainer.devices=auto (the 2 GPUs of "
        "hydra.launcher.gpus_per_node=2) x trainer.num_nodes=1 processes but hydra.launcher.tasks_per_node=1 x "
        "hydra.launcher.nodes=1 SLURM tasks",
        "trainer=ddp hydra.launcher.gpus_per_node=null hydra.launcher.gres=gpu:2": "error: trainer.devices=auto (the "
        "2 GPUs of hydra.launcher.gres=gpu:2) x trainer.num_nodes=1 processes but hydra.launcher.tasks_per_node=1",
        # values no cluster takes, or that defeat the requeue
        "hydra.launcher.timeout_min=2": "error: hydra.launcher.signal_delay_s=120 is not less than "
        "hydra.launcher.timeout_min=2 minutes (120 s): the time-limit warning would come as the job starts",
        "hydra.launcher.gpus_per_node=-1": "error: hydra.launcher.gpus_per_node=-1 must be 0 or more",
        # longer than the partition's MaxTime (a day, sinfo's 1-00:00:00)
        "hydra.launcher.timeout_min=1441": "error: hydra.launcher.timeout_min=1441, but partition debug lets a job "
        "run at most 1440 minutes; ask for at most 1440",
        # the keys sbatch takes as they are, asked of the cluster with the rest
        "hydra.launcher.constraint=bogus": "error: hydra.launcher.constraint=bogus: the cluster refuses it "
        "(allocation failure: Invalid feature specification)",
    }
    for override, message in cases.items():
        code, err = run_cli_here(
            "-m",
            *NODE,
            *override.split(),
            f"hydra.launcher.name={name}",
            "trainer.limit_train_batches=1",
            cwd=tmp_path,
            monkeypatch=monkeypatch,
            capfd=capfd,
        )
        assert code == 2 and len(err.splitlines()) == 1 and err.startswith(message), (override, err)
    assert slurm_cmd("sacct", "-n", "-X", "--name", name, "-S", "now-1hour", env=slurm).strip() == ""
    assert not (tmp_path / "outputs").exists()
