"""The depth experiment's tables and verdicts, from its jobs' records: the positive control (does a
deeper plain network train worse, and a deeper residual one not?) and the orderings' gaps at each
depth beside He et al.'s.

    python experiments/depth/depth_table.py JOBS_DIR... > depth_table.md

Reads every job (config.yaml, metrics.csv, status.json) under the folders given; uses the completed
ones, and names the others. A network is its ``block`` (``plain``: the post unit without its
shortcut) at 6n+2 layers. Differences are paired by seed (the same seed gives both networks the same
data order), with the 95% t-interval of the mean difference (scipy); a comparison with fewer than
two pairs has no interval and says so. Test error is 100 minus the final test accuracy, on both
measures (precise BN: the verdicts'; the running averages: the seed's protocol); the training loss
is the mean over the last epoch's batches (``train/loss`` of epoch 10).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import stats

from resnet_exp.analysis.jobs import PRECISE, RUNNING, ReportError, network, read_sweeps
from resnet_exp.analysis.references import HE_2015_BY_DEPTH, HE_ET_AL
from resnet_exp.analysis.stats import PairedDifference
from resnet_exp.report import shown

BLOCKS = ("plain", "post", "pre", "bn_after_add", "relu_before_add", "relu_only_pre")


def measures(job) -> dict[str, float]:
    """What a completed job is judged on: its final training loss, epoch-1 training loss and test error."""
    loss = job.curve("train/loss")
    return {
        "train_loss": loss[-1],
        "first_loss": loss[0],
        "error_precise": 100 * (1 - job.final_of(PRECISE)),
        "error_running": 100 * (1 - job.final_of(RUNNING)),
    }


def paired(a: dict, b: dict) -> tuple[int, float, float, float]:
    """(pairs, mean of a - b, 95% CI low, high) over the seeds both have; nan bounds below 2 pairs."""
    seeds = sorted(set(a) & set(b), key=str)
    d = PairedDifference(tuple(a[s] - b[s] for s in seeds))
    return (d.n, d.mean, *d.interval(0.95))


def recipe(jobs) -> str:
    """The recipe the completed jobs ran, read from their configs: the optimiser and its settings,
    the batch, the epochs, the precision and the shortcut where the shape changes; a setting that
    differs between jobs is named as differing."""
    done = [j for j in jobs if j.status == "completed"]

    def one(key: str, fmt=str, among=done) -> str:
        seen = sorted({fmt(j.config.get(key)) for j in among})
        return seen[0] if len(seen) == 1 else "differs between jobs (" + ", ".join(seen) + ")"

    optimiser = one("optim._target_", lambda t: str(t).rsplit(".", 1)[-1])
    residual = [j for j in done if j.config.get("block.shortcut") != "none"]
    return (
        f"{optimiser} lr {one('optim.lr')}, momentum {one('optim.momentum')}, weight decay "
        f"{one('optim.weight_decay')}, batch {one('data.batch_size')}, {one('trainer.max_epochs')} epochs, "
        f"precision {one('trainer.precision')}; the residual networks' shortcut where the shape changes: "
        f"{one('block.shortcut', among=residual) if residual else 'none run'}"
    )


def interval(n: int, mean: float, low: float, high: float, digits: int = 2) -> str:
    if n == 0:
        return "no pair"
    if math.isnan(low):
        return f"{mean:+.{digits}f} (1 pair, no interval)"
    return f"{mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}] ({n} pairs)"


def sign(n: int, low: float, high: float) -> str:
    """What an interval says of a difference: above 0, below 0, or not resolved."""
    if n < 2 or math.isnan(low):
        return "not resolved (fewer than 2 pairs)"
    if low > 0:
        return "higher"
    if high < 0:
        return "lower"
    return "not resolved (the interval includes 0)"


def degradation(plain: tuple, post: tuple, shallow: int, deep: int) -> str:
    """The positive control's verdict from ``paired``'s deep-minus-shallow final training loss of
    the plain and the residual (post) network: reproduced where the plain network trains worse at
    depth and the residual one does not (its change lower, or including 0 and wholly below the
    plain's); not reproduced where both train worse; otherwise not shown. Nothing is decided below 2
    pairs of either."""
    p, r = sign(plain[0], *plain[2:]), sign(post[0], *post[2:])
    said = f"plain {deep} minus {shallow} is {p}, residual {r}"
    if min(plain[0], post[0]) < 2:
        return f"not decided yet: {said}."
    worse = f"the plain network trains worse at {deep} layers than at {shallow}"
    if p == "higher" and r == "lower":
        return f"the degradation problem is reproduced: {worse}, the residual one better."
    if p == "higher" and r.startswith("not resolved") and post[3] < plain[2]:  # includes 0, below the plain's
        return (
            f"the degradation problem is reproduced: {worse}; the residual one does not train worse by as much "
            f"(its change {interval(*post, 3)} includes 0 and lies below the plain's {interval(*plain, 3)})."
        )
    if p == "higher" and r == "higher":
        return f"the degradation problem is not reproduced: both train worse at {deep} layers ({said})."
    return f"the degradation problem is not shown by these records: {said}."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jobs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    try:
        jobs = read_sweeps(args.jobs)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    by: dict[tuple[str, int], dict[str, dict]] = defaultdict(dict)  # (block, layers) -> seed -> measures
    left_out = []
    for job in jobs:
        if job.status != "completed":
            left_out.append(f"`{job.name}` ({job.status}{': ' + job.error if job.error else ''})")
            continue
        key = network(job)
        if job.seed in by[key]:
            print(f"error: {job.name}: seed {job.seed} of {key[0]} at {key[1]} layers twice", file=sys.stderr)
            return 2
        by[key][job.seed] = measures(job)
    depths = sorted({d for _, d in by})
    blocks = [b for b in BLOCKS if any(k[0] == b for k in by)]

    def values(block: str, layers: int, what: str) -> dict:
        return {s: m[what] for s, m in by.get((block, layers), {}).items()}

    def cell(block: str, layers: int, what: str, digits: int = 2) -> str:
        v = list(values(block, layers, what).values())
        if not v:
            return "not run"
        if len(v) == 1:
            return f"{v[0]:.{digits}f} (n=1)"
        ci = stats.t.interval(0.95, len(v) - 1, loc=np.mean(v), scale=stats.sem(v))
        mean, std = f"{np.mean(v):.{digits}f}", f"{np.std(v, ddof=1):.{digits}f}"
        return f"{mean} ± {std} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}] (n={len(v)})"

    out = [
        "# Ordering against depth, beside a positive control",
        "",
        f"Made by `depth_table.py` from {', '.join(f'`{shown(p)}`' for p in args.jobs)}: He et al.'s CIFAR network "
        "(3x3 stem, 16-32-64 channels, 6n+2 layers) on Fashion-MNIST at 28 px. The jobs' recipe: "
        f"{recipe(jobs)}. Mean ± std [95% CI of the mean] over seeds; differences paired by seed, with "
        "their 95% CI.",
        "",
        "He et al.'s numbers are CIFAR-10's, on their schedule (momentum 0.9, weight decay 1e-4, 64k iterations, "
        "random crops and flips), and 2015's CIFAR networks have zero-padding shortcuts where the shape "
        "changes: a scale to read ours against, not a pair.",
        "",
        "## Each network",
        "",
        "| network | layers | epoch-1 training loss | final training loss | test error %, precise BN | "
        "test error %, running averages | He et al., test error % (CIFAR-10) |",
        "|---|---|---|---|---|---|---|",
    ]
    for layers in depths:
        for block in blocks:
            if (block, layers) not in by:
                continue
            he = "-"
            if block == "post" and layers in HE_2015_BY_DEPTH:
                he = f"{HE_2015_BY_DEPTH[layers]:.2f} (2015, Table 6)"
            if layers == 110 and block in HE_ET_AL:
                he = f"{HE_ET_AL[block][1]:.2f} (2016, Table 2)"
            out.append(
                f"| `{block}` | {layers} | {cell(block, layers, 'first_loss', 3)} "
                f"| {cell(block, layers, 'train_loss', 3)} "
                f"| {cell(block, layers, 'error_precise')} | {cell(block, layers, 'error_running')} | {he} |"
            )
    out += ["", "## The positive control: does depth hurt the plain network, and not the residual one?", ""]
    if len(depths) < 2 or not all((b, d) in by for b in ("plain", "post") for d in (depths[0], depths[-1])):
        out.append("No verdict yet: it needs completed plain and post jobs at two depths.")
    if len(depths) >= 2:
        shallow, deep = depths[0], depths[-1]
        for block in ("plain", "post"):
            if (block, shallow) not in by or (block, deep) not in by:
                continue
            for what, label in (("train_loss", "final training loss"), ("error_precise", "test error, precise BN"),
                                ("error_running", "test error, running averages")):  # fmt: skip
                n, mean, low, high = paired(values(block, deep, what), values(block, shallow, what))
                out.append(
                    f"- `{block}`, {label}: {deep} minus {shallow} layers {interval(n, mean, low, high, 3)}: "
                    f"at {deep} layers {sign(n, low, high)}."
                )
        plain = paired(values("plain", deep, "train_loss"), values("plain", shallow, "train_loss"))
        post = paired(values("post", deep, "train_loss"), values("post", shallow, "train_loss"))
        if plain[0] and post[0]:
            n = min(plain[0], post[0])
            out += ["", f"**Verdict (final training loss, {n} pair{'' if n == 1 else 's'}):** "
                    + degradation(plain, post, shallow, deep)]  # fmt: skip
    out += ["", "## The orderings at each depth (minus post, paired by seed)", ""]
    out += ["| ordering | layers | test error, precise BN | test error, running averages | final training loss "
            "| epoch-1 training loss | He et al. at 110 layers |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for layers in depths:
        for block in blocks:
            if block in ("post", "plain") or (block, layers) not in by:
                continue
            cells = [interval(*paired(values(block, layers, w), values("post", layers, w)), 2 if "error" in w else 3)
                     for w in ("error_precise", "error_running", "train_loss", "first_loss")]  # fmt: skip
            he = f"{HE_ET_AL[block][1] - HE_ET_AL['post'][1]:+.2f}" if block in HE_ET_AL else "-"
            out.append(f"| `{block}` | {layers} | {' | '.join(cells)} | {he} |")
    waiting = [j.name for j in jobs if j.status == "not started"]
    left_out = [x for x in left_out if "(not started)" not in x]
    if waiting:
        out += ["", f"Not started yet: {len(waiting)} jobs ({waiting[0]} to {waiting[-1]})."]
    if left_out:
        out += ["", "Not used (not completed): " + ", ".join(left_out) + "."]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
