"""The jobs a report reads: job directories and sweeps (records), or W&B runs, online or offline
(tracking/), each as a ``Job`` (its config, its curves, how it ended); ``groups.py`` selects and
groups them. The two measures of test accuracy are named here."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from resnet_exp.config import FIRST_DEFAULTS
from resnet_exp.runs.records import (
    CONFIG_FILE,
    METRICS,
    SIGNAL_FILE,
    describe,
    read_metrics,
    read_status,
    read_sweep,
)
from resnet_exp.runs.saved_config import config_edited, implied_defaults, saved_keys


class ReportError(Exception):
    """The input cannot be reported on; the message is one line."""


# The two measures of test accuracy. With precise BN on (evaluation.precise_bn_batches > 0, the
# default) every evaluation measures the same weights both ways: test/acc is precise BN's and
# test/acc_running the running averages'; with it off, test/acc is the running averages'.
PRECISE, RUNNING = "precise BN", "running averages"


MEASURES = {
    PRECISE: "BatchNorm statistics recomputed over fixed training batches before each evaluation",
    RUNNING: "BatchNorm's running averages, as they stand after training (the seed's protocol)",
}


@dataclass
class Job:
    """One job of a sweep: its flattened config, its per-epoch metrics and how it ended."""

    name: str
    path: Path
    config: dict[str, Any]
    epochs: list[dict[str, float]]
    status: str
    error: str = ""
    ran_with: str = ""  # what precision=auto and data.pipeline=auto became where it ran
    signal: list[dict[str, Any]] = field(default_factory=list)  # signal.csv's rows (diagnostics.py)

    @property
    def seed(self) -> Any:
        return self.config.get("seed")

    @property
    def last_epoch(self) -> int:
        return int(self.epochs[-1]["epoch"]) if self.epochs else 0

    def curve(self, key: str) -> list[float]:
        return [row[key] for row in self.epochs if key in row and not math.isnan(row[key])]

    @property
    def measures(self) -> tuple[str, ...]:
        """The measures of test accuracy this job took, its headline first (precise BN where on)."""
        return (PRECISE, RUNNING) if (self.config.get("evaluation.precise_bn_batches") or 0) > 0 else (RUNNING,)

    def key(self, measure: str, split: str = "test") -> str | None:
        """The metric that holds ``measure``'s accuracy on ``split`` (test or val); None where the job
        did not take it."""
        if measure not in self.measures:
            return None
        return f"{split}/acc_running" if measure == RUNNING and PRECISE in self.measures else f"{split}/acc"

    def acc(self, measure: str | None = None) -> list[float]:
        """Test accuracy per epoch by ``measure`` (default: the headline measure); [] if not taken."""
        key = self.key(measure or self.measures[0])
        return self.curve(key) if key else []

    def final_of(self, measure: str | None = None) -> float:
        return self.acc(measure)[-1]

    def best_epoch_of(self, measure: str | None = None) -> int:
        """The epoch of highest validation accuracy by ``measure`` where the job has a validation
        split, else of highest test accuracy (the first such epoch on a tie, as ``best.ckpt`` keeps it)."""
        measure = measure or self.measures[0]
        test = self.key(measure)
        chosen = self.key(measure, "val") if self.validated else test
        accs = [(row[chosen], -int(row["epoch"])) for row in self.epochs if chosen in row and test in row]
        return -max(accs)[1]

    def best_of(self, measure: str | None = None) -> float:
        """Test accuracy by ``measure`` at ``best_epoch_of``: chosen on validation where there is a
        split, else the highest test accuracy (selected on the test set itself, so optimistic)."""
        epoch, key = self.best_epoch_of(measure), self.key(measure or self.measures[0])
        return next(row[key] for row in self.epochs if int(row["epoch"]) == epoch)

    @property
    def final(self) -> float:
        """Final test accuracy by the headline measure (``test/acc``)."""
        return self.final_of()

    @property
    def validated(self) -> bool:
        """Whether the job held out a validation split (``data.val_size`` > 0): its "best" epoch is
        then chosen on validation accuracy, not on the test set."""
        return bool(self.curve("val/acc"))

    @property
    def best_epoch(self) -> int:
        return self.best_epoch_of()

    @property
    def best(self) -> float:
        return self.best_of()

    @property
    def largest_drop(self) -> float:
        """The largest fall of test accuracy (headline measure) from one epoch to the next."""
        return largest_drop(self.acc())

    @property
    def late_range(self) -> float:
        """How far test accuracy (headline measure) moves over the second half of the epochs."""
        return late_range(self.acc())


def largest_drop(accs: Sequence[float]) -> float:
    """The largest fall of a curve from one epoch to the next (0 if it never falls)."""
    return max([0.0] + [a - b for a, b in zip(accs, accs[1:])])


def late_range(accs: Sequence[float], first_epoch: int | None = None) -> float:
    """How far a curve moves late in training (max - min), where a run should have settled: from
    ``first_epoch`` (1-based) on, or over the second half of its epochs (epochs 6-10 of 10)."""
    late = accs[len(accs) // 2 if first_epoch is None else first_epoch - 1 :]
    return max(late) - min(late) if late else math.nan


def read_job(path: Path, name: str) -> Job:
    """A job directory as a Job; one whose config.yaml or metrics.csv cannot be read, or whose
    config.yaml was changed after the job wrote it (``saved_config.config_edited``), is listed as
    ``unreadable`` with the reason (and left out of the statistics), not a traceback."""
    edited = config_edited(path)
    if edited:  # not the config the job trained with: its numbers would be filed under the wrong recipe
        return Job(name, path, {}, [], UNREADABLE, f"cannot be trusted: {edited}")
    try:
        config = saved_keys(OmegaConf.to_container(OmegaConf.load(path / CONFIG_FILE)))
        config.update(presets(path))
        epochs = read_metrics(path)
        signal = read_signal(path)
    except Exception as e:  # a file edited by hand or cut short; a YAML tag OmegaConf refuses
        return Job(name, path, {}, [], UNREADABLE, f"cannot be read: {describe(e)}")
    status = read_status(path)
    ran_with = ", ".join(str(status[k]) for k in ("precision", "pipeline") if status.get(k))
    return Job(
        name,
        path,
        config,
        epochs,
        status.get("status", "unknown"),
        status.get("error", ""),
        ran_with,
        signal,
    )


def network(job: Job) -> tuple[str, int]:
    """What a job trained, by its config: its residual unit (``plain`` where it had no shortcut, else
    its ordering) and its depth in weighted layers (the stem's convolution, two per unit, the linear
    layer: 14 for the seed's network, 6n+2 for He et al.'s network for small images)."""
    block = "plain" if job.config.get("block.shortcut") == "none" else str(job.config.get("block.order"))
    blocks = [int(n) for n in str(job.config["model.blocks"]).strip("[]").split(",")]  # a list, as text
    return block, 2 * sum(blocks) + 2


def read_signal(job_dir: Path) -> list[dict[str, Any]]:
    """A job's signal.csv (signal propagation per unit and stage), numbers as floats; [] if none."""
    path = Path(job_dir) / SIGNAL_FILE
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: (v if k in ("kind", "name") else float(v)) for k, v in row.items()} for row in csv.DictReader(f)]


def presets(job_dir: Path) -> dict[str, str]:
    """The preset each config group was composed from (``model: resnet34``), from Hydra's record of
    the job; a group's presets name groups of jobs better than the keys they set."""
    path = Path(job_dir) / ".hydra" / "hydra.yaml"
    if not path.is_file():
        return {}
    choices = OmegaConf.to_container(OmegaConf.load(path).hydra.runtime.choices)
    return {k: v for k, v in choices.items() if not k.startswith(("hydra/", "logger", "diagnostics")) and v is not None}


def sweep_names(dirs: Sequence[Path]) -> list[str]:
    """Each sweep directory's name: its last path part, or as many last parts as tell it apart from
    the others (``block_order/jobs`` beside ``bf16_vs_fp32/jobs``)."""
    parts = [Path(d).resolve().parts for d in dirs]
    names = []
    for mine in parts:
        n = 1
        while n < len(mine) and sum(p[-n:] == mine[-n:] for p in parts) > 1:
            n += 1
        names.append("/".join(mine[-n:]))
    return names


def read_sweeps(dirs: Sequence[Path]) -> list[Job]:
    """The jobs of every sweep directory, named ``SWEEP/JOB`` (``sweep_names``); an error if one
    holds no jobs."""
    jobs = []
    for d, name in zip(dirs, sweep_names(dirs)):
        d = Path(d)
        if not d.is_dir():
            raise ReportError(f"{d} is not a directory; give the directory of a sweep (outputs/sweeps/...)")
        found = sorted(
            (p for p in d.iterdir() if (p / CONFIG_FILE).is_file()),
            key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name),
        )
        info = read_sweep(d) or {}
        if not found:
            if info.get("jobs"):
                raise ReportError(
                    f"{d}: none of the sweep's {info['jobs']} jobs has started yet (its sweep.yaml lists them)"
                )
            raise ReportError(
                f"{d} is not a sweep directory: no job directories with a config.yaml in it "
                "(give outputs/sweeps/<sweep>, made by python -m resnet_exp.run -m ...)"
            )
        jobs += [read_job(p, f"{name}/{p.name}") for p in found]
        # the jobs sweep.yaml lists that have no config.yaml: not started where there is no folder
        # either, starting where the folder says nothing yet or that it runs (a job writes its
        # config.yaml once it has set up); a folder whose job ended without one (lost, or
        # deleted) cannot be read, and is said so
        present = {p.name for p in found}
        for n in range(info.get("jobs") or 0):
            path = d / str(n)
            if str(n) in present:
                continue
            if not path.exists():
                jobs.append(Job(f"{name}/{n}", path, {}, [], NOT_STARTED))
            elif read_status(path).get("status") in (None, "running"):
                jobs.append(Job(f"{name}/{n}", path, {}, [], STARTING))
            else:
                jobs.append(Job(f"{name}/{n}", path, {}, [], UNREADABLE, f"cannot be read: it has no {CONFIG_FILE}"))
    return with_gained_keys(jobs)


NOT_STARTED, STARTING, UNREADABLE = "not started", "starting", "unreadable"


def started(jobs: Sequence[Job]) -> list[Job]:
    """The jobs with a config to report on: not a sweep's job that has not started yet (no
    directory), nor one whose files cannot be read."""
    return [j for j in jobs if j.status not in (NOT_STARTED, STARTING, UNREADABLE)]


def with_gained_keys(jobs: list[Job]) -> list[Job]:
    """Jobs of one recipe made by different versions of the project: a config key that some jobs
    hold and others lack (the project gained it after they ran) is given, in the jobs that lack it,
    the value jobs had before the key existed (``saved_config.implied_defaults``: its first default,
    e.g. ``loss.reduction=mean``), as resuming such a job does, so that it neither splits a group
    of equal recipes nor reads an old job as run with today's default. The keys whose default
    changed are filled in always, so that the report of old jobs alone names what they ran with."""
    ran = started(jobs)
    held = {*(k for j in ran for k in j.config), *FIRST_DEFAULTS}
    gained = {k: v for k, v in implied_defaults().items() if k in held and any(k not in j.config for j in ran)}
    for j in ran:
        j.config = {**j.config, **{k: v for k, v in gained.items() if k not in j.config}}
    return jobs


# W&B run states as this project's job statuses.
WANDB_STATES = {
    "finished": "completed",
    "crashed": "failed",
    "failed": "failed",
    "killed": "interrupted",
    "running": "running",
}


def job_from_wandb(name: str, path: Path, config: dict[str, Any], history: Iterable[dict[str, Any]], state: str) -> Job:
    """A Job from what W&B holds of a run: its config, its history rows (one per epoch), its state."""
    keys = ("epoch", *METRICS)
    rows = [{k: float(row[k]) for k in keys if row.get(k) is not None} for row in history]
    rows = [r for r in rows if "epoch" in r and len(r) > 1]
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    return Job(name, path, saved_keys(config), rows, WANDB_STATES.get(state, state))


def read_wandb(path: str, group: str, api: Any = None) -> list[Job]:
    """The runs of W&B group ``group`` in ``ENTITY/PROJECT``, through wandb's public API (online)."""
    if api is None:
        from resnet_exp.tracking import TrackingError, public_api

        try:
            api = public_api()
        except TrackingError as e:
            raise ReportError(str(e)) from None
    runs = list(api.runs(path, filters={"group": group}))
    if not runs:
        raise ReportError(f"W&B project {path} has no runs in group {group!r}; the group is in the sweep's sweep.yaml")
    return with_gained_keys(
        [job_from_wandb(r.name, Path(path) / r.id, r.config, r.scan_history(), r.state) for r in runs]
    )


def read_wandb_offline(dirs: Sequence[Path]) -> list[Job]:
    """The W&B offline runs (``offline-run-*``) found under ``dirs``, read from their .wandb files."""
    # (a run set aside as damaged, ``offline-run-*.damaged``, is left out: its job logged it again)
    found = sorted(p for d in dirs for p in Path(d).glob("**/offline-run-*") if p.is_dir() and "." not in p.name)
    if not found:
        raise ReportError(f"no W&B offline runs (offline-run-*) under {', '.join(map(str, dirs))}")
    from resnet_exp.tracking.offline import read_run

    jobs = []
    for run_dir in found:
        try:
            run = read_run(run_dir)
        except Exception as e:  # cut short, damaged, or a format this reader does not know (DecodeError)
            jobs.append(Job(run_dir.name, run_dir, {}, [], UNREADABLE, f"cannot be read: {describe(e)}"))
            continue
        state = "running" if run.exit_code is None else "finished" if run.exit_code == 0 else "failed"
        jobs.append(job_from_wandb(run.name, run_dir, run.config, run.history, state))
    return with_gained_keys(jobs)
