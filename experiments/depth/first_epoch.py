"""The first epoch's training loss, step by step: where He et al. (2016, Fig. 6) saw pre-activation
ease optimisation first.

    python experiments/depth/first_epoch.py FIRST_EPOCH_JOBS [--full JOBS] [--out DIR]

Reads the first-epoch sweep's jobs (run.sh: post, pre and bn_after_add at 20 and 56 layers, seeds
1-3, the seed recipe's first epoch with ``+callbacks=training_curve``, whose ``train_curve.csv``
holds the mean training loss of every few steps) and writes into ``--out`` (default: this folder):

- ``first_epoch.md``: per depth, each ordering's loss at four points of the epoch (its first
  window of steps, a quarter, half, and its end: mean over seeds) and minus post's, paired by seed,
  with the 95% t-interval of the mean difference (``analysis.stats.PairedDifference``); with
  ``--full`` (the seed-recipe sweep's jobs), whether each job's epoch is the first epoch of the
  full-schedule job of the same network and seed (their epoch-1 ``train/loss``);
- ``first_epoch.png``: the loss against the step, per depth, each ordering's mean over seeds and
  its seeds beside it.

A job that did not complete, or has no curve, is named and left out.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from resnet_exp.analysis.jobs import ReportError, network, read_sweeps  # noqa: E402
from resnet_exp.analysis.stats import PairedDifference  # noqa: E402
from resnet_exp.report import shown  # noqa: E402
from resnet_exp.runs.records import CURVE_FILE  # noqa: E402

ORDERINGS = ("post", "pre", "bn_after_add")
COLOURS = {"post": "tab:blue", "pre": "tab:green", "bn_after_add": "tab:red"}


def curve(job) -> list[tuple[int, float]]:
    """(step, mean training loss of the window ending there) of a job's train_curve.csv."""
    path = Path(job.path) / CURVE_FILE
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [(int(r["step"]), float(r["train/loss"])) for r in csv.DictReader(f) if r.get("epoch") == "1"]


def points(steps: list[int]) -> list[int]:
    """The steps the table reads: the first row's, the rows nearest a quarter and half of the epoch,
    and the epoch's last."""
    last = steps[-1]
    chosen = [steps[0], *(min(steps, key=lambda s: abs(s - last * q)) for q in (0.25, 0.5)), last]
    return sorted(set(chosen))


def interval(d: PairedDifference) -> str:
    if d.n == 0:
        return "no pair"
    if d.n == 1:
        return f"{d.mean:+.3f} (1 pair, no interval)"
    low, high = d.interval(0.95)
    verdict = "higher" if low > 0 else "lower" if high < 0 else "not resolved"
    return f"{d.mean:+.3f} [{low:+.3f}, {high:+.3f}] ({d.n} pairs: {verdict})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("jobs", type=Path, help="the first-epoch sweep's jobs")
    parser.add_argument("--full", type=Path, help="the seed-recipe sweep's jobs, to check the first epochs against")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args(argv)
    try:
        jobs = read_sweeps([args.jobs])
        full = read_sweeps([args.full]) if args.full else []
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    curves: dict[tuple[str, int], dict] = defaultdict(dict)  # (block, layers) -> seed -> [(step, loss)]
    first_loss: dict[tuple[str, int, object], float] = {}
    left_out = []
    for job in jobs:
        rows = curve(job) if job.status == "completed" else []
        if not rows:
            left_out.append(f"`{job.name}` ({job.status if job.status != 'completed' else 'no train_curve.csv'})")
            continue
        key = network(job)
        curves[key][job.seed] = rows
        first_loss[(*key, job.seed)] = job.curve("train/loss")[0]
    if not curves:
        print("error: no completed job with a training curve: " + ", ".join(left_out), file=sys.stderr)
        return 2
    depths = sorted({d for _, d in curves})
    out = [
        "# The first epoch, step by step",
        "",
        f"Made by `first_epoch.py` from `{shown(args.jobs)}`: each job's `train_curve.csv` (the mean training "
        "loss of each window of steps) in the first epoch of the seed's recipe. Each ordering's loss is the mean "
        "over seeds; its difference from post is paired by seed, with the 95% CI of the mean difference "
        "(negative: lower loss than post).",
        "",
    ]
    for layers in depths:
        mine = {b: curves[b, layers] for b in ORDERINGS if (b, layers) in curves}
        if not mine:  # only networks that are not orderings (plain) at this depth
            continue
        steps = sorted(set.intersection(*({s for s, _ in rows} for seeds in mine.values() for rows in seeds.values())))
        at = points(steps)
        out += [f"## {layers} layers", "", "| ordering | seeds | " + " | ".join(f"step {s}" for s in at) + " |",
                "|---|---|" + "---|" * len(at)]  # fmt: skip
        loss = {b: {seed: dict(rows) for seed, rows in seeds.items()} for b, seeds in mine.items()}
        for block, seeds in loss.items():
            means = [sum(v[s] for v in seeds.values()) / len(seeds) for s in at]
            out.append(f"| `{block}` | {len(seeds)} | " + " | ".join(f"{m:.3f}" for m in means) + " |")
        for block in (b for b in loss if b != "post"):
            if "post" not in loss:
                break
            seeds = sorted(set(loss[block]) & set(loss["post"]), key=str)
            cells = [
                interval(PairedDifference(tuple(loss[block][x][s] - loss["post"][x][s] for x in seeds))) for s in at
            ]
            out.append(f"| `{block}` minus `post` | {len(seeds)} | " + " | ".join(cells) + " |")
        out.append("")
    if full:
        same, differ, missing = [], [], []
        by = {(*network(j), j.seed): j for j in full if j.status == "completed" and j.curve("train/loss")}
        for key, value in sorted(first_loss.items(), key=str):
            other = by.get(key)
            if other is None:
                missing.append(f"{key[0]} at {key[1]} layers, seed {key[2]}")
                continue
            gap = abs(other.curve("train/loss")[0] - value)
            (same if gap == 0 else differ).append((key, gap))
        out += ["## The same first epoch as the full-schedule jobs?", ""]
        out.append(
            f"Against `{shown(args.full)}`, epoch 1's `train/loss`: the same to the bit for {len(same)} of "
            f"{len(same) + len(differ)} jobs"
            + (f"; the largest difference elsewhere {max(g for _, g in differ):.2e}" if differ else "")
            + (f"; no full-schedule job yet for {', '.join(missing)}" if missing else "")
            + "."
        )
        out.append("")
    if left_out:
        out += ["Not used: " + ", ".join(left_out) + ".", ""]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "first_epoch.md").write_text("\n".join(out))
    plot(curves, depths, args.out / "first_epoch.png")
    print(f"written: {args.out / 'first_epoch.md'}, first_epoch.png")
    return 0


def plot(curves: dict, depths: list[int], path: Path) -> None:
    fig, axes = plt.subplots(1, len(depths), figsize=(6.5 * len(depths), 4.5), squeeze=False, constrained_layout=True)
    for ax, layers in zip(axes[0], depths):
        for block in ORDERINGS:
            seeds = curves.get((block, layers), {})
            if not seeds:
                continue
            for rows in seeds.values():
                ax.plot([s for s, _ in rows], [v for _, v in rows], color=COLOURS[block], lw=0.5, alpha=0.35)
            steps = sorted(set.intersection(*({s for s, _ in rows} for rows in seeds.values())))
            mean = [sum(dict(rows)[s] for rows in seeds.values()) / len(seeds) for s in steps]
            ax.plot(steps, mean, color=COLOURS[block], lw=1.8, label=f"{block} (mean of {len(seeds)})")
        ax.set(xlabel="optimizer step (batch 256)", ylabel="training loss (window mean)", yscale="log",
               title=f"{layers} layers: the first epoch")  # fmt: skip
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
