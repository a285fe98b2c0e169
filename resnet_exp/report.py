"""``python -m resnet_exp.report SWEEP_DIR [SWEEP_DIR ...] [--out DIR]``: a sweep in, a report out.

Reads every job's resolved config (config.yaml), per-epoch metrics (metrics.csv) and status
(status.json), groups the jobs that are equal but for the seed, and writes into ``--out`` (default:
the first sweep directory):

- ``report.md``: what was swept and what was held fixed; per group, n runs, final test accuracy (the
  headline) and the test accuracy of the best epoch (chosen on the validation split where the runs
  hold one out, ``data.val_size``; else on the test set, and labelled so) as mean ± std with a 95%
  t-interval, the epoch-1 training loss (the seed's early-training number), the epoch of the
  best, the mean epoch time; every pair
  of groups compared on final test accuracy (paired by seed where both groups ran the same seeds,
  else Welch's t-test), with a 95% interval, a p-value (raw and Holm-adjusted) and a plain sentence;
  and every job that did not complete, by name, with its status and last epoch.
- ``curves.png``: test accuracy and train loss per epoch, mean line and ± std band per group.
- ``summary.csv``: one row per job.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import itertools
import math
import shlex
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf
from scipy import stats

from resnet_exp.config import FIRST_DEFAULTS, TrainerConfig
from resnet_exp.console import python_command
from resnet_exp.records import (
    CONFIG_FILE,
    METRICS,
    NOT_RECIPE,
    SIGNAL_FILE,
    describe,
    flatten,
    implied_defaults,
    read_metrics,
    read_status,
    read_sweep,
)


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
    """A job directory as a Job; one whose config.yaml or metrics.csv cannot be read is listed as
    ``unreadable`` with the reason (and left out of the statistics), not a traceback."""
    try:
        config = flatten(OmegaConf.to_container(OmegaConf.load(path / CONFIG_FILE)))
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


def read_sweeps(dirs: Sequence[Path]) -> list[Job]:
    """The jobs of every sweep directory, named ``SWEEP/JOB``; an error if one holds no jobs."""
    jobs = []
    for d in dirs:
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
                raise ReportError(f"{d}: none of the sweep's {info['jobs']} jobs has started yet (its sweep.yaml lists them)")
            raise ReportError(
                f"{d} is not a sweep directory: no job directories with a config.yaml in it "
                "(give outputs/sweeps/<sweep>, made by python -m resnet_exp.run -m ...)"
            )
        jobs += [read_job(p, f"{d.name}/{p.name}") for p in found]
        # the jobs sweep.yaml lists that have no directory yet: not started, and said so
        present = {p.name for p in found}
        jobs += [
            Job(f"{d.name}/{n}", d / str(n), {}, [], NOT_STARTED)
            for n in range(info.get("jobs") or 0)
            if str(n) not in present
        ]
    return with_gained_keys(jobs)


NOT_STARTED, UNREADABLE = "not started", "unreadable"


def started(jobs: Sequence[Job]) -> list[Job]:
    """The jobs with a config to report on: not a sweep's job that has not started yet (no
    directory), nor one whose files cannot be read."""
    return [j for j in jobs if j.status not in (NOT_STARTED, UNREADABLE)]


def with_gained_keys(jobs: list[Job]) -> list[Job]:
    """Jobs of one recipe made by different versions of the project: a config key that some jobs
    hold and others lack (the project gained it after they ran) is given, in the jobs that lack it,
    the value jobs had before the key existed (``records.implied_defaults``: its first default,
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
    return Job(name, path, flatten(config), rows, WANDB_STATES.get(state, state))


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


def select(jobs: Sequence[Job], where: Sequence[str]) -> list[Job]:
    """The jobs whose config matches every ``KEY=VALUE[,VALUE...]`` of ``where`` (values as text)."""
    for condition in where:
        key, sep, values = condition.partition("=")
        if not sep or not key:
            raise ReportError(f"--where {condition!r} is not KEY=VALUE[,VALUE...] (e.g. block.order=post,pre)")
        allowed = set(values.split(","))
        jobs = [j for j in jobs if str(j.config.get(key)) in allowed]
    if not jobs:
        raise ReportError(f"no job matches --where {' '.join(where)}")
    return list(jobs)


def swept_keys(jobs: Sequence[Job]) -> list[str]:
    """Config keys whose values differ between jobs (the seed aside), in config order; where a
    group's preset differs (``model``), its keys that follow from the preset alone are left out."""
    keys = dict.fromkeys(k for job in jobs for k in job.config)
    differing = [
        k
        for k in keys
        if k != "seed" and not k.startswith(NOT_RECIPE) and len({repr(job.config.get(k)) for job in jobs}) > 1
    ]

    def follows_from_preset(key: str) -> bool:
        group = key.split(".", 1)[0]
        if "." not in key or group not in differing:
            return False
        pairs = {(repr(j.config.get(group)), repr(j.config.get(key))) for j in jobs}
        return len(pairs) == len({p[0] for p in pairs})

    return [k for k in differing if not follows_from_preset(k)]


def fixed_recipe(jobs: Sequence[Job]) -> dict[str, Any]:
    """The keys every job shares, less the unset ones and the Trainer arguments left at Lightning's
    defaults (listing those would bury the recipe)."""
    defaults = {f"trainer.{f.name}": f.default for f in dataclasses.fields(TrainerConfig)}
    keys = dict.fromkeys(k for job in jobs for k in job.config)
    return {
        k: jobs[0].config.get(k)
        for k in keys
        if k != "seed"
        and not k.startswith(NOT_RECIPE)
        and jobs[0].config.get(k) is not None
        and (k not in defaults or jobs[0].config[k] != defaults[k])
        and len({repr(job.config.get(k)) for job in jobs}) == 1
    }


@dataclass
class Group:
    label: str
    jobs: list[Job] = field(default_factory=list)

    @property
    def done(self) -> list[Job]:
        return [j for j in self.jobs if j.status == "completed" and j.curve("test/acc")]

    @property
    def measures(self) -> tuple[str, ...]:
        """The measures every completed run of the group took (none without a completed run)."""
        done = self.done
        return tuple(m for m in MEASURES if done and all(m in j.measures for j in done))


def common_measures(groups: Sequence[Group]) -> tuple[str, ...]:
    """The measures every group with a completed run took: those its groups can be compared on."""
    with_runs = [g for g in groups if g.done]
    return tuple(m for m in MEASURES if with_runs and all(m in g.measures for g in with_runs))


def group_jobs(jobs: Sequence[Job], keys: Sequence[str]) -> list[Group]:
    groups: dict[tuple, Group] = {}
    for job in jobs:
        values = tuple(job.config.get(k) for k in keys)
        label = ", ".join(f"{k}={v}" for k, v in zip(keys, values)) or "all jobs"
        groups.setdefault(values, Group(label)).jobs.append(job)
    return list(groups.values())


@dataclass
class Estimate:
    """Mean, sample standard deviation and the 95% t-interval of the mean."""

    n: int
    mean: float
    std: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Estimate:
        x = np.asarray(list(values), dtype=float)
        n = len(x)
        if n == 0:
            return cls(0, math.nan, math.nan, math.nan, math.nan)
        mean = float(x.mean())
        if n == 1:
            return cls(1, mean, math.nan, math.nan, math.nan)
        std = float(x.std(ddof=1))
        half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
        return cls(n, mean, std, mean - half, mean + half)

    def text(self, scale: float = 1.0, digits: int = 4) -> str:
        if self.n == 0:
            return "n/a"
        if self.n == 1:
            return f"{self.mean * scale:.{digits}f} (one run)"
        return (
            f"{self.mean * scale:.{digits}f} ± {self.std * scale:.{digits}f} "
            f"[{self.low * scale:.{digits}f}, {self.high * scale:.{digits}f}]"
        )


@dataclass
class Comparison:
    a: Group
    b: Group
    measure: str
    paired: bool
    n_a: int
    n_b: int
    diff: float
    low: float
    high: float
    p: float
    p_holm: float = math.nan

    def sentence(self) -> str:
        """The plain reading, consistent with the interval and both p-values: the interval is the
        raw (unadjusted) 95% CI, which excludes 0 exactly when the raw p is below 0.05; the verdict
        follows the Holm-adjusted p, and where the two disagree the sentence says so."""
        n = f"n={self.n_a}" if self.n_a == self.n_b else f"n={self.n_a} and {self.n_b}"
        if math.isnan(self.p):
            return f"Too few completed runs to compare ({n})."
        pts = f"{abs(self.diff) * 100:.2f} points"
        ci = f"95% CI {self.low * 100:+.2f} to {self.high * 100:+.2f}"
        higher, lower = (self.a, self.b) if self.diff > 0 else (self.b, self.a)
        if self.p_holm < 0.05:
            return (
                f"{higher.label} ends higher than {lower.label} by {pts} ({ci}), "
                f"significant at {n} after Holm correction."
            )
        if self.p < 0.05:
            return (
                f"Not distinguishable at {n} after correcting for the other comparisons: {higher.label} ends "
                f"higher by {pts} and the raw {ci} excludes 0 (p={self.p:.3f}), but the Holm-adjusted "
                f"p={self.p_holm:.3f} is not below 0.05."
            )
        return f"Not distinguishable at {n}: the difference of {pts} has a {ci} points that includes 0."


def compare(a: Group, b: Group, measure: str = PRECISE) -> Comparison:
    """Difference of mean final test accuracy by ``measure``, a minus b: paired by seed where both
    groups ran the same seeds (each seed once), else Welch's t-test."""
    fa = {j.seed: j.final_of(measure) for j in a.done}
    fb = {j.seed: j.final_of(measure) for j in b.done}
    xa, xb = [j.final_of(measure) for j in a.done], [j.final_of(measure) for j in b.done]
    paired = len(fa) == len(xa) and len(fb) == len(xb) and set(fa) == set(fb) and len(fa) >= 2
    if paired:
        seeds = sorted(fa, key=str)
        ya, yb = [fa[s] for s in seeds], [fb[s] for s in seeds]
        d = np.subtract(ya, yb)
        if np.ptp(d) == 0:  # every pair differs alike: no spread, no interval
            diff = float(d[0])
            return Comparison(a, b, measure, True, len(d), len(d), diff, diff, diff, 1.0 if diff == 0 else 0.0)
        test = stats.ttest_rel(ya, yb)
        ci = test.confidence_interval(0.95)
        return Comparison(
            a, b, measure, True, len(d), len(d), float(d.mean()), float(ci.low), float(ci.high), float(test.pvalue)
        )
    if len(xa) < 2 or len(xb) < 2:
        return Comparison(
            a,
            b,
            measure,
            False,
            len(xa),
            len(xb),
            (np.mean(xa) if xa else math.nan) - (np.mean(xb) if xb else math.nan),
            math.nan,
            math.nan,
            math.nan,
        )
    diff = float(np.mean(xa) - np.mean(xb))
    if np.ptp(xa) == 0 and np.ptp(xb) == 0:  # no spread in either group
        return Comparison(a, b, measure, False, len(xa), len(xb), diff, diff, diff, 1.0 if diff == 0 else 0.0)
    test = stats.ttest_ind(xa, xb, equal_var=False)  # Welch's
    ci = test.confidence_interval(0.95)
    return Comparison(a, b, measure, False, len(xa), len(xb), diff, float(ci.low), float(ci.high), float(test.pvalue))


def holm(comparisons: list[Comparison]) -> None:
    """Holm-Bonferroni adjusted p-values, in place."""
    ranked = sorted((c for c in comparisons if not math.isnan(c.p)), key=lambda c: c.p)
    running = 0.0
    for i, c in enumerate(ranked):
        running = max(running, min(1.0, (len(ranked) - i) * c.p))
        c.p_holm = running


# The panels of curves.png: (name, title, y-axis label, scale, the curve of a job); accuracies in %,
# as in the tables. A panel no completed run has a curve for is left out.
PANELS = (
    ("test/acc", f"test accuracy, {PRECISE}", "accuracy (%)", 100.0, lambda j: j.acc(PRECISE)),
    ("test/acc_running", f"test accuracy, {RUNNING}", "accuracy (%)", 100.0, lambda j: j.acc(RUNNING)),
    ("train/acc", "training accuracy", "accuracy (%)", 100.0, lambda j: j.curve("train/acc")),
    ("train/loss", "training loss", "cross-entropy", 1.0, lambda j: j.curve("train/loss")),
)


def curve_data(groups: Sequence[Group]) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """What curves.png draws: per panel (by name) and per group, (epochs, mean, std) over the group's
    completed runs (std 0 for one run), cut to the shortest run's epochs; groups without a completed
    run with that curve are left out, and so are panels without any."""
    data: dict[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for name, _, _, scale, of in PANELS:
        panel = {}
        for g in groups:
            curves = [c for c in (of(j) for j in g.done) if c]
            if not curves:
                continue
            length = min(len(c) for c in curves)
            y = np.array([c[:length] for c in curves]) * scale
            std = y.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros(length)
            panel[f"{g.label} (n={len(curves)})"] = (np.arange(1, length + 1), y.mean(axis=0), std)
        if panel:
            data[name] = panel
    return data


def plot(groups: Sequence[Group], path: Path) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Draw curves.png: one panel per metric of ``PANELS``, a mean line and a ± std band per group;
    returns the data drawn (``curve_data``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = curve_data(groups)
    panels = [p for p in PANELS if p[0] in data] or list(PANELS[2:])
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.8))
    for ax, (key, title, ylabel, _, _) in zip(axes, panels):
        longest = 1
        for label, (x, mean, std) in data.get(key, {}).items():
            (line,) = ax.plot(x, mean, marker="o", markersize=3, label=label)
            ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2)
            longest = max(longest, len(x))
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.set_xticks(range(1, longest + 1, max(1, longest // 10)))
        ax.set_title(f"{title}: mean ± std over seeds", fontsize=10)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:  # below the panels, where it hides no point
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06 + 0.035 * ((len(labels) - 1) // 3), 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return data


# The panels of signal.png: (measure, title, log scale)
SIGNAL_PANELS = (
    ("act_std", "output std of each residual unit", False),
    ("input_grad_norm", "loss gradient norm at each unit's input", True),
)


def signal_data(groups: Sequence[Group]) -> dict[tuple[str, str], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """What signal.png draws: per (measure, moment) and group, the unit depths and the mean over
    the group's completed runs of the measure at initialisation ("init", epoch 0) and at the end
    ("end", each run's last measured epoch); a run is counted where it measured that moment, and
    groups whose runs measured nothing are left out."""
    data: dict[tuple[str, str], dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for measure, _, _ in SIGNAL_PANELS:
        for moment in ("init", "end"):
            panel = data.setdefault((measure, moment), {})
            for g in groups:
                per_run = []
                for j in g.done:
                    rows = [r for r in j.signal if r["kind"] == "unit"]
                    if not rows:
                        continue
                    epoch = 0.0 if moment == "init" else max(r["epoch"] for r in rows)
                    chosen = sorted((r for r in rows if r["epoch"] == epoch), key=lambda r: r["depth"])
                    if chosen:  # a run resumed after the project gained the probe has no epoch 0
                        per_run.append([r[measure] for r in chosen])
                if per_run and len({len(r) for r in per_run}) == 1:
                    depths = np.arange(1, len(per_run[0]) + 1)
                    panel[f"{g.label} (n={len(per_run)})"] = (depths, np.array(per_run).mean(axis=0))
    return data


def plot_signal(groups: Sequence[Group], path: Path) -> dict:
    """Draw signal.png (where any run measured signal propagation): the output std and the input
    gradient norm of each residual unit against its depth, at initialisation and at the end, mean
    over seeds per group; returns the data drawn (``signal_data``)."""
    data = signal_data(groups)
    if not any(data.values()):
        return data
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    for row, (measure, title, log_scale) in enumerate(SIGNAL_PANELS):
        for col, moment in enumerate(("init", "end")):
            ax = axes[row][col]
            for label, (x, y) in data[(measure, moment)].items():
                ax.plot(x, y, marker="o", markersize=4, label=label)
            ax.set_title(f"{title}, {'at initialisation' if moment == 'init' else 'after the last epoch'}", fontsize=10)
            ax.set_xlabel("residual unit (depth, input side first)")
            ax.set_ylabel(measure.replace("_", " "))
            if log_scale:
                ax.set_yscale("log")
            ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05 + 0.03 * ((len(labels) - 1) // 3), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return data


# summary.csv's per-measure columns: the measure's name in a column name
COLUMN = {PRECISE: "precise_bn", RUNNING: "running"}


def write_summary(jobs: Sequence[Job], keys: Sequence[str], path: Path) -> None:
    """One row per job; test accuracy by each measure (``final_precise_bn``, ``final_running``, ...),
    empty where the job did not take it."""
    per_measure = ("final", "best", "best_epoch", "largest_drop", "late_range")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "job",
                *keys,
                "seed",
                "status",
                "epochs",
                *(f"{c}_{COLUMN[m]}" for m in MEASURES for c in per_measure),
                "best_chosen_on",
                "first_train_loss",
                "final_train_loss",
                "epochs_time_s",
                "precise_bn_time_s",
            ]
        )
        for j in jobs:
            cells = []
            for m in MEASURES:
                if j.acc(m):
                    acc = j.acc(m)
                    cells += [f"{acc[-1]:.4f}", f"{j.best_of(m):.4f}", j.best_epoch_of(m)]
                    cells += [f"{largest_drop(acc):.4f}", f"{late_range(acc):.4f}"]
                else:
                    cells += [""] * len(per_measure)
            loss = j.curve("train/loss")
            w.writerow(
                [
                    j.name,
                    *(j.config.get(k) for k in keys),
                    j.seed,
                    j.status,
                    j.last_epoch,
                    *cells,
                    ("validation" if j.validated else "test") if j.acc() else "",
                    f"{loss[0]:.4f}" if loss else "",
                    f"{loss[-1]:.4f}" if loss else "",
                    f"{sum(j.curve('time/epoch_s')):.0f}" if j.curve("time/epoch_s") else "",
                    f"{sum(j.curve('time/precise_bn_s')):.1f}" if j.curve("time/precise_bn_s") else "",
                ]
            )


def stability(groups: Sequence[Group]) -> list[str]:
    """How much test accuracy swings between epochs, per group and measure: the largest
    epoch-to-epoch drop and the range over the second half of the epochs, in points, mean ± std
    over runs and the worst."""
    lines = [
        "",
        "## How much test accuracy swings between epochs",
        "",
        "In points, per run, then mean ± std over the group's completed runs [the worst run]: the largest fall of "
        "test accuracy from one epoch to the next, and its range (max - min) over the second half of the epochs.",
        "",
        "| group | measure | n | largest drop | range over the second half |",
        "|---|---|---|---|---|",
    ]
    for g in groups:
        for m in g.measures:
            curves = [j.acc(m) for j in g.done if len(j.acc(m)) > 1]
            if not curves:
                continue
            drops, ranges = [largest_drop(c) * 100 for c in curves], [late_range(c) * 100 for c in curves]

            def text(values: list[float]) -> str:
                e = Estimate.of(values)
                spread = "" if e.n < 2 else f" ± {e.std:.2f}"
                return f"{e.mean:.2f}{spread} [{max(values):.2f}]"

            lines.append(f"| {g.label} | {m} | {len(curves)} | {text(drops)} | {text(ranges)} |")
    return lines if len(lines) > 7 else []


def validated(jobs: Sequence[Job]) -> bool:
    """Whether every job with results held out a validation split (so "best" is chosen on it)."""
    with_results = [j for j in jobs if j.curve("test/acc")]
    return bool(with_results) and all(j.validated for j in with_results)


def best_column(jobs: Sequence[Job]) -> str:
    return "test acc at the best validation epoch" if validated(jobs) else "best test acc (epoch chosen on test)"


def best_epoch_column(jobs: Sequence[Job]) -> str:
    return "best validation epoch, mean" if validated(jobs) else "epoch of best test acc, mean"


def selection_note(jobs: Sequence[Job]) -> list[str]:
    """What "best" means here, in one paragraph."""
    if validated(jobs):
        return [
            "The headline is the final test accuracy. The best epoch of each run is chosen on its held-out "
            "validation split (`data.val_size`, the same images for every seed) and its test accuracy is "
            "reported, an honest estimate for a run stopped at its best validation epoch."
        ]
    return [
        "The headline is the final test accuracy. These runs hold out no validation split, so "
        '"best test acc" is the highest test accuracy over the epochs: an epoch chosen by looking at '
        "the test set, which overstates the accuracy to expect on new data. Run with `data.val_size=N` "
        "to choose it on held-out training images instead."
    ]


def measures_note(groups: Sequence[Group]) -> list[str]:
    """What each measure is, and which one the verdicts use, in one paragraph."""
    taken = [m for m in MEASURES if any(m in g.measures for g in groups)]
    if taken == [RUNNING]:
        return [
            f"Test accuracy is measured with {MEASURES[RUNNING]} (these runs did not recompute BatchNorm "
            "statistics: `evaluation.precise_bn_batches=0`)."
        ]
    return [
        "Every evaluation measured the same weights two ways: "
        + "; ".join(f"**{m}**, {MEASURES[m]}" for m in MEASURES)
        + ". The verdicts use precise BN where every group has it: the running averages lag the weights, so they "
        "also measure how far the last steps of an epoch moved the network (`experiments/seed_gap`); the running "
        "averages are what the seed's table reports, and are compared too."
    ]


def render(jobs: Sequence[Job], sources: Sequence[Any], title: str | None = None) -> tuple[str, list[Group]]:
    everything, jobs = jobs, started(jobs)
    keys = swept_keys(jobs)
    groups = group_jobs(jobs, keys)
    shared = common_measures(groups)
    comparisons = {m: [compare(a, b, m) for a, b in itertools.combinations(groups, 2)] for m in shared}
    for found in comparisons.values():
        holm(found)
    lines = [f"# {title or 'Sweep report'}", ""]
    lines += ["Read from: " + ", ".join(f"`{d}`" for d in sources), ""]
    lines += ["## What was swept", ""]
    seeds = sorted({j.seed for j in jobs}, key=str)
    lines += [f"- `{k}`: " + ", ".join(str(v) for v in dict.fromkeys(j.config.get(k) for j in jobs)) for k in keys]
    if len(seeds) > 1:
        lines.append(f"- `seed`: {', '.join(map(str, seeds))}")
    listed = [
        (d, k, info["jobs"])
        for d in sources
        if isinstance(d, Path) and (info := read_sweep(d)) and info.get("jobs")
        for k in info.get("swept") or []
        if k not in keys and k != "seed"
    ]
    lines += [
        f"- `{k}`: swept by `{d}` (its sweep.yaml lists {n} jobs), but only one value has a started job yet"
        for d, k, n in listed
    ]
    if not keys and len(seeds) <= 1 and not listed:
        lines.append(f"- nothing: {plural(len(jobs), 'run')} of the same config, seed {seeds[0] if seeds else 'unset'}")
    lines.append("")
    lines += ["## Recipe held fixed", "", "| key | value |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in fixed_recipe(jobs).items()]
    lines += [
        "",
        "## Results per group",
        "",
        "Test accuracy in %, as mean ± std [95% CI of the mean] over the completed runs of each group.",
        "",
        *measures_note(groups),
        "",
        *selection_note(jobs),
        "",
        f"| group | n | measure | final test acc | {best_column(jobs)} | {best_epoch_column(jobs)} |",
        "|---|---|---|---|---|---|",
    ]
    for g in groups:
        done = g.done
        if not done:
            lines.append(f"| {g.label} | 0 | | n/a | n/a | n/a |")
        for m in g.measures:
            finals, bests = Estimate.of(j.final_of(m) for j in done), Estimate.of(j.best_of(m) for j in done)
            epochs = [j.best_epoch_of(m) for j in done]
            lines.append(
                f"| {g.label} | {len(done)} | {m} | {finals.text(100, 2)} | {bests.text(100, 2)} | "
                f"{np.mean(epochs):.1f} (per run: {', '.join(map(str, epochs))}) |"
            )
    lines += [
        "",
        "| group | n | epoch-1 train loss | mean epoch time (s) | of it, precise BN (s) | ran with |",
        "|---|---|---|---|---|---|",
    ]
    for g in groups:
        done = g.done
        first_loss = Estimate.of(j.curve("train/loss")[0] for j in done if j.curve("train/loss"))
        times = [t for j in done for t in j.curve("time/epoch_s")]
        precise = [t for j in done for t in j.curve("time/precise_bn_s")]
        lines.append(
            f"| {g.label} | {len(done)} | {first_loss.text(1, 4)} | {np.mean(times):.1f} | "
            f"{f'{np.mean(precise):.1f}' if precise else 'n/a'} | "
            f"{'; '.join(dict.fromkeys(j.ran_with for j in done if j.ran_with))} |"
            if done
            else f"| {g.label} | 0 | n/a | n/a | n/a | |"
        )
    lines += [
        "",
        '"ran with": the precision and the data pipeline each run used (`trainer.precision=auto` and '
        "`data.pipeline=auto` become what the machine supports; see `status.json`). The epoch time includes "
        "the test-set evaluation and precise BN's recomputation.",
    ]
    lines += stability(groups)
    for m, found in comparisons.items():
        if not found:
            continue
        verdict = " (the verdicts)" if m == shared[0] else ""
        lines += [
            "",
            f"## Pairwise comparisons of final test accuracy, {m}{verdict}",
            "",
            "Difference of means (first minus second) in points, with its 95% CI; paired by seed where both "
            "groups ran the same seeds, else Welch's t-test. p-values are two-sided, raw and Holm-adjusted "
            f"for the {len(found)} comparison{'s' if len(found) > 1 else ''} of this measure.",
            "",
            "| first | second | test | difference | 95% CI | p | p (Holm) | reading |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for c in found:
            ci = "n/a" if math.isnan(c.low) else f"{c.low * 100:+.2f} to {c.high * 100:+.2f}"
            p = "n/a" if math.isnan(c.p) else f"{c.p:.3g}"
            ph = "n/a" if math.isnan(c.p_holm) else f"{c.p_holm:.3g}"
            lines.append(
                f"| {c.a.label} | {c.b.label} | {'paired' if c.paired else 'Welch'} | "
                f"{c.diff * 100:+.2f} | {ci} | {p} | {ph} | {c.sentence()} |"
            )
    unfinished = [j for j in everything if j.status != "completed"]
    lines += ["", "## Jobs that did not complete", ""]
    if unfinished:
        lines += ["| job | status | last epoch | error |", "|---|---|---|---|"]
        lines += [
            f"| {j.name} | {j.status} | {j.last_epoch} | {j.error.splitlines()[0] if j.error else ''} |"
            for j in unfinished
        ]
    else:
        lines.append("None: every job completed.")
    signal = " Signal propagation per residual unit, at initialisation and at the end, in `signal.png`."
    has_signal = any(j.signal for j in jobs)
    lines += [
        "",
        f"{plural(len(everything), 'job')}; per-job numbers in `summary.csv`, curves in `curves.png`."
        + (signal if has_signal else ""),
        "",
    ]
    return "\n".join(lines), groups


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def glance(sweep_dir: Path) -> str:
    """A sweep's results at a glance, for its console at the end: per group, the completed runs and
    their final test accuracy by each measure they took, then the command for the full report."""
    try:
        jobs = read_sweeps([sweep_dir])
    except ReportError:
        return ""
    waiting = len(jobs) - len(started(jobs))
    jobs = started(jobs)
    groups = group_jobs(jobs, swept_keys(jobs))
    width = max(len(g.label) for g in groups)
    lines = ["Final test accuracy (%), mean ± std over the completed runs:"]
    for g in groups:
        values = []
        for m in g.measures or (RUNNING,):
            e = Estimate.of(j.final_of(m) for j in g.done)
            value = "n/a" if e.n == 0 else f"{e.mean * 100:.2f}" + ("" if e.n == 1 else f" ± {e.std * 100:.2f}")
            values.append(f"{m} {value}")
        lines.append(f"  {g.label:<{width}}  {len(g.done)} of {len(g.jobs)} completed  {'; '.join(values)}")
    if waiting:
        lines.append(f"  and {plural(waiting, 'job')} not started yet")
    command = f"{shlex.quote(python_command())} -m resnet_exp.report {shlex.quote(str(sweep_dir))}"
    lines.append(f"Full report (statistics, curves, every job): {command}")
    return "\n".join(lines)


def report(jobs: Sequence[Job], sources: Sequence[Any], out: Path, title: str | None = None) -> Path:
    text, groups = render(jobs, sources, title)
    out.mkdir(parents=True, exist_ok=True)
    write_summary(jobs, swept_keys(started(jobs)), out / "summary.csv")
    plot(groups, out / "curves.png")
    plot_signal(groups, out / "signal.png")
    (out / "report.md").write_text(text)
    return out / "report.md"


def default_out(args: argparse.Namespace) -> Path:
    """Where a report goes without --out: into the (first) sweep it reads, also when it reads the
    sweep's W&B offline files; for runs read from W&B online, outputs/reports/GROUP."""
    if args.sweeps:
        return args.sweeps[0]
    if args.wandb_offline:
        return args.wandb_offline[0] / "wandb_report"
    return Path("outputs") / "reports" / str(args.group)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resnet_exp.report", description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="*", type=Path, help="sweep directories (outputs/sweeps/...)")
    parser.add_argument("--wandb", metavar="ENTITY/PROJECT", help="read the runs from W&B instead (online)")
    parser.add_argument("--group", help="with --wandb: the sweep's W&B group (in its sweep.yaml)")
    parser.add_argument(
        "--wandb-offline",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="read the W&B offline run files under DIR instead of the job directories",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write (default: the first sweep directory; DIR/wandb_report for --wandb-offline; "
        "outputs/reports/GROUP for --wandb)",
    )
    parser.add_argument("--title", default=None, help="the report's heading")
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUE[,VALUE...]",
        help="only the jobs whose config has one of these values (repeatable), e.g. block.order=post,pre",
    )
    args = parser.parse_args(argv)
    if sum(map(bool, (args.sweeps, args.wandb, args.wandb_offline))) != 1:
        parser.error("give sweep directories, or --wandb ENTITY/PROJECT --group GROUP, or --wandb-offline DIR")
    if args.wandb and not args.group:
        parser.error("--wandb needs --group GROUP (the W&B group in the sweep's sweep.yaml)")
    try:
        if args.wandb:
            jobs, sources = read_wandb(args.wandb, args.group), [f"W&B {args.wandb}, group {args.group}"]
        elif args.wandb_offline:
            jobs, sources = read_wandb_offline(args.wandb_offline), args.wandb_offline
        else:
            jobs, sources = read_sweeps(args.sweeps), args.sweeps
        jobs = select(jobs, args.where) if args.where else jobs
        path = report(jobs, sources, args.out or default_out(args), args.title)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}, {path.parent / 'curves.png'}, {path.parent / 'summary.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
