"""The seed_gap measurements, as markdown tables (``analysis.md``):

    python experiments/seed_gap/analyze.py [--block-order DIR] [--remedies DIR] [--probe FILE] [--mxnet DIR]

1. ``--block-order``: the swing of test accuracy in each full-size run of ../block_order_full_step (its jobs'
   records): the largest fall from one epoch to the next, and the range over epochs 5-10.
2. ``--probe``: ``bn_probe.py``'s lines: each run's final test accuracy with BatchNorm's running
   averages and with statistics recomputed over 40 training batches, same weights.
3. ``--remedies``: the remedies at full size (run.sh's sweep): per seed, the default training and
   the seed's step scaling (``loss.reduction=batch_size``), each evaluated every epoch with the
   running averages (``test/acc_running``, what the default recipe reports) and with precise BN
   (``test/acc``) on the same weights; paired by seed. With ``--block-order``, also whether the
   default arm reproduces ../block_order_full_step's runs of the same seeds.
4. ``--mxnet``: ``mxnet_seed.py``'s JSON files: the seed's own code, run here.

Differences are paired (mean, 95% t-interval, p of the paired t-test), in points. A section
whose input is not given or holds no runs is left out.

    python experiments/seed_gap/analyze.py --block-order DIR --mxnet DIR --readme README.md --write|--check

puts sections 1 and 4, without their headings, into README.md's generated regions
(``<!-- analysis:swing -->``, ``<!-- analysis:mxnet -->``), or exits 1 where the file's differ.
Every figure of the seed's own runs comes from its printed log (``references.SEED``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import sys
from pathlib import Path

from omegaconf import OmegaConf
from scipy import stats

from resnet_exp.analysis.jobs import largest_drop, late_range
from resnet_exp.analysis.references import SEED
from resnet_exp.analysis.stats import Estimate
from resnet_exp.runs.records import CONFIG_FILE, NOT_RECIPE, flatten, read_metrics

PROBE = re.compile(
    r"/(?P<job>\d+)/?: block.order=(?P<order>\w+) seed=(?P<seed>\d+) epoch=(?P<epoch>\d+) test acc "
    r"running averages (?P<running>[\d.]+), recomputed over (?P<batches>\d+) batches (?P<recomputed>[\d.]+)"
)
LATE = 5  # the late range: test accuracy's max - min from this epoch on (the epochs 5-10)
ARMS = {"mean": "default training", "batch_size": "the seed's step scaling"}


def paired(differences: list[float]) -> str:
    e = Estimate.of(differences)
    if e.n < 2:
        return f"{e.mean:+.2f} (one run)" if e.n else "n/a"
    p = stats.ttest_1samp(differences, 0).pvalue if e.std > 0 else float("nan")
    return f"{e.mean:+.2f} [{e.low:+.2f}, {e.high:+.2f}], p={p:.3g} (n={e.n})"


def spread(values: list[float]) -> str:
    e = Estimate.of(values)
    return f"{e.mean:.2f}" if e.n < 2 else f"{e.mean:.2f} ± {e.std:.2f}"


def jobs(sweep: Path) -> list[tuple[Path, dict]]:
    """The job directories of a sweep (or of kept records) with their configs, in job order."""
    found = sorted(
        (p for p in sweep.iterdir() if p.name.isdigit() and (p / CONFIG_FILE).is_file()), key=lambda p: int(p.name)
    )
    return [(p, OmegaConf.to_container(OmegaConf.load(p / CONFIG_FILE))) for p in found]


def curve(job: Path, key: str) -> list[float]:
    return [r[key] * 100 for r in read_metrics(job) if key in r]


def swing_section(block_order: Path) -> None:
    runs = [(p, c) for p, c in jobs(block_order) if len(curve(p, "test/acc")) == 10]
    if not runs:
        return
    print("## How much test accuracy swings, over 5 seeds per ordering\n")
    print("Per full-size run of ../block_order_full_step (its jobs' records), in points: the largest fall of test")
    print("accuracy from one epoch to the next, and its range (max - min) over epochs 5-10.\n")
    print("| job | ordering | seed | final | largest drop | range over epochs 5-10 |")
    print("|---|---|---|---|---|---|")
    by_order: dict[str, list[tuple[float, float]]] = {}
    for p, c in runs:
        acc = curve(p, "test/acc")
        drop, spread_ = largest_drop(acc), late_range(acc, LATE)
        by_order.setdefault(c["block"]["order"], []).append((drop, spread_))
        print(f"| {p.name} | {c['block']['order']} | {c['seed']} | {acc[-1]:.2f} | {drop:.2f} | {spread_:.2f} |")
    print("\nMean ± std over seeds, against the seed's one run per ordering (from its printed log), and how")
    print("many runs fell no further than that ordering's seed run did:\n")
    print("| ordering | runs | largest drop | range over epochs 5-10 | runs within the seed's largest drop |")
    print("|---|---|---|---|---|")
    for order, values in by_order.items():
        seed_drop = 100 * SEED[order].largest_drop[0]
        calm = sum(d <= seed_drop + 1e-9 for d, _ in values)
        drops, ranges = spread([d for d, _ in values]), spread([r for _, r in values])
        print(f"| {order} | {len(values)} | {drops} | {ranges} | {calm} (within {seed_drop:.1f}) |")
    for order, seed in SEED.items():
        drop, after = seed.largest_drop
        print(
            f"| the seed, {order} (one run) | 1 | {100 * drop:.1f} (epoch {after} to {after + 1}) | "
            f"{100 * seed.late_range(LATE):.1f} | |"
        )
    print()


def probe_section(probe_txt: Path) -> None:
    rows = [m.groupdict() for m in map(PROBE.search, probe_txt.read_text().splitlines()) if m]
    if not rows:
        return
    print("## BatchNorm statistics on the final weights\n")
    print("Test accuracy (%) of each run's final checkpoint, evaluated with BatchNorm's running averages")
    print(f"and with statistics recomputed over {rows[0]['batches']} training batches (same weights).\n")
    print("| run | ordering | seed | epoch | running averages | recomputed | difference |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        run, rec = float(r["running"]) * 100, float(r["recomputed"]) * 100
        print(f"| {r['job']} | {r['order']} | {r['seed']} | {r['epoch']} | {run:.2f} | {rec:.2f} | {rec - run:+.2f} |")
    print("\nPaired difference, recomputed minus running averages, in points: mean [95% CI], p.\n")
    print("| runs | difference |")
    print("|---|---|")
    for order in sorted({r["order"] for r in rows}) + ["all"]:
        d = [(float(r["recomputed"]) - float(r["running"])) * 100 for r in rows if order in (r["order"], "all")]
        print(f"| {order} | {paired(d)} |")
    print()


def measures(acc: list[float]) -> dict[str, float]:
    return {"final": acc[-1], "largest drop": largest_drop(acc), "late range": late_range(acc, LATE)}


def remedies_section(remedies: Path, block_order: Path | None) -> None:
    runs: dict[tuple[str, int], dict[str, dict[str, list[float]]]] = {}
    configs = {}
    for p, c in jobs(remedies):
        running, precise = curve(p, "test/acc_running"), curve(p, "test/acc")
        if len(running) == len(precise) == c["trainer"]["max_epochs"] > 1:
            key = (c["block"]["order"], c["seed"])
            runs.setdefault(key, {})[c["loss"]["reduction"]] = {"running": running, "precise": precise, "job": p.name}
            configs[key] = c
    pairs = {k: v for k, v in runs.items() if set(v) == set(ARMS)}
    if not pairs:
        return
    print("## The remedies at full size\n")
    print("Each seed trained twice: default training (`mean`: the last, partial batch of 96 takes a full step)")
    print("and the seed's step scaling (`batch_size`: it takes a 96/256 step). Every epoch both evaluate the")
    print("test set twice on the same weights: with BatchNorm's running averages (`running`, what the")
    print("default recipe reports) and with statistics recomputed over 40 fixed training batches")
    print("(`precise`, `evaluation.precise_bn_batches=40`). In points: the final test accuracy, the largest")
    print("fall from one epoch to the next, and the late range (max - min over epochs 5-10).\n")
    print("| ordering | seed | training | job | final: running | final: precise | largest drop: running | "
          "largest drop: precise | late range: running | late range: precise |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (order, seed), arms in sorted(pairs.items()):
        for arm in ARMS:
            m = {e: measures(arms[arm][e]) for e in ("running", "precise")}
            cells = " | ".join(
                f"{m[e][k]:.2f}" for k in ("final", "largest drop", "late range") for e in ("running", "precise")
            )
            print(f"| {order} | {seed} | {arm} | {arms[arm]['job']} | {cells} |")
    contrasts = {
        "seed's step scaling (batch_size - mean), running averages": (("mean", "running"), ("batch_size", "running")),
        "seed's step scaling (batch_size - mean), precise BN": (("mean", "precise"), ("batch_size", "precise")),
        "precise BN (precise - running), default training": (("mean", "running"), ("mean", "precise")),
        "precise BN (precise - running), seed's step scaling": (("batch_size", "running"), ("batch_size", "precise")),
        "both (batch_size + precise) - default recipe": (("mean", "running"), ("batch_size", "precise")),
    }
    print("\nPaired by seed, B minus A, in points: mean [95% CI], p. A drop or range below zero is a calmer curve.\n")
    print("| comparison | final test acc | largest drop | late range |")
    print("|---|---|---|---|")
    for name, ((arm_a, e_a), (arm_b, e_b)) in contrasts.items():
        cells = []
        for k in ("final", "largest drop", "late range"):
            d = [measures(v[arm_b][e_b])[k] - measures(v[arm_a][e_a])[k] for v in pairs.values()]
            cells.append(paired(d))
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\nMean ± std over seeds:\n")
    print("| training | evaluation | final test acc | largest drop | late range |")
    print("|---|---|---|---|---|")
    for arm in ARMS:
        for e in ("running", "precise"):
            m = [measures(v[arm][e]) for v in pairs.values()]
            print(
                f"| {arm} | {e} | "
                + " | ".join(spread([x[k] for x in m]) for k in ("final", "largest drop", "late range"))
                + " |"
            )
    print()
    if block_order is not None and block_order.is_dir():
        reproduction(pairs, configs, block_order)


def same_recipe(a: dict, b: dict) -> bool:
    """Whether two jobs' configs agree on every key both have, but the remedies' own and the seed."""
    a, b = flatten(a), flatten(b)
    own = (*NOT_RECIPE, "evaluation.", "loss.", "seed")
    return all(a[k] == b[k] for k in a.keys() & b.keys() if not k.startswith(own))


def reproduction(pairs: dict, configs: dict, block_order: Path) -> None:
    """The default arm's running-average curve against ../block_order_full_step's run of the same seed and recipe."""
    theirs = {(c["block"]["order"], c["seed"]): (curve(p, "test/acc"), c) for p, c in jobs(block_order)}
    rows = [(k, v["mean"]["running"], theirs[k][0]) for k, v in sorted(pairs.items())
            if k in theirs and same_recipe(configs[k], theirs[k][1])]  # fmt: skip
    if not rows:
        return
    print("Against ../block_order_full_step's runs of the same seeds (same recipe, running averages), epoch by epoch:\n")
    print("| ordering | seed | epochs with the same test accuracy (to 0.01 point) | largest difference |")
    print("|---|---|---|---|")
    for (order, seed), a, b in rows:
        same = sum(abs(x - y) < 0.005 for x, y in zip(a, b))
        print(f"| {order} | {seed} | {same} of {min(len(a), len(b))} | {max(abs(x - y) for x, y in zip(a, b)):.2f} |")
    print()


def mxnet_section(mxnet: Path) -> None:
    runs = []
    for f in sorted(mxnet.glob("*.json")):
        record = json.loads(f.read_text())
        if len(record["epochs"]) == record["args"]["epochs"]:
            runs.append(record)
    if not runs:
        return
    print("## The seed's own code, in MXNet, on this CPU\n")
    print(f"`mxnet_seed.py` ({runs[0]['framework']}): d2l's network and train_ch5 loop as the seed ran them")
    print("(`step seed`: trainer.step(batch_size), the last batch of 96 takes a 96/256 step) and the same run")
    print("with our full step for that batch (`step mean`). Test accuracy (%) after each epoch, with")
    print("BatchNorm's moving statistics, against the seed's run (its printed log).\n")
    epochs = max(len(r["epochs"]) for r in runs)
    head = [str(e) for e in range(1, epochs + 1)] + ["largest drop", "range over epochs 5-10", "epoch-1 loss"]
    print("| run | " + " | ".join(head) + " |")
    print("|---" * (len(head) + 1) + "|")
    for order, seed in SEED.items():
        if any(r["args"]["order"] == order for r in runs):
            cells = [f"{a * 100:.1f}" for a in seed.curve] + [""] * (epochs - len(seed.curve))
            cells += [f"{100 * seed.largest_drop[0]:.1f}", f"{100 * seed.late_range(LATE):.1f}", f"{seed.first_loss:.4f}"]
            print(f"| the seed, {order} (2018 GPU) | " + " | ".join(cells) + " |")
    curves = {}
    for r in runs:
        acc = [e["test_acc"] * 100 for e in r["epochs"]]
        a = r["args"]
        curves[(a["order"], a["seed"], a["step"])] = acc
        cells = [f"{x:.1f}" for x in acc]
        cells += [f"{largest_drop(acc):.2f}", f"{late_range(acc, LATE):.2f}", f"{r['epochs'][0]['train_loss']:.4f}"]
        print(f"| MXNet {a['order']}, seed {a['seed']}, step {a['step']} | " + " | ".join(cells) + " |")
    for (order, seed, step), acc in curves.items():
        if step == "mean" and (order, seed, "seed") in curves:
            d = [m - s for m, s in zip(acc, curves[(order, seed, "seed")])]
            cells = [f"{x:+.1f}" for x in d] + [f"mean {sum(d) / len(d):+.2f}", "", ""]
            print("| difference, step mean - step seed | " + " | ".join(cells) + " |")
    for (order, seed, step), acc in curves.items():
        if step == "seed":
            gap = max(abs(a - 100 * s) for a, s in zip(acc, SEED[order].curve))
            print(f"\nWith the seed's step, MXNet {order} seed {seed} stays within {gap:.1f} points of the seed's run at every epoch.")
    minutes = [sum(e["time_s"] for e in r["epochs"]) / 60 for r in runs]
    print(f"\n{len(runs)} run(s), {min(minutes):.0f}-{max(minutes):.0f} minutes each on the CPU.\n")


def section(make, *inputs) -> str:
    """A section's markdown as it prints it, less its heading."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        make(*inputs)
    return out.getvalue().split("\n", 1)[1].strip("\n")


def readme(args: argparse.Namespace) -> int:
    """Write or check the README's regions (``<!-- analysis:NAME -->`` ... ``<!-- /analysis:NAME -->``)."""
    made = {"swing": section(swing_section, args.block_order), "mxnet": section(mxnet_section, args.mxnet)}
    text = new = args.readme.read_text()
    for name, body in made.items():
        begin, end = f"<!-- analysis:{name}: made by analyze.py --write; do not edit by hand -->", f"<!-- /analysis:{name} -->"
        if begin not in new or end not in new:
            print(f"error: {args.readme} has no region {begin} ... {end}", file=sys.stderr)
            return 2
        head, rest = new.split(begin, 1)
        new = f"{head}{begin}\n{body}\n{end}{rest.split(end, 1)[1]}"
    if args.write:
        args.readme.write_text(new)
        return 0
    if new != text:
        print(f"{args.readme}'s analysis regions are not what the records give: run analyze.py ... --write", file=sys.stderr)
        return 1
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--block-order", type=Path, help="../block_order_full_step's jobs (kept records or its sweep)")
    parser.add_argument("--probe", type=Path, help="bn_probe.py's output")
    parser.add_argument("--remedies", type=Path, help="the remedies sweep (or its kept records)")
    parser.add_argument("--mxnet", type=Path, help="the folder of mxnet_seed.py's JSON files")
    parser.add_argument("--readme", type=Path, help="a README with analysis regions to --write or --check")
    parser.add_argument("--write", action="store_true", help="with --readme: rewrite its regions")
    parser.add_argument("--check", action="store_true", help="with --readme: exit 1 where its regions differ")
    args = parser.parse_args()
    if args.readme:
        sys.exit(readme(args))
    if args.block_order and args.block_order.is_dir():
        swing_section(args.block_order)
    if args.probe and args.probe.is_file():
        probe_section(args.probe)
    if args.remedies and args.remedies.is_dir():
        remedies_section(args.remedies, args.block_order)
    if args.mxnet and args.mxnet.is_dir():
        mxnet_section(args.mxnet)


if __name__ == "__main__":
    main()
