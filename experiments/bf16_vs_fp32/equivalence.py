"""bf16 against fp32 under the default recipe: paired by seed, on both measures of test accuracy,
with the equivalence test that decides the default precision.

    python experiments/bf16_vs_fp32/equivalence.py BF16_JOBS_DIR FP32_JOBS_DIR > equivalence.md

Each directory holds job directories (a sweep, or an experiment's kept ``jobs/``; both may be the
same: each side is taken by its ``trainer.precision``, fp32 or not); the jobs of the
default recipe are paired by seed (the bf16 side may hold other jobs: only those whose config
equals the fp32 side's but for ``trainer.precision`` and the seed are used). The decision (TOST
at 5%): bf16 is equivalent where the 90% confidence interval of the paired difference of final
test accuracy with precise BN lies within ±0.5 point.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from resnet_exp.analysis.jobs import PRECISE, RUNNING, largest_drop, read_sweeps
from resnet_exp.analysis.stats import PairedDifference
from resnet_exp.runs.records import NOT_RECIPE

MARGIN = 0.5  # points
NOT_COMPARED = ("trainer.precision", "seed")
FP32 = ("32-true", "32")  # trainer.precision's names for fp32


def recipe(job) -> dict:
    """What a job computes, less what this comparison varies (the precision, the seed)."""
    return {k: v for k, v in job.config.items() if not k.startswith(NOT_RECIPE) and k not in NOT_COMPARED}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        usage = next(line.strip() for line in __doc__.splitlines() if line.strip().startswith("python "))
        print(f"usage: {usage}", file=sys.stderr)
        return 2
    bf16_all, fp32 = read_sweeps([Path(argv[0])]), read_sweeps([Path(argv[1])])
    # each side by its precision, so that both may be one sweep (seed by seed, both precisions)
    fp32 = [j for j in fp32 if j.status == "completed" and str(j.config.get("trainer.precision")) in FP32]
    bf16_all = [j for j in bf16_all if str(j.config.get("trainer.precision")) not in FP32]
    wanted = recipe(fp32[0])
    if any(recipe(j) != wanted for j in fp32):
        print("error: the fp32 jobs do not share one recipe", file=sys.stderr)
        return 2
    bf16 = {j.seed: j for j in bf16_all if j.status == "completed" and recipe(j) == wanted}
    pairs = [(bf16[j.seed], j) for j in sorted(fp32, key=lambda j: j.seed) if j.seed in bf16]
    if len(pairs) < 2:
        print(f"error: {len(pairs)} seed(s) ran both ways; need 2 or more", file=sys.stderr)
        return 2
    out = ["# bf16 against fp32, paired by seed", ""]
    out += [
        f"Jobs: bf16 `{argv[0]}` ({', '.join(b.name for b, _ in pairs)}), fp32 `{argv[1]}` "
        f"({', '.join(f.name for _, f in pairs)}); ran with: {pairs[0][0].ran_with} / {pairs[0][1].ran_with}.",
        "",
    ]
    out += [
        "| seed | final, precise BN: bf16 / fp32 | final, running: bf16 / fp32 | largest drop, running: bf16 / fp32 "
        "| final training loss: bf16 / fp32 | epoch time (s): bf16 / fp32 |",
        "|---|---|---|---|---|---|",
    ]
    for b, f in pairs:
        cells = [f"{b.final_of(m) * 100:.2f} / {f.final_of(m) * 100:.2f}" for m in (PRECISE, RUNNING)]
        drops = f"{largest_drop(b.acc(RUNNING)) * 100:.2f} / {largest_drop(f.acc(RUNNING)) * 100:.2f}"
        loss = f"{b.curve('train/loss')[-1]:.4f} / {f.curve('train/loss')[-1]:.4f}"
        times = f"{np.mean(b.curve('time/epoch_s')):.0f} / {np.mean(f.curve('time/epoch_s')):.0f}"
        out.append(f"| {f.seed} | {' | '.join(cells)} | {drops} | {loss} | {times} |")
    out += [
        "",
        "Final test accuracy, bf16 minus fp32, in points (mean of the paired differences; 95% and 90% "
        "confidence intervals from the paired t-test):",
        "",
        "| measure | n | difference | 95% CI | p | 90% CI (TOST) | within ±0.5 point? |",
        "|---|---|---|---|---|---|---|",
    ]
    verdict = None
    for m in (PRECISE, RUNNING):
        a = np.array([b.final_of(m) for b, _ in pairs]) * 100
        c = np.array([f.final_of(m) for _, f in pairs]) * 100
        found = PairedDifference(tuple(a - c))
        (low95, high95), (low90, high90) = found.interval(0.95), found.interval(0.90)
        inside = found.tost_p(MARGIN) < 0.05  # the 90% interval inside the margin
        if m == PRECISE:
            verdict = inside
        out.append(
            f"| {m} | {len(a)} | {found.mean:+.2f} | {low95:+.2f} to {high95:+.2f} | "
            f"{found.p:.3g} | {low90:+.2f} to {high90:+.2f} | {'yes' if inside else 'no'} |"
        )
    out += [
        "",
        (
            "**Equivalent** (TOST at 5%, precise BN): the 90% CI lies within ±0.5 point, so bf16 where it is "
            "native does not move the answer by more than half a point."
            if verdict
            else "**Not shown equivalent** (TOST at 5%, precise BN): the 90% CI reaches beyond ±0.5 point, so fp32 "
            "stays the default."
        ),
    ]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
