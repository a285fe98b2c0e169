"""``SweepCallback``, the Hydra callback (``hydra.callbacks.sweep`` in conf/config.yaml) around a
single run or a multirun: before any work it runs every check of ``checks.py`` over the whole job
list, so that bad input stops the sweep at once with a one-line error; for a multirun it then
writes ``sweep.yaml`` into the sweep directory (the W&B group shared by its jobs, the swept keys,
the job count and the command). At the end it prints what did not complete, and why, and exits
non-zero if anything did not.
"""

from __future__ import annotations

import functools
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from hydra import compose
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from resnet_exp.command_line import not_a_choice, one_line_error, override_key, with_hint
from resnet_exp.config import ConfigError, validate
from resnet_exp.runs.console import resume_command
from resnet_exp.runs.ddp import global_rank
from resnet_exp.runs.records import SWEEP_FILE, atomic_write, describe, read_status, read_sweep, sweep_group
from resnet_exp.sweeps.checks import (
    LONGEST_INSIDE,
    check_cluster,
    check_data,
    check_launcher,
    check_memory,
    check_output,
    check_parts,
    check_resolves,
    check_resume,
    check_sequential,
    check_subdir,
    fail,
    job_list,
    split_overrides,
    swept_keys,
)


def summarize(job_dirs: list[Path], resume_command: str) -> None:
    """Print one line per job that did not complete, and the command that resumes them, and exit 1
    if there is any."""
    bad = [(d, read_status(d)) for d in job_dirs]
    bad = [(d, s) for d, s in bad if s.get("status") != "completed"]
    if not bad:
        return
    print(f"{len(bad)} of {len(job_dirs)} job(s) did not complete:", file=sys.stderr)
    for d, s in bad:
        state = s.get("status", "not started")
        reason = s.get("error", "")
        if state == "running" and s.get("pid") != os.getpid():
            reason = f"by host {s.get('host')}, process {s.get('pid')}, since {s.get('started')}"
        print(f"  {d}: {state}: {reason}".rstrip(": "), file=sys.stderr)
    if any(s.get("status") != "diverged" for _, s in bad):
        print(f"To resume the ones that failed or were interrupted: {resume_command}", file=sys.stderr)
    raise SystemExit(1)


def checked(method):
    """A callback method whose every failure stops the command with one line and exit status 2:
    Hydra would turn an exception other than SystemExit into a warning and start the job anyway."""

    @functools.wraps(method)
    def wrapper(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            method(self, config, **kwargs)
        except (SystemExit, KeyboardInterrupt):
            raise
        except ConfigError as e:
            fail(str(e))
        except (HydraException, OmegaConfBaseException) as e:  # composing a job's config
            fail(with_hint(one_line_error(e), sys.argv[1:]))
        except Exception as e:
            fail(describe(e))

    return wrapper


class SweepCallback(Callback):
    """Checks before the first job, sums up after the last one. In a run on several processes only
    the first process does either; the others are started by it (or by SLURM) to run their share."""

    @checked
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if global_rank() != 0:
            return
        check_resolves(config)
        validate(config)
        run_dir = Path(config.hydra.run.dir)
        check_output(run_dir)
        check_resume(run_dir, config, list(config.hydra.overrides.task), "hydra.run.dir")
        check_data([config])
        check_parts([config])
        check_memory([config])
        print(f"Run directory: {run_dir} (to resume: {resume_command('hydra.run.dir', run_dir)})", flush=True)

    @checked
    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        if global_rank() != 0:
            return
        run_dir = Path(config.hydra.run.dir)
        summarize([run_dir], resume_command("hydra.run.dir", run_dir))

    @checked
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        info = read_sweep(sweep_dir) or {"jobs": 0}
        from resnet_exp.analysis.glance import glance

        print(glance(sweep_dir), flush=True)
        if info.get("jobs") is None:  # a sweeper that chose its jobs as it went: those it made
            numbers = sorted(int(p.name) for p in sweep_dir.iterdir() if p.name.isdigit() and p.is_dir())
        else:
            numbers = list(range(info["jobs"]))
        summarize([sweep_dir / str(i) for i in numbers], resume_command("hydra.sweep.dir", sweep_dir))

    @checked
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # hydra.sweeper.params (an experiment preset's sweep) first, then the command line's
        # overrides, which win where both name a key.
        params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
        overrides = params + list(config.hydra.overrides.task)
        basic = str(config.hydra.sweeper.get("_target_", "")).endswith(".BasicSweeper")
        sequential = str(config.hydra.sweeper.get("_target_", "")).endswith(".SequentialSweeper")
        # With another sweeper (Optuna, say) the jobs are chosen as the sweep goes: check the config
        # they share (every value that is not swept) and each job as it starts. The sequential
        # sweeper's jobs are its settings at seeds it chooses: each setting is checked.
        fixed, swept = split_overrides(overrides)
        if sequential:
            check_sequential(config.hydra.sweeper, overrides)
        jobs = job_list(overrides) if basic or sequential else [fixed]
        sweep_dir = Path(config.hydra.sweep.dir)
        check_subdir(config.hydra.sweep)
        check_output(sweep_dir, inside=LONGEST_INSIDE + 1 + len(str(len(jobs))))  # + the job's number
        wheres = [f" (in job {' '.join(job)})" if len(jobs) > 1 else "" for job in jobs]
        cfgs = []
        for job, where in zip(jobs, wheres):
            try:  # a name that is not one of a field's choices is refused here, by the schema
                cfgs.append(compose(config_name=config.hydra.job.config_name, overrides=list(job)))
            except (HydraException, OmegaConfBaseException) as e:
                if not_a_choice(e) is None:
                    raise  # not one job's value (an unknown key, say): said once, as for any command
                fail(f"{not_a_choice(e)}{where}")
        for num, (job, cfg, where) in enumerate(zip(jobs, cfgs, wheres)):
            check_resolves(cfg, where)
            try:
                validate(cfg)
            except ConfigError as e:
                fail(f"{e}{where}")
            check_launcher(config.hydra.launcher, cfg, where)
            if basic:
                check_resume(sweep_dir / str(num), cfg, job)  # job directories are numbered as the jobs
        if sequential:  # job N: setting N mod S at seed N // S + 1, those there already
            for path in sorted(p for p in sweep_dir.glob("[0-9]*") if p.name.isdigit()):
                n = int(path.name)
                job = [*jobs[n % len(jobs)], f"seed={n // len(jobs) + 1}"]
                check_resume(path, compose(config_name=config.hydra.job.config_name, overrides=job), job)
        check_data(cfgs, wheres)
        check_parts(cfgs, wheres)
        if not str(config.hydra.launcher.get("_target_", "")).endswith("SlurmLauncher"):
            check_memory(cfgs, wheres)  # under SLURM the jobs run on nodes this machine cannot see
        check_cluster(config.hydra.launcher, sweep_dir, len(jobs) if basic else 1)  # an array of them at once
        sweep_dir.mkdir(parents=True, exist_ok=True)
        before = read_sweep(sweep_dir) or {}
        info = {"group": sweep_group(sweep_dir)}
        info.update(
            swept=(
                swept_keys(jobs)
                if basic
                else [*swept_keys(jobs), "seed"]
                if sequential
                else [override_key(o) for o in swept]
            ),
            jobs=len(jobs) if basic else None,
            command=" ".join(["python -m resnet_exp.run", *map(shlex.quote, sys.argv[1:])]),
        )
        # every distinct command run on the sweep, with its job count, in order: a report names one
        # that grew the jobs (an extension after a look)
        history = before.get("history") or (
            [{"command": before["command"], "jobs": before.get("jobs")}] if before.get("command") else []
        )
        if not history or (history[-1]["command"], history[-1]["jobs"]) != (info["command"], info["jobs"]):
            history.append({"command": info["command"], "jobs": info["jobs"]})
        info["history"] = history
        atomic_write(sweep_dir / SWEEP_FILE, OmegaConf.to_yaml(OmegaConf.create(info)))
        print(f"Sweep directory: {sweep_dir} (to resume: {resume_command('hydra.sweep.dir', sweep_dir)})", flush=True)
