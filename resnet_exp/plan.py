"""``python -m resnet_exp.plan SWEEP_DIR [SWEEP_DIR ...]``: how many seeds a comparison needs, from
what its records (or a pilot sweep's) say of the spread of paired differences.

For every pair of groups of the sweeps (paired by seed, later group minus earlier) and every
measure of test accuracy both took: the pairs there are, the mean and standard deviation of their
differences, and what the records show now (the fixed-n 90% interval, TOST's, and the anytime-valid
confidence sequence of ``hydra/sweeper=sequential``); then, at the measured spread, how many pairs

- a fixed-n design needs to show equivalence within +-margin (TOST at 5% a side, 80% power, a
  true difference of 0) and to find a difference of ``--difference`` points (two-sided 5%, 80%
  power), chosen before it runs and never extended after a look;
- the sequential rule takes (``hydra/sweeper=sequential``, looking after every pair): the mean
  and 90th percentile over simulated sweeps, with a true difference of 0 and of ``--difference``.

    python -m resnet_exp.plan experiments/block_order/jobs experiments/block_order/jobs_more_seeds
    python -m resnet_exp.plan SWEEP --margin 0.5 --difference 1.0 --where block.order=post,pre
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from pathlib import Path

import numpy as np
from scipy import stats

from resnet_exp.analysis.groups import common_measures, group_jobs, select, swept_keys
from resnet_exp.analysis.jobs import ReportError, read_sweeps, started
from resnet_exp.analysis.sequential import (
    confidence_sequence,
    fixed_pairs_for_equivalence,
    fixed_pairs_to_differ,
    simulate_coverage,
    stopping_pairs,
)


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


BEGIN, END = "<!-- plan: ", "<!-- /plan -->"


def regions(path: Path, write: bool) -> int:
    """Remake every region of ``path`` that a ``<!-- plan: ARGS -->`` marker opens, from its own
    arguments (``--coverage`` for the simulation), and write the file or check it."""
    text = path.read_text()
    parts, rest = [], text
    while BEGIN in rest:
        head, rest = rest.split(BEGIN, 1)
        marker, rest = rest.split("-->", 1)
        if END not in rest:
            print(f"error: {path}: a region opened with {BEGIN}{marker}--> has no {END}", file=sys.stderr)
            return 2
        rest = rest.split(END, 1)[1]
        args = marker.split()
        made = coverage() if args == ["--coverage"] else table(parser().parse_args(args))
        parts += [head, f"{BEGIN}{marker}-->\n{made}{END}"]
    new = "".join(parts) + rest
    if write:
        path.write_text(new)
    elif new != text:
        fix = f"python -m resnet_exp.plan --doc {path} --write"
        print(f"{path}'s plan regions are not what the records give: run {fix}", file=sys.stderr)
        return 1
    return 0


def table(options: argparse.Namespace) -> str:
    """The plan of the sweeps and options a command line names (``main``'s, or a doc region's)."""
    jobs = read_sweeps(options.sweeps)
    jobs = select(jobs, options.where) if options.where else jobs
    return plan(jobs, options.margin, options.difference, options.alpha, options.max_seeds)


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
            sd, mean = float(np.std(d, ddof=1)), float(np.mean(d))
            half = stats.t.ppf(0.95, len(d) - 1) * sd / math.sqrt(len(d))
            inside = "inside" if -margin < mean - half and mean + half < margin else "not inside"
            low, high = confidence_sequence(d, alpha)
            cs = f"[{low:+.2f}, {high:+.2f}]" if math.isfinite(low) else "not finite yet"
            null = stopping_pairs(sd, 0.0, alpha, margin, max_n)
            found = stopping_pairs(sd, difference, alpha, margin, max_n)
            lines.append(
                f"| {b.label} - {a.label} | {measure} | {len(d)} | {mean:+.2f} | {sd:.2f} | "
                f"[{mean - half:+.2f}, {mean + half:+.2f}], {inside} ±{margin:g} | {cs} | "
                f"{fixed_pairs_for_equivalence(sd, margin)} | {at_mean(fixed_pairs_for_equivalence(sd, margin, mean))} | "
                f"{fixed_pairs_to_differ(sd, difference)} | "
                f"{pairs_text(null, max_n)} | {pairs_text(found, max_n)} |"
            )
    return "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m resnet_exp.plan", description=__doc__.splitlines()[0])
    p.add_argument("sweeps", nargs="*", type=Path, help="sweep directories or folders of kept records")
    p.add_argument("--margin", type=float, default=0.5, help="points: the equivalence margin (default 0.5)")
    p.add_argument("--difference", type=float, default=1.0, help="points: a difference to find (default 1.0)")
    p.add_argument("--alpha", type=float, default=0.05, help="the confidence sequence's alpha (default 0.05)")
    p.add_argument("--max-seeds", type=int, default=30, help="the sequential rule's limit (default 30)")
    p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE[,VALUE...]")
    p.add_argument("--doc", type=Path, help="a page whose <!-- plan: ARGS --> regions to --write or check")
    p.add_argument("--write", action="store_true", help="with --doc: rewrite its regions (else check them)")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.doc:
        try:
            return regions(args.doc, args.write)
        except ReportError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    if not args.sweeps:
        p.error("give sweep directories (or --doc FILE)")
    for key in ("margin", "difference"):
        if not getattr(args, key) > 0:
            p.error(f"--{key} must be more than 0 points")
    if not 0 < args.alpha < 1:
        p.error("--alpha must be between 0 and 1")
    try:
        print(table(args), end="")
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
