"""A sweep's checks, each before any job starts: the job list as Hydra's basic sweeper orders it,
every job's config composed and validated, the output folder, the data files, the parts only their
libraries can judge (on stand-ins), the memory a job's activations need, the launcher's request
against the cluster, and the resume of a job folder whose saved config differs. Each refusal is one
line, naming the job that carries the refused value where the sweep has several.
"""

from __future__ import annotations

import itertools
import math
import os
import sys
import tempfile
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from resnet_exp.command_line import override_key
from resnet_exp.config import ConfigError, processes
from resnet_exp.runs.records import JobError, describe
from resnet_exp.runs.saved_config import config_edited, job_config, resume_plan


def fail(message: str) -> None:
    """Print ``error: message`` on stderr and exit with status 2, before anything is written."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def job_list(overrides: list[str]) -> list[list[str]]:
    """The jobs of a sweep, each as its list of overrides, in the order Hydra's basic sweeper runs
    and numbers them: a later override of a key replaces an earlier one, and the jobs are the
    product of the swept values, the last key changing fastest. (With Hydra's public override
    parser; the basic sweeper's own function is internal to Hydra.)"""
    chosen: dict[str, list[str]] = {}
    for o in OverridesParser.create().parse_overrides(overrides):
        key = o.get_key_element()
        if o.is_sweep_override():
            if not o.is_discrete_sweep():
                raise ConfigError(f"{o.input_line}: the basic sweeper takes lists of values (a,b,c or range(...)) only")
            chosen[key] = [f"{key}={value}" for value in o.sweep_string_iterator()]
        else:
            chosen[key] = [f"{key}={o.get_value_element_as_str()}"]
    return [list(job) for job in itertools.product(*chosen.values())]


def split_overrides(overrides: list[str]) -> tuple[list[str], list[str]]:
    """(the overrides every job of a sweep shares, those that sweep something), as typed."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    return fixed, [o.input_line for o in parsed if o.is_sweep_override()]


def swept_keys(jobs: list[list[str]]) -> list[str]:
    """The keys whose values differ between the jobs, in the order they first appear."""
    values: dict[str, set[str]] = {}
    for job in jobs:
        for override in job:
            values.setdefault(override_key(override), set()).add(override.split("=", 1)[-1])
    return [key for key, seen in values.items() if len(seen) > 1]


# How much longer than its job directory the longest path a job writes is: W&B's
# ``wandb/offline-run-YYYYMMDD_HHMMSS-ID/logs/debug-internal.log`` (68), with room for more.
LONGEST_INSIDE = 100


def check_output(path: Path, inside: int = LONGEST_INSIDE) -> None:
    """Refuse an output directory that cannot be created or written, or whose name or whose files'
    paths (up to ``inside`` more characters) are too long for its file system, before anything is
    written."""
    existing = next(p for p in (path, *path.parents) if _exists(p))
    if existing.is_dir():
        name_max, path_max = (os.pathconf(existing, k) for k in ("PC_NAME_MAX", "PC_PATH_MAX"))
        long = [part for part in path.absolute().parts if len(os.fsencode(part)) > name_max]
        if long:
            fail(
                f"output directory {_short(path)} cannot be used: its part {_short(long[0])} is {len(os.fsencode(long[0]))} "
                f"characters, more than the {name_max} a name may have here; choose a shorter one with "
                "output_dir=DIR or hydra.sweep.dir=DIR"
            )
        length = len(os.fsencode(str(path.absolute())))
        if length + inside >= path_max:
            fail(
                f"output directory {_short(path)} cannot be used: its path is {length} characters, and with "
                f"the job's files beneath it (up to {inside} more) longer than the {path_max} a path may have here; "
                "choose a shorter one with output_dir=DIR or hydra.sweep.dir=DIR"
            )
    if not existing.is_dir():
        problem = "is not a directory"
    else:
        try:  # by writing: permissions alone do not say (root passes them; /proc refuses anyway)
            with tempfile.TemporaryFile(dir=existing):
                pass
            return
        except OSError as e:
            problem = f"cannot be written: {e.strerror or e}"
    fail(
        f"output directory {path} cannot be used ({existing} {problem}); "
        "choose another with output_dir=DIR or hydra.sweep.dir=DIR"
    )


def _short(path: Path | str) -> str:
    text = str(path)
    return text if len(text) <= 80 else f"{text[:40]}...{text[-20:]}"


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long to look up
        return False


def check_subdir(sweep: DictConfig) -> None:
    """Refuse a sweep whose jobs would not be its numbered folders: the sweep's checks, its resume
    and its closing summary find each job at ``hydra.sweep.dir``/N."""
    subdir = OmegaConf.to_container(sweep, resolve=False).get("subdir")
    if subdir != "${hydra.job.num}":
        fail(
            f"hydra.sweep.subdir={subdir} is not supported: a sweep's jobs are its numbered folders "
            "(hydra.sweep.subdir=${hydra.job.num}), where it resumes, checks and sums them up; "
            "name the sweep with hydra.sweep.dir=DIR instead"
        )


def check_data(cfgs: list[DictConfig], wheres: list[str] | None = None) -> None:
    """Find and check the data set of every distinct data config, before any job starts; a refusal
    names the first job that asks for it (``wheres``: `` (in job ...)`` per config, or nothing)."""
    from resnet_exp.data import DataError, check

    sources = {}
    for cfg, where in zip(cfgs, wheres or [""] * len(cfgs)):
        sources.setdefault((cfg.data.name, cfg.data.root, cfg.data.cache_dir, cfg.data.download), where)
    for (name, root, cache_dir, download), where in sources.items():
        try:
            check(name, root, cache_dir, download)  # torch: only once the configs are known to be good
        except DataError as e:
            fail(f"{e}{where}")


def check_parts(cfgs: list[DictConfig], wheres: list[str] | None = None) -> None:
    """Build each distinct optimizer, scheduler and Trainer on stand-ins, and find each callback's
    and logger's class (``build.check_parts``):
    what only their libraries can judge is refused before any job starts, naming the first job
    that asks for it (``wheres``, as in ``check_data``)."""
    from resnet_exp.training.build import PartRefused
    from resnet_exp.training.build import check_parts as check  # torch, Lightning: once the configs are good

    seen = set()
    for cfg, where in zip(cfgs, wheres or [""] * len(cfgs)):
        parts = {k: cfg[k] for k in ("optim", "scheduler", "trainer", "callbacks", "logger")}
        key = repr(
            {k: OmegaConf.to_container(v, resolve=True) if isinstance(v, DictConfig) else v for k, v in parts.items()}
        )
        if key in seen:
            continue
        seen.add(key)
        try:
            check(parts)
        except PartRefused as e:
            fail(f"{e}{where}")


def check_sequential(sweeper: DictConfig, overrides: list[str]) -> None:
    """Refuse a sequential sweep that cannot run as designed, before any job: it chooses the seeds
    itself, compares at least two settings, and its design's numbers are in range."""
    if any(override_key(o) == "seed" for o in overrides):
        fail("seed is chosen by hydra/sweeper=sequential (1, 2, ... one a round); remove seed=... from the command")
    settings = len(job_list(overrides))
    if settings < 2:
        fail("hydra/sweeper=sequential compares settings: sweep at least two (e.g. block.order=post,pre)")
    from resnet_exp.analysis.sequential import comparisons, first_finite

    for key, whole in (("alpha", False), ("margin", False), ("tau2", False), ("max_seeds", True)):
        value = sweeper[key]
        number = isinstance(value, int) if whole else isinstance(value, (int, float)) and math.isfinite(value)
        if isinstance(value, bool) or not number:
            fail(f"hydra.sweeper.{key}={value} must be a {'whole number' if whole else 'finite number'}")
    alpha_each = sweeper.alpha / comparisons(settings)  # Bonferroni over the pairs compared
    ok_scale = 0 < sweeper.alpha < 1 and sweeper.tau2 > 0
    need = first_finite(alpha_each, sweeper.tau2) if ok_scale else 0
    if need is None:
        fail(f"hydra.sweeper.tau2={sweeper.tau2} is too small: the confidence sequence would never be finite; "
             "choose a value near 1-10 (default 3.0)")  # fmt: skip
    checks = [
        ("alpha", 0 < sweeper.alpha < 1, "must be between 0 and 1 (e.g. 0.05)"),
        ("tau2", sweeper.tau2 > 0, "must be more than 0 (e.g. 3.0)"),
        ("margin", sweeper.margin > 0, "must be more than 0 points (e.g. 0.5)"),
        (
            "max_seeds",
            sweeper.max_seeds >= need,
            f"must be at least {need}: the confidence sequence is finite from "
            f"{need} pairs on at hydra.sweeper.alpha={sweeper.alpha} (split over {comparisons(settings)} "
            f"comparison(s)) and hydra.sweeper.tau2={sweeper.tau2}",
        ),
        ("measure", sweeper.measure in ("auto", "precise", "running"), "must be one of: auto, precise, running"),
    ]
    for key, ok, allowed in checks:
        if not ok:
            fail(f"hydra.sweeper.{key}={sweeper[key]} {allowed}")


def check_memory(cfgs: list[DictConfig], wheres: list[str] | None = None) -> None:
    """Refuse a job whose activations alone (``build.activation_bytes``, a lower bound) would not fit
    in this machine's memory where it trains on the CPU, before any job starts; the first job of
    each distinct network, batch and size is measured. (On a GPU its memory is not asked here:
    that would start CUDA in the sweep's own process.)"""
    from resnet_exp.config import bytes_text, machine_memory
    from resnet_exp.training.build import activation_bytes
    from resnet_exp.training.hardware import uses_gpu

    have = machine_memory()
    if have is None:
        return
    seen = set()
    for cfg, where in zip(cfgs, wheres or [""] * len(cfgs)):
        if uses_gpu(cfg.trainer):
            continue
        key = repr([OmegaConf.to_container(cfg[k], resolve=True) for k in ("block", "model")])
        key += repr((cfg.data.name, cfg.data.batch_size, cfg.data.resize, cfg.trainer.precision))
        if key in seen:
            continue
        seen.add(key)
        need = activation_bytes(cfg)
        if need > have:
            fail(
                f"data.batch_size={cfg.data.batch_size} at data.resize={cfg.data.resize} needs at least {bytes_text(need)} "
                f"for the activations of one training step (model.channels={list(cfg.model.channels)}, "
                f"model.blocks={list(cfg.model.blocks)}), and this machine has {bytes_text(have)}; choose a smaller "
                f"data.batch_size or data.resize{where}"
            )


def check_resolves(cfg: DictConfig, where: str = "") -> None:
    """Refuse a config with a value that cannot be resolved (``${oc.env:UNSET}``, say)."""
    from resnet_exp.data import DataError

    try:
        job_config(cfg)
    except Exception as e:
        cause = e
        while cause is not None and not isinstance(cause, DataError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:  # the data_channels resolver: an unknown data.name, in its own words
            fail(f"{cause}{where}")
        fail(f"a config value cannot be resolved: {describe(e)}{where}")


def check_resume(job_dir: Path, cfg: DictConfig, overrides: list[str], directory_key: str = "hydra.sweep.dir") -> None:
    """Refuse to resume ``job_dir``, or to skip it as finished, where its config.yaml was changed
    since the job wrote it (``saved_config.config_edited``), where the command line's ``overrides`` set
    a value other than the one it ran with, or where its saved config cannot be read. Values that differ only because a
    default changed are no reason: the job keeps the ones it ran with (``fit.train``)."""
    edited = config_edited(job_dir)
    if edited:
        fail(edited)
    try:
        changes = resume_plan(job_dir, cfg, overrides).conflicts
    except JobError as e:
        fail(str(e))
    if changes and not cfg.force_resume:
        fail(
            f"{job_dir} ran with another config ({'; '.join(changes)}); use a new {directory_key}, "
            "or force_resume=true to resume it anyway"
        )


def check_launcher(launcher: DictConfig, cfg: DictConfig, where: str = "") -> None:
    """Refuse, before any job is queued, a DDP run that the launcher cannot start its processes for:
    under SLURM one task per process; submitit's local executor and the parallel (joblib) launcher
    cannot start them."""
    target = str(launcher.get("_target_", ""))
    count = processes(cfg.trainer)
    if target.endswith("SlurmLauncher"):
        tasks = int(launcher.tasks_per_node) * int(launcher.nodes)
        devices = f"trainer.devices={cfg.trainer.devices}"
        if count is None:  # devices=auto (or -1): every device of the node SLURM gives the job
            from resnet_exp.runs.slurm import gres_gpus  # the SLURM launcher's plugin: installed here

            gpus, said = 0, ""
            if str(cfg.trainer.accelerator) != "cpu" and launcher.get("gpus_per_node"):
                gpus, said = int(launcher.gpus_per_node), f"gpus_per_node={launcher.gpus_per_node}"
            elif str(cfg.trainer.accelerator) != "cpu" and launcher.get("gres"):  # GPUs of a kind: gres=gpu:a100:2
                gpus = gres_gpus(str(launcher.gres))
                said = f"gres={launcher.gres}"
            devices += f" (the {gpus} GPUs of hydra.launcher.{said})" if gpus else " (one CPU process)"
            count = max(gpus, 1) * int(cfg.trainer.num_nodes)
        if count != tasks:
            fail(
                f"{devices} x trainer.num_nodes={cfg.trainer.num_nodes} processes but "
                f"hydra.launcher.tasks_per_node={launcher.tasks_per_node} x hydra.launcher.nodes={launcher.nodes} "
                f"SLURM tasks; SLURM starts one process per device: make them equal (and gpus_per_node too){where}"
            )
    elif target.endswith(("LocalLauncher", "JoblibLauncher")) and count != 1:
        name = "submitit_local" if target.endswith("LocalLauncher") else "parallel"
        fail(
            f"trainer.strategy={cfg.trainer.strategy} on {cfg.trainer.devices} devices cannot run under "
            f"hydra/launcher={name}; use hydra/launcher=slurm (one task per device), or the default launcher{where}"
        )


def check_cluster(launcher: DictConfig, sweep_dir: Path, jobs: int) -> None:
    """Under SLURM, refuse a request the cluster can never meet for the sweep's ``jobs``
    (``runs/slurm.request_problem``), and a sweep whose jobs queued before SLURM still holds
    (``runs/slurm.still_queued``), before anything is queued."""
    if str(launcher.get("_target_", "")).endswith("SlurmLauncher"):
        from resnet_exp.runs.slurm import request_problem, still_queued  # the SLURM launcher's plugin: installed here

        problem = request_problem(launcher, jobs) or still_queued(sweep_dir)
        if problem:
            fail(problem)
