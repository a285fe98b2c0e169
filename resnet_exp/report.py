"""``python -m resnet_exp.report SWEEP_DIR [SWEEP_DIR ...] [--out DIR]``: a sweep in, a report out.

Reads every job's resolved config (config.yaml), per-epoch metrics (metrics.csv) and status
(status.json), groups the jobs that are equal but for the seed, and writes into ``--out`` (default:
the first sweep directory):

- ``report.md``: what was swept and what was held fixed; per group, n runs, final test accuracy (the
  headline) and the test accuracy of the best epoch (chosen on the validation split where the runs
  hold one out, ``data.val_size``; else on the test set, and labelled so) as mean ± std with a 95%
  t-interval, the epoch-1 training loss (the seed's early-training number), the epoch of the
  best, the mean epoch time; every pair
  of groups compared on final test accuracy (paired by seed where both groups ran the same seeds,
  else Welch's t-test), with a 95% interval, a p-value (raw and Holm-adjusted) and a plain sentence;
  and every job that did not complete, by name, with its status and last epoch.
- ``curves.png``: test accuracy and train loss per epoch, mean line and ± std band per group.
- ``summary.csv``: one row per job.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from resnet_exp.analysis.groups import select
from resnet_exp.analysis.jobs import ReportError, read_sweeps, read_wandb, read_wandb_offline
from resnet_exp.analysis.render import left_out, report
from resnet_exp.command_line import described


def default_out(args: argparse.Namespace) -> Path:
    """Where a report goes without --out: into the (first) sweep it reads, also when it reads the
    sweep's W&B offline files; for runs read from W&B online, outputs/reports/GROUP."""
    if args.sweeps:
        return args.sweeps[0]
    if args.wandb_offline:
        return args.wandb_offline[0] / "wandb_report"
    return Path("outputs") / "reports" / str(args.group)


def shown(path: Path) -> Path:
    """A folder as the report names it: relative to the working directory where it lies under it
    (a committed report then names its records as a clone has them), else absolute; no ``..``."""
    path, here = path.resolve(), Path.cwd().resolve()
    return path.relative_to(here) if path.is_relative_to(here) else path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resnet_exp.report", description=described(__doc__))
    parser.add_argument("sweeps", nargs="*", type=Path, help="sweep directories (outputs/sweeps/...)")
    parser.add_argument("--wandb", metavar="ENTITY/PROJECT", help="read the runs from W&B instead (online)")
    parser.add_argument("--group", help="with --wandb: the sweep's W&B group (in its sweep.yaml)")
    parser.add_argument(
        "--wandb-offline",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="read the W&B offline run files under DIR instead of the job directories",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write (default: the first sweep directory; DIR/wandb_report for --wandb-offline; "
        "outputs/reports/GROUP for --wandb)",
    )
    parser.add_argument("--title", default=None, help="the report's heading")
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUE[,VALUE...]",
        help="only the jobs whose config has one of these values (repeatable), e.g. block.order=post,pre",
    )
    args = parser.parse_args(argv)
    if sum(map(bool, (args.sweeps, args.wandb, args.wandb_offline))) != 1:
        parser.error("give sweep directories, or --wandb ENTITY/PROJECT --group GROUP, or --wandb-offline DIR")
    if args.wandb and not args.group:
        parser.error("--wandb needs --group GROUP (the W&B group in the sweep's sweep.yaml)")
    try:
        if args.wandb:
            jobs, sources = read_wandb(args.wandb, args.group), [f"W&B {args.wandb}, group {args.group}"]
        elif args.wandb_offline:
            jobs, sources = read_wandb_offline(args.wandb_offline), [shown(d) for d in args.wandb_offline]
        else:
            jobs, sources = read_sweeps(args.sweeps), [shown(d) for d in args.sweeps]
        jobs = select(jobs, args.where) if args.where else jobs
        for job in left_out(jobs):
            print(f"warning: {job.name} ({job.path}): {job.error}; left out of every statistic", file=sys.stderr)
        written = report(jobs, sources, args.out or default_out(args), args.title)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {', '.join(map(str, written))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
