"""The learning-rate search judged: per ordering, each rate's final validation accuracy over its
runs and the rate chosen (the highest mean; the test set is never looked at), as a markdown table
and a figure. The command is ``python -m resnet_exp.tune``."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from resnet_exp.analysis.jobs import Job, ReportError
from resnet_exp.analysis.stats import Estimate


def final_val(job: Job) -> float:
    return job.curve("val/acc")[-1]


def choose(jobs: list[Job], by: str, key: str) -> dict[str, dict]:
    """Per value of ``by`` (the ordering): per value of ``key`` (the rate) the estimate of the final
    validation accuracy over the completed runs, and the value chosen (the highest mean)."""
    done = [j for j in jobs if j.status == "completed"]
    missing = [j.name for j in done if not j.validated]
    if missing:
        raise ReportError(f"{missing[0]} has no validation accuracy: the search needs data.val_size > 0")
    table: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for j in done:
        table[str(j.config.get(by))][float(j.config[key])].append(final_val(j))
    if not table:
        raise ReportError("no completed job with a validation accuracy to choose from")
    result = {}
    for group, per_rate in table.items():
        estimates = {rate: Estimate.of(values) for rate, values in sorted(per_rate.items())}
        best = max(estimates, key=lambda rate: estimates[rate].mean)
        result[group] = {"estimates": estimates, "chosen": best}
    return result


def table(choice: dict[str, dict], by: str, key: str, sweep: Path) -> str:
    lines = ["# Learning rate per ordering, chosen on validation", "", f"Read from: `{sweep}`", ""]
    lines += [
        f"Per `{by}` and `{key}`: the final validation accuracy (%) over the completed runs, mean ± std; the chosen "
        'rate has the highest mean. The test set is not looked at. "behind": how many points a rate\'s mean falls '
        "short of the chosen one's (a flat curve: small numbers on both sides).",
        "",
    ]
    for group, c in choice.items():
        lines += [
            f"## {by}={group}: {key}={c['chosen']:g}",
            "",
            f"| {key} | n | val acc | behind |",
            "|---|---|---|---|",
        ]
        best = c["estimates"][c["chosen"]].mean
        for rate, e in c["estimates"].items():
            mark = " (chosen)" if rate == c["chosen"] else ""
            value = f"{e.mean * 100:.2f}" + ("" if e.n < 2 else f" ± {e.std * 100:.2f}")
            lines.append(f"| {rate:g}{mark} | {e.n} | {value} | {(best - e.mean) * 100:.2f} |")
        lines.append("")
    return "\n".join(lines)


def plot(choice: dict[str, dict], key: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for group, c in choice.items():
        rates = list(c["estimates"])
        mean = np.array([c["estimates"][r].mean for r in rates]) * 100
        std = np.array([0.0 if math.isnan(c["estimates"][r].std) else c["estimates"][r].std for r in rates]) * 100
        (line,) = ax.plot(rates, mean, marker="o", label=f"{group} (chosen {c['chosen']:g})")
        ax.fill_between(rates, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax.set_xscale("log")
    ax.set_xlabel(key)
    ax.set_ylabel("final validation accuracy (%)")
    ax.set_title("validation accuracy against the learning rate: mean ± std over seeds", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
