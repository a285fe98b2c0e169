"""Signal propagation across depth: what He et al. 2016 say about the identity path, measured.

    python experiments/depth/signal_depth.py SWEEP_DIR... [--out DIR]

Reads the jobs of the signal sweeps (run.sh: every ordering and the plain network at 20 to 998
layers, one seed; each job's signal.csv holds, per residual unit, the standard deviation of its
output and the norm of the loss's gradient at its input, on a fixed probe batch, at initialisation
(epoch 0) and after the job's one epoch of a few hundred steps (epoch 1)), and writes:

- ``signal_depth.csv``: one row per network and epoch, its two ratios (below) and the units' spread;
- ``signal_depth.md``: the same as tables, one per measure, networks by depth;
- ``signal_depth.png``: the ratios against depth, at initialisation and after the steps, and the
  per-unit profile of the deepest network trained.

The ratios: **forward**, the last unit's output std over the first unit's (how much the signal
grows on its way through the units); **backward**, the gradient norm at the first unit's input over
that at the last unit's (>1: the gradient grows on its way back to the input, <1: it fades).
He et al.'s argument (Sec. 3-4) is that with a clean identity path (``pre``) the signal of any unit
reaches any other directly, so neither ratio should run away with depth; a plain network has no
such path. A job that stopped before a measure (diverged, failed) is named, not used.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from resnet_exp.analysis.jobs import ReportError, network, read_sweeps  # noqa: E402
from resnet_exp.report import shown  # noqa: E402

BLOCKS = ("plain", "post", "bn_after_add", "relu_before_add", "relu_only_pre", "pre")
EPOCHS = (0, 1)  # signal.csv's epochs here: initialisation, and after the job's one epoch of steps
COLUMNS = ("layers", "block", "epoch", "steps", "units", "forward_ratio", "backward_ratio", "grad_min", "grad_max",
           "job",
           "why")  # fmt: skip


def rows_of(jobs) -> tuple[list[dict], list[dict], list[str]]:
    """The rows of the jobs' measures (one per network and epoch), the cells that have none and why
    (a job that diverged before the measure, a measure not finite), and the jobs not used."""
    rows, gaps, refused = [], [], []
    for job in jobs:
        if job.status in ("not started", "unreadable"):
            refused.append(f"{job.name}: {job.status}")
            continue
        by_epoch: dict[int, list[dict]] = defaultdict(list)
        for row in job.signal:
            if row["kind"] == "unit":
                by_epoch[int(row["epoch"])].append(row)
        steps = int(job.config.get("trainer.limit_train_batches"))
        block, layers = network(job)
        where = {"layers": layers, "block": block, "job": job.name}
        for epoch in EPOCHS:
            at = {**where, "epoch": epoch, "steps": 0 if epoch == 0 else steps}
            units = sorted(by_epoch.get(epoch, []), key=lambda r: r["depth"])
            if not units:
                said = job.error if job.status != "completed" else "no signal rows"
                gaps.append(
                    {**at, "why": said if said.startswith(job.status) else f"{job.status}: {said}".rstrip(": ")}
                )
                continue
            grads = [u["input_grad_norm"] for u in units]
            stds = [u["act_std"] for u in units]
            # each measure on its own: a ratio is NaN where a unit's measure is not finite, and says how
            finite = {"act_std": all(map(math.isfinite, stds)), "input_grad_norm": all(map(math.isfinite, grads))}
            rows.append(
                {
                    **at,
                    "units": len(units),
                    "forward_ratio": stds[-1] / stds[0] if finite["act_std"] else math.nan,
                    "backward_ratio": grads[0] / grads[-1] if finite["input_grad_norm"] else math.nan,
                    "grad_min": min(grads) if finite["input_grad_norm"] else math.nan,
                    "grad_max": max(grads) if finite["input_grad_norm"] else math.nan,
                    "why_forward_ratio": not_finite(stds),
                    "why_backward_ratio": not_finite(grads),
                    "profile": units,
                }
            )
            rows[-1]["why"] = ", ".join(
                f"the {word} ratio is {rows[-1][f'why_{column}']}"
                for word, column in (("forward", "forward_ratio"), ("backward", "backward_ratio"))
                if not math.isfinite(rows[-1][column])
            )
    key = lambda r: (r["epoch"], r["steps"], r["layers"], BLOCKS.index(r["block"]) if r["block"] in BLOCKS else 99)  # noqa: E731
    return sorted(rows, key=key), sorted(gaps, key=key), refused


# Below this forward ratio the last unit's output is a hundredth of the first's: the signal has
# collapsed on its way through, and a small backward ratio there says nothing good of the network.
COLLAPSED = 1e-2


def not_finite(values: list[float]) -> str:
    """How a measure's units are not finite ("" where all are): the units that overflowed to
    infinity and those that are NaN, of all."""
    inf = sum(math.isinf(v) for v in values)
    nan = sum(math.isnan(v) for v in values)
    if not inf + nan:
        return ""
    parts = [f"{n} {what}" for n, what in ((inf, "infinite"), (nan, "NaN")) if n]
    return f"not finite ({' and '.join(parts)} of {len(values)} units)"


def number(x: float) -> str:
    return f"{x:.3g}" if 1e-3 <= abs(x) < 1e4 else f"{x:.2e}"


def cell(row: dict, column: str) -> str:
    """A ratio, or how its measure was not finite."""
    return number(row[column]) if math.isfinite(row[column]) else row[f"why_{column}"]


def table(rows: list[dict], gaps: list[dict], when: tuple[int, int], column: str) -> list[str]:
    """One measure's table for the rows of ``when`` (epoch, steps): layers down, networks across;
    a cell without a measure says why."""
    mine = [r for r in rows if (r["epoch"], r["steps"]) == when]
    holes = [g for g in gaps if (g["epoch"], g["steps"]) == when]
    depths = sorted({r["layers"] for r in mine + holes})
    cells = {(r["layers"], r["block"]): cell(r, column) for r in mine}
    cells.update({(g["layers"], g["block"]): g["why"] for g in holes})
    blocks = [b for b in BLOCKS if any(r["block"] == b for r in mine + holes)]
    lines = ["| layers | " + " | ".join(blocks) + " |", "|---|" + "---|" * len(blocks)]
    for d in depths:
        lines.append(f"| {d} | " + " | ".join(cells.get((d, b), "not run") for b in blocks) + " |")
    return lines


def write_markdown(rows: list[dict], gaps: list[dict], refused: list[str], sources: list[Path], path: Path) -> None:
    lines = [
        "# Signal propagation across depth",
        "",
        f"Made by `signal_depth.py` from {', '.join(f'`{shown(s)}`' for s in sources)}: He et al.'s CIFAR network, "
        "Fashion-MNIST at 28 px, one seed, a probe batch of the same 64 training images for every network.",
        "**Forward**: the last unit's output std over the first unit's. **Backward**: the gradient norm at the "
        "first unit's input over that at the last unit's (above 1: the gradient grows on its way back).",
        "",
    ]
    for when in sorted({(r["epoch"], r["steps"]) for r in rows + gaps}):
        label = (
            "at initialisation"
            if when[0] == 0
            else f"after {when[1]} step{'s' * (when[1] != 1)} of batch 32 (SGD lr 0.1)"
        )
        for column, title in (("forward_ratio", "Forward ratio"), ("backward_ratio", "Backward ratio")):
            lines += [f"## {title}, {label}", "", *table(rows, gaps, when, column), ""]
    lines += ["## What the records show", "", *findings(rows, gaps), ""]
    if refused:
        lines += ["## Not used", "", *[f"- {r}" for r in refused], ""]
    path.write_text("\n".join(lines))


def findings(rows: list[dict], gaps: list[dict]) -> list[str]:
    """Sentences made from the rows: each compares two networks' ratio at every depth where both
    were measured, and counts; the networks that could not be measured, and why."""
    out = []

    def compare(a: str, b: str, column: str, when: tuple[int, int], word: str) -> None:
        at = {(r["layers"], r["block"]): r for r in rows if (r["epoch"], r["steps"]) == when}
        mine = {k: r[column] for k, r in at.items() if math.isfinite(r[column])}
        depths = sorted(d for d, blk in mine if blk == a and (d, b) in mine)
        if not depths:
            return
        below = [d for d in depths if mine[d, a] < mine[d, b]]
        label = "at initialisation" if when[0] == 0 else f"after {when[1]} steps"
        ratios = ", ".join(f"{d}: {number(mine[d, a])} against {number(mine[d, b])}" for d in depths)
        said = f"- {word} {label}: `{a}`'s is below `{b}`'s at {len(below)} of {len(depths)} depths ({ratios})"
        # the depths both ran at but not compared, and why
        unmeasured = sorted(d for d, blk in at if blk == a and (d, b) in at and d not in depths)
        if unmeasured:
            said += "; not compared at " + ", ".join(
                f"{d} (" + ", ".join(f"`{x}`'s is not finite" for x in (a, b) if (d, x) not in mine) + ")"
                for d in unmeasured
            )
        collapsed = [(d, x) for d in depths for x in (a, b) if at[d, x]["forward_ratio"] < COLLAPSED]
        if column == "backward_ratio" and collapsed:
            said += (
                "; "
                + ", ".join(
                    f"at {d} layers `{x}`'s forward ratio is {number(at[d, x]['forward_ratio'])}" for d, x in collapsed
                )
                + f" (below {COLLAPSED:g}: its signal has collapsed, so a small backward ratio there is no sign of health)"
            )
        out.append(said + ".")

    steps = max((r["steps"] for r in rows if r["epoch"] == 1), default=0)
    for when in ((0, 0), (1, steps)):
        compare("pre", "post", "backward_ratio", when, "Backward ratio")
        compare("post", "bn_after_add", "backward_ratio", when, "Backward ratio")
        for block in ("post", "pre"):
            compare(block, "plain", "backward_ratio", when, "Backward ratio")
    for g in gaps + [r for r in rows if not (math.isfinite(r["forward_ratio"]) and math.isfinite(r["backward_ratio"]))]:
        label = "at initialisation" if g["epoch"] == 0 else f"after {g['steps']} step{'s' * (g['steps'] != 1)}"
        out.append(f"- `{g['block']}` at {g['layers']} layers, {label}: {g['why']}.")
    return out


def plot(rows: list[dict], path: Path) -> None:
    """The ratios against depth at initialisation and after the most steps measured (the networks
    trained that long), and the per-unit profile of the deepest of those."""
    colours = dict(zip(BLOCKS, ("black", "tab:blue", "tab:red", "tab:orange", "tab:purple", "tab:green")))
    most = max((r["steps"] for r in rows if r["epoch"] == 1), default=0)
    panels = {"at initialisation": [r for r in rows if r["epoch"] == 0],
              f"after {most} steps": [r for r in rows if r["epoch"] == 1 and r["steps"] == most]}  # fmt: skip
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5), constrained_layout=True)
    for r_i, (column, label) in enumerate((("forward_ratio", "forward ratio"), ("backward_ratio", "backward ratio"))):
        for c_i, (when, mine) in enumerate(panels.items()):
            ax = axes[r_i, c_i]
            for block in BLOCKS:
                line = [r for r in mine if r["block"] == block]
                if line:
                    ax.plot(
                        [r["layers"] for r in line], [r[column] for r in line], "o-", color=colours[block], label=block
                    )
            ax.set(xscale="log", yscale="log", xlabel="layers", ylabel=label, title=f"{label}, {when}")
            ax.axhline(1, color="grey", lw=0.5)
        trained = panels[f"after {most} steps"]
        ax = axes[r_i, 2]
        if trained:
            deepest = max(r["layers"] for r in trained)
            key = "act_std" if column == "forward_ratio" else "input_grad_norm"
            for r in trained:
                if r["layers"] == deepest:
                    ax.plot([u[key] for u in r["profile"]], color=colours.get(r["block"], "grey"), label=r["block"])
            ax.set(yscale="log", xlabel="residual unit (input to output)", ylabel=key,
                   title=f"{key} per unit, {deepest} layers, after {most} steps")  # fmt: skip
    axes[0, 0].legend(fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args(argv)
    try:
        jobs = read_sweeps(args.sweeps)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows, gaps, refused = rows_of(jobs)
    if not rows:
        print("error: no job has signal rows to use: " + "; ".join(refused + [g["why"] for g in gaps]), file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "signal_depth.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows + gaps)  # a network without a measure: its row says why
    write_markdown(rows, gaps, refused, args.sweeps, args.out / "signal_depth.md")
    plot(rows, args.out / "signal_depth.png")
    for line in refused:
        print(f"not used: {line}", file=sys.stderr)
    print(f"written: {args.out / 'signal_depth.md'}, signal_depth.csv, signal_depth.png ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
