"""SLURM in one room: the launcher of ``hydra/launcher=slurm``, a sweep's request checked against the
cluster, and what a job running inside SLURM tells Lightning and its records.

``hydra/launcher=slurm`` is hydra-submitit-launcher's SLURM launcher (a sweep as one SLURM job
array, each job requeued by submitit when its time limit nears or it is preempted) with one change:
it waits for every job of the array. The plugin collects the jobs' results in order and stops at
the first that SLURM ended without one (``scancel``, a node failure, a job out of requeues): the
command would end there with a traceback, without waiting for or summing up the others, which go on
running. Here such a job's end is written into its record (SLURM's state, with the job's own record
of what it saved) and the sweep goes on, so the sweep's summary names it and its resume command
finishes just that one; and a resumed sweep does not queue its completed jobs again. The command
names the SLURM job it queued, and when it is stopped (Ctrl-C, a hang-up, SIGTERM) it says that the
jobs go on and how to stop them; a submission sbatch refuses ends the command without a traceback.
The plugin has no hook for these steps, so ``launch`` is its ``launch`` (hydra-submitit-launcher
1.2) with them added; everything else is the plugin's. Hydra takes launchers only from its
``hydra_plugins`` namespace: the class it instantiates is ``hydra_plugins/resnet_exp``'s, which
hands ``launch`` to this module.

``request_problem`` asks the cluster (``sinfo``, then ``sbatch --test-only``, which queues nothing)
whether it can ever run what ``hydra.launcher.*`` requests, so that a request no node meets (more
CPUs, memory or GPUs than a node has, a partition that does not exist) is refused in one line
naming the key before anything is queued, instead of pending forever; ``still_queued`` refuses a
sweep whose jobs queued before SLURM still holds (``squeue``), which the same command would queue a
second time.

Inside a job, ``cluster_environment`` gives Lightning SLURM's environment with Lightning's own
auto-requeue off: requeueing has one owner, submitit (``runs/signals.py`` hands it the preemption
signal once the checkpoint is saved), and Lightning only reads its ranks from SLURM. ``slurm_job``
names the SLURM job a process runs in, for its status.json and its W&B run.
"""

from __future__ import annotations

import getpass
import logging
import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra.errors import HydraException
from omegaconf import OmegaConf

from resnet_exp.runs.records import FINISHED, read_status, write_status

log = logging.getLogger(__name__)

# How often the launcher asks SLURM (one sacct call) about the jobs it waits for. submitit alone asks
# at most every 10 minutes once a job is old, so a job that SLURM ended without a result (killed,
# cancelled, failed) was noticed up to 10 minutes late; a job's result file is looked for every second.
POLL_S = 10


def slurm_job() -> str | None:
    """The SLURM job this process runs in, as squeue and sacct name it (``123_4`` for task 4 of array
    job 123, else ``123``); None outside SLURM."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID")


def cluster_environment() -> Any:
    """The cluster environment Lightning's Trainer gets (``plugins``), chosen here rather than by
    Lightning's detection: inside a SLURM job's tasks (started by srun, as submitit starts them),
    ``SLURMEnvironment(auto_requeue=False)``: ranks from SLURM, requeueing left to submitit; where
    ``srun`` is on the PATH outside a job (a cluster's login node), Lightning's plain environment,
    which is what its detection would choose too, without the multi-line hint to prepend ``srun``
    that the detection prints on every run there; elsewhere (torchrun's, or no cluster) None:
    Lightning detects it."""
    from pytorch_lightning.plugins.environments import (
        LightningEnvironment,
        SLURMEnvironment,
        TorchElasticEnvironment,
    )

    if TorchElasticEnvironment.detect():
        return None
    interactive = os.environ.get("SLURM_JOB_NAME") in ("bash", "interactive")  # Lightning's own rule
    if "SLURM_NTASKS" in os.environ and not interactive:
        return SLURMEnvironment(auto_requeue=False)
    if shutil.which("srun"):
        return LightningEnvironment()
    return None


def record_slurm_end(job_dir: Path, job_id: str, state: str) -> None:
    """Write into a job's status.json that SLURM ended it (job ``job_id``, ``state`` as sacct gives
    it) without a result: kept with the job's own record where it wrote one (``interrupted`` after
    the checkpoint it saved on SLURM's SIGTERM), else ``stopped`` (in a folder of its own where it
    ended before it started); a job that finished keeps its record."""
    status = read_status(job_dir)
    if status.get("status") in FINISHED:
        return
    said = f"SLURM ended job {job_id} as {state}"
    if not job_dir.is_dir():  # ended while pending: the job never started
        job_dir.mkdir(parents=True)
        write_status(job_dir, status="stopped", error=f"{said} before it started; run the sweep again to queue it",
                     slurm=state)  # fmt: skip
        return
    if status.get("status") == "interrupted":
        write_status(job_dir, **{**status, "error": f"{status.get('error', 'interrupted')}; {said}", "slurm": state})
    else:
        fields = {k: v for k, v in status.items() if k not in ("status", "error", "traceback")}
        write_status(job_dir, status="stopped", **fields, error=f"{said} before the job recorded its end; resume it",
                     slurm=state)  # fmt: skip


def launch(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
    """hydra-submitit-launcher's ``launch`` (1.2) for ``launcher``, its ``SlurmLauncher``, as it is
    up to the collection of the results: every job waited for (see above)."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher

    kind = "local" if isinstance(launcher, LocalLauncher) else "slurm"  # submitit's executor, by the launcher's class

    assert launcher.config is not None
    assert len(job_overrides) > 0
    params = launcher.params
    init_params = {"folder": launcher.params["submitit_folder"]}
    specific_init_keys = {"max_num_timeout"}
    init_params.update(**{f"{kind}_{x}": y for x, y in params.items() if x in specific_init_keys})
    init_keys = specific_init_keys | {"submitit_folder"}
    executor = submitit.AutoExecutor(cluster=kind, **init_params)
    baseparams = set(OmegaConf.structured(BaseQueueConf).keys())
    params = {x if x in baseparams else f"{kind}_{x}": y for x, y in params.items() if x not in init_keys}
    executor.update_parameters(**params)
    log.info(f"Submitit '{kind}' sweep output dir : {launcher.config.hydra.sweep.dir}")
    sweep_dir = Path(str(launcher.config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if "mode" in launcher.config.hydra.sweep:
        os.chmod(sweep_dir, mode=int(str(launcher.config.hydra.sweep.mode), 8))
    job_params: list[Any] = []
    returns: dict[int, JobReturn] = {}
    for idx, overrides in enumerate(job_overrides):
        idx = initial_job_idx + idx
        # changed: a job that finished before (a sweep resumed) is not queued again (it would be skipped)
        before = read_status(sweep_dir / str(idx)).get("status")
        if before in FINISHED:
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}: {before} before, not queued")
            returns[idx] = ended(overrides)
            continue
        log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        job_params.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()))
    try:
        jobs = executor.map_array(launcher, *zip(*job_params)) if job_params else []
    except submitit.core.utils.FailedJobError as e:  # refused after --test-only passed it (the queue changed)
        raise SubmissionRefused(
            f"SLURM refused the sweep's submission ({last_line(str(e), 'sbatch failed')}); nothing was queued"
        ) from None
    # changed: the SLURM job named and kept in the sweep's folder; every job waited for, SLURM asked
    # every POLL_S seconds; one that SLURM ended without a result is recorded as such; the command
    # ends once SLURM holds none of them (a job writes its result before its batch script exits)
    if jobs:
        queued = jobs[0].job_id.split("_")[0]
        with open(sweep_dir / SLURM_JOBS, "a") as f:
            f.write(f"{queued}\n")
        before: dict[int, Any] = {}
        try:
            # a hang-up or SIGTERM of this command (a closed terminal, kill) stops its waiting as Ctrl-C
            # does, where it is not ignored (nohup)
            for sig in (signal.SIGTERM, signal.SIGHUP):
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    before[sig] = signal.signal(sig, stop_waiting)
            log.info(f"Queued as SLURM job {queued} ({len(jobs)} jobs): {how_to_see(queued)}")
            wait(jobs)
            while isinstance(held := held_in_slurm({queued}), dict) and held:
                time.sleep(1)  # polling interval
        except KeyboardInterrupt as e:
            raise StoppedWaiting(
                f"stopped waiting ({e or 'SIGINT'}); the sweep's SLURM jobs go on ({how_to_see(queued)}); once none "
                "is queued or running, the same command sums them up and queues again only those that did not finish"
            ) from None
        finally:
            for sig, handler in before.items():
                signal.signal(sig, handler)
    for (overrides, _, idx, *_), job in zip(job_params, jobs):
        try:
            returns[idx] = job.results()[0]
        except submitit.core.utils.UncompletedJobError:
            job_dir = sweep_dir / str(idx)
            state = job.get_info().get("State") or job.state
            record_slurm_end(job_dir, job.job_id, state)
            log.warning("job %s (SLURM job %s) ended without a result: %s", job_dir, job.job_id, state)
            returns[idx] = ended(overrides)
    return [returns[idx] for idx in sorted(returns)]


# The SLURM jobs a sweep queued, one a line, in the sweep's folder: what still_queued asks squeue about.
SLURM_JOBS = "slurm_jobs.txt"


class SubmissionRefused(HydraException):
    """sbatch refused the sweep's jobs after ``sbatch --test-only`` passed them: the command
    ends with it as its last line (after sbatch's own message, which submitit prints), as it does
    Hydra's own errors."""


class StoppedWaiting(KeyboardInterrupt):
    """The command stopped waiting for its SLURM jobs, which go on: the message says how to see and
    stop them, and when to run the command again."""


def stop_waiting(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def how_to_see(job: str) -> str:
    return f"squeue -j {job} shows them, scancel {job} stops them"


def last_line(text: str, otherwise: str) -> str:
    """The last line of a command's message that says something, or ``otherwise``."""
    return ([line.strip() for line in text.splitlines() if line.strip()] or [otherwise])[-1]


def wait(jobs: list[Any]) -> None:
    """Until every job has ended: its result file is looked for every second, and SLURM asked at
    least every POLL_S seconds (``done(force_check=True)`` of one job still waiting: submitit's one
    sacct call for every job it watches), so a job SLURM ended without a result is seen too."""
    waiting, asked = list(jobs), time.monotonic()
    while waiting:
        ask = time.monotonic() - asked >= POLL_S
        if ask:
            asked = time.monotonic()
        still = []
        for job in waiting:
            if job.done():
                continue
            if ask:
                ask = False
                if job.done(force_check=True):
                    continue
            still.append(job)
        waiting = still
        if waiting:
            time.sleep(1)


def ended(overrides: Sequence[str]) -> JobReturn:
    """A job's return where the job has none to give (skipped, or ended by SLURM): its record says
    what happened, as for a job that failed under the default launcher (``run.main`` returns None)."""
    job = JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED)
    job.return_value = None
    return job


# --- the request, against the cluster ---------------------------------------------------------


def gpu_count(gres: str) -> int:
    """The GPUs of one of sinfo's GRES entries: ``gpu:4``, ``gpu:a100:4``, ``gpu:a100:4(S:0-1)``."""
    count = gres.split("(")[0].split(":")[-1]
    return int(count) if count.isdigit() else 0


def gres_gpus(gres: str) -> int:
    """The GPUs of a whole GRES list (sinfo's ``%G``, or ``hydra.launcher.gres``): ``gpu:a100:2,tmp:1`` 2."""
    return sum(gpu_count(g) for g in gres.split(",") if g.startswith("gpu"))


def limit_minutes(limit: str) -> int | None:
    """sinfo's time limit of a partition in whole minutes (``1-00:00:00`` 1440, ``2:00:00`` 120,
    ``30:00`` 30, ``45`` 45), None where there is none (``infinite``) or it cannot be read."""
    days, _, rest = limit.rpartition("-")
    try:
        parts = [int(x) for x in rest.split(":")]
        whole = int(days or 0) * 1440
    except ValueError:
        return None
    hours, minutes, seconds = ([0, 0, 0] + parts)[-3:] if len(parts) > 1 else (0, parts[0], 0)
    return whole + 60 * hours + minutes + (1 if seconds else 0)


def _sinfo() -> list[dict[str, Any]]:
    """The cluster's partitions and their largest node: name, default, CPUs, memory (MB), GPUs, and
    the partition's time limit (minutes, or None)."""
    out = subprocess.run(["sinfo", "-h", "-e", "-o", "%P|%c|%m|%G|%l"], capture_output=True, text=True, check=True)
    parts: dict[str, dict[str, Any]] = {}
    for line in out.stdout.splitlines():
        name, cpus, mem, gres, limit = line.split("|")
        default = name.endswith("*")
        name = name.rstrip("*")
        gpus = gres_gpus(gres)
        p = parts.setdefault(
            name, {"name": name, "default": default, "cpus": 0, "mem_mb": 0, "gpus": 0, "limit": limit_minutes(limit)}
        )
        p["cpus"] = max(p["cpus"], int(cpus.rstrip("+")))
        p["mem_mb"] = max(p["mem_mb"], int(mem.rstrip("+")))
        p["gpus"] = max(p["gpus"], gpus)
    return list(parts.values())


def value_problem(launcher: Any) -> str | None:
    """A value of ``hydra.launcher.*`` that no cluster takes, or that defeats the requeue: in one
    line naming the key, or None."""
    key = "hydra.launcher."
    for name in ("timeout_min", "nodes", "tasks_per_node", "cpus_per_task", "array_parallelism"):
        value = launcher.get(name)
        if value is not None and int(value) < 1:
            return f"{key}{name}={value} must be 1 or more"
    for name in ("gpus_per_node", "max_num_timeout", "signal_delay_s", "mem_gb"):
        value = launcher.get(name)
        if value is not None and int(value) < 0:
            return f"{key}{name}={value} must be 0 or more"
    delay, limit = int(launcher.get("signal_delay_s") or 0), int(launcher.get("timeout_min") or 60)
    if delay >= 60 * limit:
        return (
            f"{key}signal_delay_s={delay} is not less than {key}timeout_min={limit} minutes ({60 * limit} s): the "
            "time-limit warning would come as the job starts, and each start would count as a timeout; make it "
            f"shorter than the limit (a tenth of it: {6 * limit})"
        )
    return None


def request_problem(launcher: Any, jobs: int = 1) -> str | None:
    """What keeps the cluster from ever running ``hydra.launcher.*``'s request for a sweep of
    ``jobs`` (one array), in one line naming the key, or None. Needs SLURM's commands (the login
    node's)."""
    problem = value_problem(launcher)
    if problem:
        return problem
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return ("hydra/launcher=slurm needs SLURM's commands (sinfo, sbatch), and they are not on the PATH here; "
                "run the sweep on the cluster's login node")  # fmt: skip
    try:
        partitions = _sinfo()
    except (subprocess.CalledProcessError, ValueError) as e:
        return f"hydra/launcher=slurm: the cluster does not answer sinfo ({last_line(getattr(e, 'stderr', '') or '', str(e))})"
    names = [p["name"] for p in partitions]
    key = "hydra.launcher."
    if launcher.get("partition"):
        asked = str(launcher.partition).split(",")  # SLURM takes a list: the job runs in the first that can
        unknown = [p for p in asked if p not in names]
        if unknown:
            which = "" if unknown == asked else f" ({', '.join(unknown)})"
            return (
                f"{key}partition={launcher.partition}{which} is not a partition of this cluster; it has: "
                f"{', '.join(names)}"
            )
        mine = [p for p in partitions if p["name"] in asked]
    else:
        mine = [p for p in partitions if p["default"]]
        if not mine:
            return (
                f"{key}partition is unset and this cluster has no default partition; choose one of: {', '.join(names)}"
            )
    part = max(mine, key=lambda p: (p["cpus"], p["mem_mb"], p["gpus"]))  # of several, the largest nodes
    tasks = int(launcher.get("tasks_per_node") or 1)
    cpus = int(launcher.get("cpus_per_task") or 1)
    if cpus * tasks > part["cpus"]:
        return (
            f"{key}cpus_per_task={cpus} x {key}tasks_per_node={tasks} CPUs, but the nodes of partition "
            f"{part['name']} have at most {part['cpus']}; ask for at most {part['cpus'] // tasks} per task"
        )
    mem_gb = launcher.get("mem_gb")
    if mem_gb is not None and int(mem_gb) * 1024 > part["mem_mb"]:
        most = part["mem_mb"] // 1024
        return (
            f"{key}mem_gb={mem_gb}, but the nodes of partition {part['name']} have at most {most} GB "
            f"({part['mem_mb']} MB) for jobs; ask for at most {most}"
        )
    gpus = int(launcher.get("gpus_per_node") or 0)
    if gpus > part["gpus"]:
        have = f"at most {part['gpus']} GPUs" if part["gpus"] else "no GPUs"
        hint = f"at most {part['gpus']}" if part["gpus"] else "0 to train on its CPUs"
        return f"{key}gpus_per_node={gpus}, but the nodes of partition {part['name']} have {have}; ask for {hint}"
    minutes = int(launcher.get("timeout_min") or 60)
    limits = [p["limit"] for p in mine]  # of several partitions, the longest; a QOS may lift them (OverPartQOS)
    if None not in limits and minutes > max(limits) and not launcher.get("qos"):
        where = f"partition {mine[0]['name']} lets" if len(mine) == 1 else f"partitions {launcher.partition} let"
        return (
            f"{key}timeout_min={minutes}, but {where} a job run at most {max(limits)} minutes; ask for at most "
            f"{max(limits)} (a job reaching it is requeued and resumes: max_num_timeout)"
        )
    # the rest (accounts, QOS, time limits): the cluster's own judgement, without queueing anything
    test = ["sbatch", "--test-only", f"--partition={part['name']}", f"--nodes={launcher.get('nodes') or 1}",
            f"--ntasks-per-node={tasks}", f"--cpus-per-task={cpus}", f"--time={minutes}",
            "--wrap=true", "--output=/dev/null"]  # fmt: skip
    if mem_gb is not None:
        test.append(f"--mem={int(mem_gb)}G")
    if gpus:
        test.append(f"--gpus-per-node={gpus}")
    if jobs > 1:  # as submitit queues them: one array, array_parallelism at once
        test.append(f"--array=0-{jobs - 1}%{min(jobs, int(launcher.get('array_parallelism') or jobs))}")
    for name in ("account", "qos", *PASSED_ON):
        if launcher.get(name):
            test.append(f"--{name.replace('_', '-')}={launcher.get(name)}")
    for name, value in (launcher.get("additional_parameters") or {}).items():  # submitit's own spelling of them
        test.append(f"--{name.replace('_', '-')}" + ("" if value is True else f"={value}"))
    out = subprocess.run(test, capture_output=True, text=True)
    if out.returncode != 0:
        said = last_line(out.stderr, "sbatch --test-only failed")
        if "array" in said.lower() and jobs > 1:
            return f"the sweep's {jobs} jobs as one SLURM array: the cluster refuses it ({said}); sweep fewer at once"
        name = next((n for w, n in REFUSED_KEYS if w in said.lower()), None)
        if name is not None and launcher.get(name) is not None:  # a key the user set
            return f"{key}{name}={launcher.get(name)}: the cluster refuses it ({said})"
        if name == "account":  # none given, and this cluster has no default account for the user
            return f"{key}account is unset, and the cluster refuses the request without one ({said}); set it"
        return f"the cluster refuses hydra.launcher's request ({said})"
    return None


# The keys of hydra.launcher handed to sbatch as they are (submitit's flag of the same name), asked
# of sbatch --test-only with the rest.
PASSED_ON = ("constraint", "exclude", "gres", "gpus_per_task", "cpus_per_gpu", "mem_per_gpu", "mem_per_cpu", "comment")


def held_in_slurm(ids: set[str]) -> dict[str, Counter[str]] | str:
    """What SLURM still holds of the jobs ``ids`` (array or plain job ids): per job, its tasks by
    state (``{"123": {"pending": 2, "running": 8}}``), none where it has ended; or squeue's refusal,
    as one line. SQUEUE_STATES is left out, so that squeue lists the states it lists by default
    (pending, running, completing...), never the finished ones."""
    env = {k: v for k, v in os.environ.items() if k != "SQUEUE_STATES"}
    out = subprocess.run(["squeue", "-h", "-o", "%F|%i|%T", "-u", getpass.getuser()], capture_output=True, text=True,
                         env=env)  # fmt: skip
    if out.returncode != 0:
        return last_line(out.stderr, "squeue failed")
    held: dict[str, Counter[str]] = {}
    for line in out.stdout.splitlines():
        array, job, state = line.split("|")
        if array in ids:
            held.setdefault(array, Counter())[state.lower()] += task_count(job)
    return held


def still_queued(sweep_dir: Path) -> str | None:
    """The jobs this sweep queued before (``SLURM_JOBS``) that SLURM still holds, pending or running,
    in one line naming them, or None: the same command run now would queue them a second time (a
    job folder's lock keeps two copies from training at once only where the file system's locks hold
    across nodes)."""
    path = sweep_dir / SLURM_JOBS
    ids = set(path.read_text().split()) if path.is_file() else set()
    if not ids:
        return None
    held = held_in_slurm(ids)
    if isinstance(held, str):
        return f"hydra.sweep.dir={sweep_dir}: SLURM cannot say whether this sweep's jobs are still queued ({held})"
    if not held:
        return None
    said = "; ".join(
        f"job {a}: " + ", ".join(f"{n} {state}" for state, n in sorted(c.items())) for a, c in held.items()
    )
    return (
        f"hydra.sweep.dir={sweep_dir}: SLURM still holds jobs this sweep queued ({said}); run now, the command would "
        f"queue them twice: wait until they end (squeue -j {','.join(held)}) or stop them (scancel {' '.join(held)}), "
        "then run it again"
    )


def task_count(job: str) -> int:
    """The tasks one of squeue's lines stands for: ``123_[2-5,7%4]`` (pending tasks of an array) 5,
    ``123_4`` or ``123`` 1."""
    if "[" not in job:
        return 1
    spec = job[job.index("[") + 1 : job.rindex("]")].split("%")[0]
    count = 0
    for part in spec.split(","):
        first, _, last = part.partition("-")
        count += int(last) - int(first) + 1 if last else 1
    return count


# The key of hydra.launcher a refusal of sbatch names, by a word of its message.
REFUSED_KEYS = (("qos", "qos"), ("account", "account"), ("partition", "partition"), ("time limit", "timeout_min"),
                ("feature", "constraint"), ("gres", "gres"), ("node name", "exclude"))  # fmt: skip
