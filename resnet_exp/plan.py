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
import sys
from pathlib import Path

from resnet_exp.analysis.groups import select
from resnet_exp.analysis.jobs import ReportError, read_sweeps
from resnet_exp.analysis.planning import coverage, plan
from resnet_exp.command_line import described

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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m resnet_exp.plan", description=described(__doc__))
    p.add_argument("sweeps", nargs="*", type=Path, help="sweep directories or folders of kept records")
    p.add_argument("--margin", type=float, default=0.5, help="points: the equivalence margin (default 0.5)")
    p.add_argument("--difference", type=float, default=1.0, help="points: a difference to find (default 1.0)")
    p.add_argument("--alpha", type=float, default=0.05, help="the confidence sequence's alpha (default 0.05)")
    p.add_argument("--max-seeds", type=int, default=30, help="the sequential rule's limit (default 30)")
    p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE[,VALUE...]",
                   help="only the jobs whose config has KEY at one of the VALUEs (repeatable)")  # fmt: skip
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
