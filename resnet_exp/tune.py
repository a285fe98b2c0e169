"""``python -m resnet_exp.tune SWEEP_DIR [--by block.order] [--key optim.lr] [--seeds 11,12,13,14,15]
[--out DIR]``: each ordering's learning rate, chosen on validation.

Reads a search sweep (``experiment=tuned_orderings``: orderings x learning rates x seeds, with a
validation split), and for each ordering picks the rate whose runs reach the highest mean final
*validation* accuracy (the test set is never looked at). Writes ``tuning.md`` (per ordering and
rate: n, validation accuracy mean ± std, the chosen rate, how far each other rate falls behind it)
and ``lr_curve.png`` (validation accuracy against the rate, per ordering) into ``--out`` (default:
the sweep directory), and prints step 2, one line of overrides per ordering: the ordering, its
rate, the fresh seeds and the same validation split, for ``python -m resnet_exp.run -m``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from resnet_exp.analysis.jobs import ReportError, read_sweeps
from resnet_exp.analysis.tuning import choose, plot, table
from resnet_exp.command_line import described


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resnet_exp.tune", description=described(__doc__))
    parser.add_argument("sweep", type=Path, help="the search sweep's directory")
    parser.add_argument("--by", default="block.order", help="what each gets its own rate (default block.order)")
    parser.add_argument("--key", default="optim.lr", help="the searched key (default optim.lr)")
    parser.add_argument("--seeds", default="11,12,13,14,15", help="the fresh seeds of step 2 (default 11-15)")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: the sweep directory)")
    args = parser.parse_args(argv)
    try:
        jobs = read_sweeps([args.sweep])
        choice = choose(jobs, args.by, args.key)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = args.out or args.sweep
    out.mkdir(parents=True, exist_ok=True)
    (out / "tuning.md").write_text(table(choice, args.by, args.key, args.sweep))
    plot(choice, args.key, out / "lr_curve.png")
    val_size = next(j.config.get("data.val_size") for j in jobs if j.status == "completed")
    for group, c in choice.items():
        print(f"{args.by}={group} {args.key}={c['chosen']:g} seed={args.seeds} data.val_size={val_size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
