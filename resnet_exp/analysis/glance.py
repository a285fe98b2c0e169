"""A sweep's results at a glance, from its job folders: what the sweep callback prints at the end
of a sweep (each group's final test accuracy on both measures, and how many jobs completed)."""

from __future__ import annotations

import shlex
from pathlib import Path

from resnet_exp.analysis.groups import (
    group_jobs,
    swept_keys,
)
from resnet_exp.analysis.jobs import NOT_STARTED, RUNNING, STARTING, ReportError, read_sweeps, started
from resnet_exp.analysis.render import left_out, plural
from resnet_exp.analysis.stats import Estimate
from resnet_exp.runs.console import python_command


def glance(sweep_dir: Path) -> str:
    """A sweep's results at a glance, for its console at the end: per group, the completed runs and
    their final test accuracy by each measure they took, then the command for the full report."""
    try:
        jobs = read_sweeps([sweep_dir])
    except ReportError:
        return ""
    waiting = sum(j.status in (NOT_STARTED, STARTING) for j in jobs)
    bad = left_out(jobs)
    jobs = started(jobs)
    if not jobs:
        return ""
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
    if bad:
        lines.append(f"  and {plural(len(bad), 'job')} whose records cannot be read or trusted, left out")
    command = f"{shlex.quote(python_command())} -m resnet_exp.report {shlex.quote(str(sweep_dir))}"
    lines.append(f"Full report (statistics, curves, every job): {command}")
    return "\n".join(lines)
