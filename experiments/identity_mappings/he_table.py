"""The five orderings here beside He et al. 2016, Table 2 (CIFAR-10, ResNet-110, test error %):
does the paper's ranking hold on the seed's network and data?

    python experiments/identity_mappings/he_table.py SUMMARY_CSV > he_table.md

SUMMARY_CSV is the report's summary.csv (one row per job). Test error here is 100 minus the final
test accuracy of each completed job, mean ± std [95% CI of the mean, t] over seeds, on both
measures (precise BN: the verdicts'; the running averages: the seed's protocol). The rankings are
compared with Kendall's tau; which pairs the data can separate is the report's table of pairwise
differences (Holm-corrected), not this one.
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import stats

from resnet_exp.analysis.references import HE_ET_AL
from resnet_exp.analysis.stats import Estimate
from resnet_exp.report import shown

MEASURES = {"final_precise_bn": "precise BN", "final_running": "running averages"}


def errors(rows: list[dict[str, str]], column: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        if row["status"] == "completed" and row.get(column):
            out[row["block.order"]].append(100 * (1 - float(row[column])))
    return out


def cell(values: list[float]) -> str:
    return Estimate.of(values).text(digits=2) if values else "no completed run"


def ranks(values: dict[str, float]) -> dict[str, int]:
    """Rank 1 for the lowest; equal values share the lower rank."""
    keys = list(values)
    return dict(zip(keys, (int(r) for r in stats.rankdata([values[k] for k in keys], method="min"))))


def main(path: str) -> None:
    rows = list(csv.DictReader(open(path)))
    by_measure = {m: errors(rows, m) for m in MEASURES}
    present = [k for k in HE_ET_AL if any(by_measure[m].get(k) for m in MEASURES)]
    missing = [k for k in HE_ET_AL if k not in present]
    print("# The five orderings beside He et al. 2016, Table 2\n")
    print(f"From `{shown(Path(path))}`. Test error in % (100 minus the final test accuracy), mean ± std [95% CI of the")
    print("mean] over seeds; rank 1 is the lowest error. He et al.: ResNet-110 on CIFAR-10, one number per")
    print("unit (their Table 2). Here: the seed's network on Fashion-MNIST at 96 px, the seed's recipe.\n")
    if missing:
        print(f"**Incomplete**: no completed run of {', '.join(f'`{k}`' for k in missing)}; no ranking is compared.\n")
    n = {k: len(by_measure["final_precise_bn"].get(k, [])) for k in HE_ET_AL}
    print(
        "| ordering | He et al. unit | He et al. error | rank | n | here, precise BN | rank | here, running averages | rank |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    paper = ranks({k: HE_ET_AL[k][1] for k in present})
    ours = {m: ranks({k: float(np.mean(v)) for k, v in by_measure[m].items() if k in present and v}) for m in MEASURES}
    for k in HE_ET_AL:
        unit, err = HE_ET_AL[k]
        here = [f"{cell(by_measure[m].get(k, []))} | {ours[m].get(k, '-')}" for m in MEASURES]
        print(f"| `{k}` | {unit} | {err:.2f} | {paper.get(k, '-')} | {n[k]} | {' | '.join(here)} |")
    if missing:
        return
    print()
    for m, label in MEASURES.items():
        order = sorted(ours[m], key=ours[m].get)
        tau = stats.kendalltau([paper[k] for k in order], [ours[m][k] for k in order])
        same = [ours[m][k] for k in order] == [paper[k] for k in order]
        text = f"`{order[0]}`" + "".join(
            f" {'=' if ours[m][b] == ours[m][a] else '<'} `{b}`" for a, b in zip(order, order[1:])
        )
        print(
            f"- {label}: ranking here {text}; "
            f"{'the same as' if same else 'not the same as'} He et al.'s "
            f"(Kendall's tau {tau.statistic:+.2f}, p = {tau.pvalue:.2f})."
        )
    print("\nA ranking of means says nothing by itself about which pairs differ: the report's pairwise")
    print("differences (paired by seed, Holm-corrected) say which pairs the data can separate.")


if __name__ == "__main__":
    main(sys.argv[1])
