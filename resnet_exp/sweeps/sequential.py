"""A sequential sweep (``hydra/sweeper=sequential``): rounds of one seed for every setting it
compares, each round launched as one batch by whichever launcher the sweep has (the default, the
parallel one, SLURM: an array), and after each round an anytime-valid confidence sequence for every
paired difference (``analysis/sequential.py``); it stops when each comparison is resolved (the
sequence excludes 0, or lies inside +-margin) or at ``max_seeds``.

Its state is its records: job N is setting N mod S at seed N // S + 1 (S settings), and every
decision is recomputed from the jobs' records after each round, so the same command resumes it
where it stopped (a later session, another machine, after a kill: finished jobs are skipped,
interrupted ones resume). ``sequential.yaml`` in the sweep's folder says the design and each
round's decisions, for the report and the reader.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from resnet_exp.analysis.sequential import Decision, comparisons, decide, describe
from resnet_exp.runs.records import SEQUENTIAL_FILE, atomic_write

log = logging.getLogger(__name__)

BOUNDARY = "the scale-invariant Gaussian-mixture confidence sequence (Wang and Ramdas 2023), tau2={tau2}"


def label(setting: list[str], swept: list[str]) -> str:
    """A setting named by the values it sweeps (``block.order=pre``)."""
    return " ".join(o for o in setting if o.split("=", 1)[0] in swept) or " ".join(setting)


def job_number(round_: int, index: int, count: int) -> int:
    return round_ * count + index


def finals(sweep_dir: Path, settings: list[list[str]], rounds: int, measure: str) -> tuple[list[dict], list[str]]:
    """Per setting, seed -> final test accuracy in points by ``measure`` (``auto``: each job's
    headline), for the jobs of the first ``rounds`` rounds that completed; and the jobs of those
    rounds that ended otherwise than completed or diverged (the sweep cannot go on past them)."""
    from resnet_exp.analysis.jobs import PRECISE, RUNNING, read_job

    chosen = {"auto": None, "precise": PRECISE, "running": RUNNING}[measure]
    found: list[dict] = [{} for _ in settings]
    unfinished = []
    for r, (i, _) in itertools.product(range(rounds), enumerate(settings)):
        path = sweep_dir / str(job_number(r, i, len(settings)))
        job = read_job(path, path.name) if (path / "config.yaml").is_file() else None
        if job is None or job.status not in ("completed", "diverged"):
            unfinished.append(f"{path}: {job.status if job else 'not started'}")
            continue
        if job.status == "completed" and job.acc(chosen):
            found[i][r + 1] = 100 * job.final_of(chosen)
    return found, unfinished


def decisions(found: list[dict], names: list[str], alpha: float, margin: float, tau2: float) -> dict[str, Decision]:
    """Every pair of settings, later minus earlier, on the seeds both completed, each at
    alpha / (number of pairs) (Bonferroni): all the sequences cover together with probability at
    least 1 - alpha, so the sweep's stop is valid for the whole family."""
    alpha = alpha / comparisons(len(found))
    made = {}
    for a, b in itertools.combinations(range(len(found)), 2):
        seeds = sorted(set(found[a]) & set(found[b]))
        diffs = [found[b][s] - found[a][s] for s in seeds]
        made[f"{names[b]} - {names[a]}"] = decide(diffs, alpha, margin, tau2)
    return made


def run(sweeper: Any, arguments: list[str]) -> list[Any]:
    """The sweep: round after round until every comparison is resolved, ``max_seeds`` is reached,
    or a round leaves a job unfinished (failed or interrupted: the summary names it, and the same
    command resumes the sweep)."""
    from resnet_exp.sweeps.checks import job_list, split_overrides, swept_keys

    config = sweeper.config
    overrides = [f"{k}={v}" for k, v in (sweeper.params or {}).items()] + list(arguments)
    settings = job_list(overrides)  # the settings compared, as the basic sweeper orders them; seeds are ours
    swept = swept_keys(settings)
    names = [label(s, swept) for s in settings]
    _, swept_lines = split_overrides(overrides)
    sweep_dir = Path(config.hydra.sweep.dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(config, sweep_dir / "multirun.yaml")
    state: dict[str, Any] = {
        "design": "sequential",
        "boundary": BOUNDARY.format(tau2=sweeper.tau2),
        "alpha": sweeper.alpha,
        "alpha_each": sweeper.alpha / comparisons(len(settings)),  # Bonferroni over the pairs
        "margin_points": sweeper.margin,
        "max_seeds": sweeper.max_seeds,
        "measure": sweeper.measure,
        "settings": names,
        "swept": swept_lines,
        "rounds": [],
        "stopped": None,
    }
    returns = []
    for r in range(sweeper.max_seeds):
        batch = [[*s, f"seed={r + 1}"] for s in settings]
        log.info("round %d of at most %d: seed %d of %s", r + 1, sweeper.max_seeds, r + 1, ", ".join(names))
        returns.append(sweeper.launcher.launch(batch, initial_job_idx=job_number(r, 0, len(settings))))
        found, unfinished = finals(sweep_dir, settings, r + 1, sweeper.measure)
        made = decisions(found, names, sweeper.alpha, sweeper.margin, sweeper.tau2)
        state["rounds"].append(
            {
                "seeds": r + 1,
                "decisions": {k: {**asdict(d), "low": _num(d.low), "high": _num(d.high)} for k, d in made.items()},
            }
        )
        for name, d in made.items():
            log.info("after seed %d: %s", r + 1, describe(name, d, sweeper.margin))
        if unfinished:
            state["stopped"] = (
                f"round {r + 1} left jobs unfinished ({'; '.join(unfinished)}): resume with the same command"
            )
        elif all(d.resolved for d in made.values()):
            state["stopped"] = f"every comparison resolved after {r + 1} seeds"
        elif r + 1 == sweeper.max_seeds:
            state["stopped"] = f"max_seeds={sweeper.max_seeds} reached with a comparison still open"
        atomic_write(sweep_dir / SEQUENTIAL_FILE, OmegaConf.to_yaml(OmegaConf.create(state)))
        if state["stopped"]:
            print(f"Sequential sweep: {state['stopped']}", flush=True)
            break
    return returns


def _num(x: float) -> float | str:
    return x if math.isfinite(x) else ("-inf" if x < 0 else "inf")
