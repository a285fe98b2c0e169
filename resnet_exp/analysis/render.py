"""A report's text and files: report.md (what was swept, per group and per measure, every pair
compared, every job that did not complete), summary.csv (one row a job), the curves and the signal
plots. A sweep's results at a glance, for its console at the end, are ``glance.py``'s."""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from resnet_exp.analysis.groups import (
    Group,
    best_column,
    best_epoch_column,
    bundles_left_out,
    common_measures,
    fixed_recipe,
    group_jobs,
    swept_keys,
    validated,
)
from resnet_exp.analysis.jobs import (
    MEASURES,
    PRECISE,
    RUNNING,
    UNREADABLE,
    Job,
    ReportError,
    largest_drop,
    late_range,
    started,
)
from resnet_exp.analysis.plots import plot, plot_signal
from resnet_exp.analysis.stats import Estimate, compare, holm
from resnet_exp.runs.records import read_sequential, read_sweep

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


def left_out(jobs: Sequence[Job]) -> list[Job]:
    """The jobs whose records cannot be read or trusted: named, and left out of every statistic."""
    return [j for j in jobs if j.status == UNREADABLE]


MEASURE_NAMES = {
    "auto": "each job's headline measure: precise BN where it is on",
    "precise": PRECISE,
    "running": RUNNING,
}


def design(sources: Sequence[Any]) -> list[str]:
    """How each sweep chose its number of seeds, from its own records: a sequential sweep's design,
    rounds and why it stopped (``sequential.yaml``); a fixed-n sweep's command, and each later
    command that changed its jobs after some had run (an extension after a look, which a
    fixed-n interval does not allow for)."""
    lines = []
    for d in sources:
        if not isinstance(d, Path):
            continue
        state = read_sequential(d)
        if state:
            last = state["rounds"][-1] if state.get("rounds") else {"seeds": 0, "decisions": {}}
            measure = MEASURE_NAMES.get(state["measure"], state["measure"])
            stopped = state.get("stopped") or "not yet (running, or stopped before it could say)"
            lines += [
                f"- `{d}`: **sequential** design: rounds of one seed for each of {', '.join(state['settings'])}; "
                f"after each, {state['boundary']}, at alpha={state['alpha']} for the family of comparisons "
                f"(alpha={state.get('alpha_each', state['alpha']):.3g} each, Bonferroni; valid at every look), for every "
                f"paired difference of final test accuracy (by {measure}); a comparison is resolved when its "
                f"sequence excludes 0 or lies inside ±{state['margin_points']} points; at most "
                f"{state['max_seeds']} seeds. Stopped: {stopped}.",
                *(f"  - after {last['seeds']} seeds: {describe_decision(k, v, state['margin_points'])}"
                  for k, v in last["decisions"].items()),
                "  - the per-group intervals and pairwise tests below are fixed-n ones, computed on a sweep "
                "that stopped when its sequences said so: read the confidence sequences above for its answer",
            ]  # fmt: skip
            continue
        info = read_sweep(d) or {}
        history = info.get("history") or []
        grown = [h for a, h in zip(history, history[1:]) if (h.get("jobs") or 0) > (a.get("jobs") or 0)]
        if grown:
            lines.append(
                f"- `{d}`: **fixed-n, extended after a look**: first {plural(history[0].get('jobs') or 0, 'job')} "
                f"(`{history[0].get('command')}`), then "
                + ", then ".join(f"{h.get('jobs')} (`{h.get('command')}`)" for h in grown)
                + "; its intervals are fixed-n ones, which such an extension does not allow for"
            )
    return ["## Design", "", *lines, ""] if lines else []


def describe_decision(name: str, d: dict, margin: float) -> str:
    from resnet_exp.analysis.sequential import Decision, describe

    low, high = (float(d[k]) for k in ("low", "high"))
    return describe(name, Decision(d["n"], d["mean"], low, high, d["state"]), margin)


def render(jobs: Sequence[Job], sources: Sequence[Any], title: str | None = None) -> tuple[str, list[Group]]:
    everything, jobs = jobs, started(jobs)
    bad = left_out(everything)
    if not jobs:
        named = "; ".join(f"{j.name}: {j.error}" for j in bad) or "no job has started"
        raise ReportError(f"no job's records can be read ({named}); nothing to report")
    keys = swept_keys(jobs)
    groups = group_jobs(jobs, keys)
    shared = common_measures(groups)
    comparisons = {m: [compare(a, b, m) for a, b in itertools.combinations(groups, 2)] for m in shared}
    for found in comparisons.values():
        holm(found)
    lines = [f"# {title or 'Sweep report'}", ""]
    lines += ["Read from: " + ", ".join(f"`{d}`" for d in sources), ""]
    if bad:
        lines += [
            f"**Left out of every statistic: {plural(len(bad), 'job')} whose records cannot be read or trusted:**",
            "",
            *(f"- `{j.name}`: {j.error}" for j in bad),
            "",
        ]
    lines += design(sources)
    lines += ["## What was swept", ""]
    seeds = sorted({j.seed for j in jobs}, key=str)
    lines += [f"- `{k}`: " + ", ".join(str(v) for v in dict.fromkeys(j.config.get(k) for j in jobs)) for k in keys]
    if len(seeds) > 1:
        lines.append(f"- `seed`: {', '.join(map(str, seeds))}")
    named = ", ".join(f"`{k}`" for k in keys) + (" determine" if len(keys) > 1 else " determines")
    lines += [
        f"- `{k}`: {', '.join(str(v) for v in dict.fromkeys(j.config.get(k) for j in jobs))}"
        f" (a preset of other keys; here {named} it, so it splits no group)"
        for k in bundles_left_out(jobs, keys)
    ]
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
    still_swept = {k for _, k, _ in listed}  # one value so far, but swept: not held fixed
    lines += [f"| `{k}` | {v} |" for k, v in fixed_recipe(jobs).items() if k not in still_swept]
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


def report(jobs: Sequence[Job], sources: Sequence[Any], out: Path, title: str | None = None) -> list[Path]:
    """Write the report into ``out``; returns the files written, report.md first. Where no job
    measured signal propagation, a signal.png left by an earlier report there is removed: it
    would speak of other jobs."""
    text, groups = render(jobs, sources, title)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.md", out / "curves.png", out / "summary.csv"]
    write_summary(jobs, swept_keys(started(jobs)), out / "summary.csv")
    plot(groups, out / "curves.png")
    if any(plot_signal(groups, out / "signal.png").values()):
        written.append(out / "signal.png")
    else:
        (out / "signal.png").unlink(missing_ok=True)
    (out / "report.md").write_text(text)
    return written
