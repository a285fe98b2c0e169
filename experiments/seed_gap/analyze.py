"""The 11th epoch three ways, paired by run: ``python analyze.py BLOCK_ORDER_SWEEP SEED_GAP_DIR``.

For each run of the block_order sweep: its test accuracy after epoch 10 (as committed), and after
an 11th epoch trained from that checkpoint as it was trained (``mean``), with the seed's step
scaling (``batch_size``), and as trained with BatchNorm statistics recomputed before evaluation
(``precise_bn``). Prints a markdown table per run and the paired differences against ``mean``
(mean, 95% t-interval, p of the paired t-test).
"""

from __future__ import annotations

import sys
from pathlib import Path

from scipy import stats

from resnet_exp.records import read_metrics
from resnet_exp.report import Estimate

ARMS = ("mean", "batch_size", "precise_bn")


def test_acc(job: Path, epoch: int) -> float | None:
    return next((r["test/acc"] for r in read_metrics(job) if int(r["epoch"]) == epoch), None)


def main(sweep: Path, continued: Path) -> None:
    runs = sorted((p for p in sweep.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    table = {}
    for run in runs:
        values = {arm: test_acc(continued / arm / run.name, 11) for arm in ARMS}
        if all(v is not None for v in values.values()):
            table[run] = (test_acc(run, 10), values)
    print("| run | epoch 10 | epoch 11: " + " | epoch 11: ".join(ARMS) + " |")
    print("|---|---|" + "---|" * len(ARMS))
    for run, (ten, values) in table.items():
        order = next(line.split(": ")[1] for line in (run / "config.yaml").read_text().splitlines() if "order:" in line)
        cells = " | ".join(f"{values[a] * 100:.2f}" for a in ARMS)
        print(f"| {run.name} ({order}) | {ten * 100:.2f} | {cells} |")
    print()
    print(f"Paired over the {len(table)} runs, in points (arm minus `mean`): mean [95% CI], p.")
    print()
    print("| arm | epoch-11 test acc difference | epoch-10-to-11 drop difference |")
    print("|---|---|---|")
    for arm in ARMS[1:]:
        acc = [(v[arm] - v["mean"]) * 100 for _, v in table.values()]
        drop = [((ten - v[arm]) - (ten - v["mean"])) * 100 for ten, v in table.values()]
        cells = []
        for d in (acc, drop):
            e = Estimate.of(d)
            p = stats.ttest_1samp(d, 0).pvalue if len(d) > 1 and e.std > 0 else float("nan")
            cells.append(f"{e.mean:+.2f} [{e.low:+.2f}, {e.high:+.2f}], p={p:.3g}")
        print(f"| {arm} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
