"""How many seeds a comparison needs, from the spread of its paired differences so far: the
fixed-n designs (TOST for equivalence, the t-test for a difference) and the sequential rule of
``hydra/sweeper=sequential`` (``sequential.py``), the table ``python -m resnet_exp.plan`` prints
and docs/sequential.md's regions hold; and the simulation of the confidence sequence's coverage
under optional stopping against a recomputed t-interval."""

from __future__ import annotations

import itertools
import math

import numpy as np

from resnet_exp.analysis.groups import common_measures, group_jobs, swept_keys
from resnet_exp.analysis.jobs import started
from resnet_exp.analysis.sequential import (
    confidence_sequence,
    fixed_pairs_for_equivalence,
    fixed_pairs_to_differ,
    simulate_coverage,
    stopping_pairs,
)
from resnet_exp.analysis.stats import PairedDifference


def paired_differences(a, b, measure: str) -> list[float]:
    """b minus a in points, on the seeds both completed (each seed once)."""
    fa = {j.seed: 100 * j.final_of(measure) for j in a.done}
    fb = {j.seed: 100 * j.final_of(measure) for j in b.done}
    return [fb[s] - fa[s] for s in sorted(set(fa) & set(fb), key=str)]


def pairs_text(stop: np.ndarray, max_n: int) -> str:
    """Mean / 90th percentile of the pairs taken. A simulated sweep not resolved by ``max_n`` pairs
    is censored there: the mean is then at least the one shown, and a 90th percentile beyond
    ``max_n`` is shown as ``> max_n``, with the share not resolved."""
    beyond = float((stop > max_n).mean())
    taken = np.minimum(stop, max_n)
    mean, p90 = float(taken.mean()), float(np.percentile(stop, 90))
    if beyond == 0:
        return f"{mean:.1f} / {p90:.0f}"
    share = f"{beyond:.0%}" if beyond >= 0.005 else "<1%"
    tail = f"> {max_n}" if p90 > max_n else f"{p90:.0f}"
    return f"at least {mean:.1f} / {tail} (not resolved by {max_n} in {share})"


def coverage(sequences: int = 20000, max_n: int = 20, alpha: float = 0.05) -> str:
    """The confidence sequence against a t-interval recomputed after every pair, under optional
    stopping: how often each ever leaves out the true difference, on normal and heavy-tailed data."""
    draws = {
        "normal": lambda rng, shape: rng.standard_normal(shape),
        "Student's t, 3 degrees of freedom (heavy tails)": lambda rng, shape: rng.standard_t(3, shape),
        "Laplace": lambda rng, shape: rng.laplace(size=shape),
    }
    lines = [
        f"{sequences:,} simulated sweeps of up to {max_n} pairs each (seeded), a look after every pair; how often the "
        f"interval ever left out the true mean difference (nominal: at most {alpha:g}):",
        "",
        "| differences | confidence sequence | 95% t-interval, recomputed at every look |",
        "|---|---|---|",
    ]
    for name, draw in draws.items():
        cs, t = simulate_coverage(draw, sequences, max_n, alpha)
        lines.append(f"| {name} | {cs:.3f} | {t:.3f} |")
    return "\n".join(lines) + "\n"


def at_mean(n: int) -> str:
    """A pair count, or what it means that none is found: the mean difference is at or past the margin."""
    return "none: the mean is at or past the margin" if n >= 10_000 else str(n)


def plan(jobs, margin: float, difference: float, alpha: float, max_n: int) -> str:
    groups = group_jobs(started(jobs), swept_keys(started(jobs)))
    lines = [
        f"Margin ±{margin:g} points, difference to find {difference:g} points; fixed-n: TOST at 5% a side (80% power "
        f"where the true difference is 0, and where it is the mean difference measured so far) and a "
        f"two-sided 5% t-test, 80% power; sequential: the confidence sequence at alpha={alpha:g}, a look after "
        f"every pair, at most {max_n} pairs, mean / 90th percentile over simulated sweeps at the measured spread.",
        "",
        "| comparison | measure | pairs | mean difference | sd | now: 90% CI (TOST) | now: confidence sequence "
        "| fixed-n pairs: equivalence | fixed-n pairs: equivalence at the mean difference "
        "| fixed-n pairs: difference | sequential pairs, no difference | sequential pairs, the difference |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for a, b in itertools.combinations(groups, 2):
        for measure in common_measures([a, b]):
            d = paired_differences(a, b, measure)
            if len(d) < 2:
                continue
            pairs = PairedDifference(tuple(d))
            sd, mean, (low90, high90) = pairs.sd, pairs.mean, pairs.interval(0.90)
            inside = "inside" if pairs.tost_p(margin) < 0.05 else "not inside"
            low, high = confidence_sequence(d, alpha)
            cs = f"[{low:+.2f}, {high:+.2f}]" if math.isfinite(low) else "not finite yet"
            null = stopping_pairs(sd, 0.0, alpha, margin, max_n)
            found = stopping_pairs(sd, difference, alpha, margin, max_n)  # when the difference is there
            lines.append(
                f"| {b.label} - {a.label} | {measure} | {len(d)} | {mean:+.2f} | {sd:.2f} | "
                f"[{low90:+.2f}, {high90:+.2f}], {inside} ±{margin:g} | {cs} | "
                f"{fixed_pairs_for_equivalence(sd, margin)} | {at_mean(fixed_pairs_for_equivalence(sd, margin, mean))} | "
                f"{fixed_pairs_to_differ(sd, difference)} | "
                f"{pairs_text(null, max_n)} | {pairs_text(found, max_n)} |"
            )
    return "\n".join(lines) + "\n"
