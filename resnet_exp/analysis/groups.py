"""Jobs put together for a report: chosen by their config (``select``), the keys a set of jobs
varies (``swept_keys``) and holds fixed, the groups those keys make (``Group``, ``group_jobs``),
the measures every group took, and which column a table's "best" is."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from resnet_exp.analysis.jobs import MEASURES, Job, ReportError
from resnet_exp.config import TrainerConfig
from resnet_exp.runs.records import NOT_RECIPE


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


def differing_keys(jobs: Sequence[Job]) -> list[str]:
    """Config keys whose values differ between jobs, the seed and what is not recipe aside, in
    config order."""
    keys = dict.fromkeys(k for job in jobs for k in job.config)
    return [
        k
        for k in keys
        if k != "seed" and not k.startswith(NOT_RECIPE) and len({repr(job.config.get(k)) for job in jobs}) > 1
    ]


def swept_keys(jobs: Sequence[Job]) -> list[str]:
    """Config keys whose values differ between jobs (the seed aside), in config order; where a
    group's preset differs (``model``), its keys that follow from the preset alone are left out,
    and so is a global preset (``experiment``) that the other differing keys determine."""
    keys = dict.fromkeys(k for job in jobs for k in job.config)
    differing = differing_keys(jobs)

    def follows_from_preset(key: str) -> bool:
        group = key.split(".", 1)[0]
        if "." not in key or group not in differing:
            return False
        pairs = {(repr(j.config.get(group)), repr(j.config.get(key))) for j in jobs}
        return len(pairs) == len({p[0] for p in pairs})

    kept = [k for k in differing if not follows_from_preset(k)]

    def names_a_bundle(key: str) -> bool:
        # a global preset (``experiment=identity_mappings``) sets keys of other groups, and those
        # keys show what it changed; where the other swept keys determine its value, it splits no
        # group (the post jobs of one sweep beside the three orderings of another, same recipe)
        if "." in key or any(k.startswith(f"{key}.") for k in keys):
            return False
        rest = [k for k in kept if k != key]
        pairs = {(tuple(repr(j.config.get(k)) for k in rest), repr(j.config.get(key))) for j in jobs}
        return bool(rest) and len(pairs) == len({p[0] for p in pairs})

    return [k for k in kept if not names_a_bundle(k)]


def bundles_left_out(jobs: Sequence[Job], keys: Sequence[str]) -> list[str]:
    """The global presets that differ between jobs but that ``swept_keys`` left out (``keys``):
    named in the report so that no difference between the jobs goes unsaid."""
    return [k for k in differing_keys(jobs) if "." not in k and k not in keys]


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


def validated(jobs: Sequence[Job]) -> bool:
    """Whether every job with results held out a validation split (so "best" is chosen on it)."""
    with_results = [j for j in jobs if j.curve("test/acc")]
    return bool(with_results) and all(j.validated for j in with_results)


def best_column(jobs: Sequence[Job]) -> str:
    return "test acc at the best validation epoch" if validated(jobs) else "best test acc (epoch chosen on test)"


def best_epoch_column(jobs: Sequence[Job]) -> str:
    return "best validation epoch, mean" if validated(jobs) else "epoch of best test acc, mean"
