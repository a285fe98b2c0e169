"""The seed_gap measurements, paired by run:
``python analyze.py BLOCK_ORDER_SWEEP SEED_GAP_DIR BN_PROBE_TXT``.

1. The BatchNorm probe (``bn_probe.py``'s lines): each run's final test accuracy with BatchNorm's
   running averages and with statistics recomputed over 40 training batches, same weights.
2. The 11th epoch from each run's final checkpoint, as trained (``mean``) and with the seed's step
   scaling (``batch_size``), same data order: test accuracy and the drop from epoch 10.

Prints markdown tables per run and the paired differences (mean, 95% t-interval, p of the paired
t-test), in points. A section whose runs are missing is left out.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from scipy import stats

from resnet_exp.records import read_metrics
from resnet_exp.report import Estimate

ARMS = ("mean", "batch_size")
PROBE = re.compile(
    r"/(?P<job>\d+)/?: block.order=(?P<order>\w+) seed=(?P<seed>\d+) epoch=(?P<epoch>\d+) test acc "
    r"running averages (?P<running>[\d.]+), recomputed over (?P<batches>\d+) batches (?P<recomputed>[\d.]+)"
)


def test_acc(job: Path, epoch: int) -> float | None:
    return next((r["test/acc"] for r in read_metrics(job) if int(r["epoch"]) == epoch), None)


def paired(differences: list[float]) -> str:
    e = Estimate.of(differences)
    if e.n < 2:
        return f"{e.mean:+.2f} (one run)"
    p = stats.ttest_1samp(differences, 0).pvalue if len(differences) > 1 and e.std > 0 else float("nan")
    return f"{e.mean:+.2f} [{e.low:+.2f}, {e.high:+.2f}], p={p:.3g} (n={e.n})"


def order_of(run: Path) -> str:
    return next(line.split(": ")[1] for line in (run / "config.yaml").read_text().splitlines() if "order:" in line)


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


def continuation_section(sweep: Path, continued: Path) -> None:
    runs = sorted((p for p in sweep.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    table = {}
    for run in runs:
        values = {arm: test_acc(continued / arm / run.name, 11) for arm in ARMS}
        ten = test_acc(run, 10)
        if ten is not None and all(v is not None for v in values.values()):
            table[run] = (ten, values)
    if not table:
        return
    print("## An 11th epoch, with and without the seed's step scaling\n")
    print("Test accuracy (%) after epoch 10 (the run as committed) and after one more epoch from its")
    print("final checkpoint, the same data order: `mean` as trained (the last, partial batch of 96")
    print("takes a full step), `batch_size` with the seed's scaling (that batch takes a 96/256 step).\n")
    print("| run | ordering | epoch 10 | epoch 11: " + " | epoch 11: ".join(ARMS) + " |")
    print("|---|---|---|" + "---|" * len(ARMS))
    for run, (ten, values) in table.items():
        cells = " | ".join(f"{values[a] * 100:.2f}" for a in ARMS)
        print(f"| {run.name} | {order_of(run)} | {ten * 100:.2f} | {cells} |")
    print("\nPaired over the runs, `batch_size` minus `mean`, in points: mean [95% CI], p.\n")
    print("| runs | epoch-11 test acc difference |")
    print("|---|---|")
    for order in sorted({order_of(r) for r in table}) + ["all"]:
        d = [(v["batch_size"] - v["mean"]) * 100 for r, (_, v) in table.items() if order in (order_of(r), "all")]
        print(f"| {order} | {paired(d)} |")
    print()


def main(sweep: Path, continued: Path, probe_txt: Path) -> None:
    probe_section(probe_txt)
    continuation_section(sweep, continued)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
