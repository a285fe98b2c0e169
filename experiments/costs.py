"""What every committed experiment cost, from its kept records alone (status.json, metrics.csv), so
that no cost in the docs is a figure typed by hand: per folder of records, the jobs completed, the
epochs they trained, the time an epoch took (``time/epoch_s``: training, precise BN and the test
set) and a job took (its epochs' sum; the attempt's wall time where the job ran in one attempt),
the jobs that were stopped and resumed, and the machine each ran on (status.json's ``machine``,
kept since jobs record it; older records say "not recorded", and their READMEs say which CPU).

    python experiments/costs.py            # print the table
    python experiments/costs.py --write    # write experiments/costs.md
    python experiments/costs.py --check    # exit 1 if experiments/costs.md is not this table
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from resnet_exp.runs.records import read_metrics, read_status

HERE = Path(__file__).resolve().parent
COSTS = HERE / "costs.md"


def record_folders(experiments: Path) -> list[Path]:
    """Every folder of kept job records (numbered job folders with a status.json) under ``experiments``."""
    found = {p.parent.parent for p in experiments.glob("*/*/[0-9]*/status.json")}
    return sorted(found, key=lambda p: str(p.relative_to(experiments)))


def machine_of(status: dict) -> str:
    found = status.get("machine")
    if not found:
        return "not recorded"
    isa = "/".join(found.get("isa") or []) or "no AVX2"
    return f"{found['cpu']} ({isa}), {found['threads']} threads" + (f", {found['gpu']}" if found.get("gpu") else "")


def spread(values: list[float], unit: str, digits: int = 0) -> str:
    """min / median / max, or the one value."""
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.{digits}f} {unit}"
    lo, mid, hi = min(values), statistics.median(values), max(values)
    return f"{lo:.{digits}f} / {mid:.{digits}f} / {hi:.{digits}f} {unit}"


def table(experiments: Path = HERE) -> str:
    lines = [
        "# What each experiment cost, from its records",
        "",
        "Made by `python experiments/costs.py --write` from the kept records; the suite checks it is current.",
        "Per folder of job records: jobs completed (of those kept), their epochs, the time an epoch took",
        "(`time/epoch_s`: training, precise BN and the test set) and a job took (the sum of its epochs,",
        "start-up left out), as min / median / max; the jobs whose last attempt resumed after a whole",
        "epoch (a stop within the first epoch leaves no such mark); and the machine, where the records",
        "say it (jobs record it since it was added; the others' READMEs name the CPU). A row pools",
        "its folder's jobs, which may have run on different machines: where the records do not say,",
        "the experiment's README does. Epoch times include whatever else the machine ran then: the",
        "maxima are jobs that shared it.",
        "",
        "| records | jobs completed | epochs | an epoch | a job (sum of its epochs) | resumed | machine |",
        "|---|---|---|---|---|---|---|",
    ]
    for folder in record_folders(experiments):
        jobs = sorted((p for p in folder.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
        statuses = {p.name: read_status(p) for p in jobs}
        done = [p for p in jobs if statuses[p.name].get("status") == "completed"]
        epoch_s = [r["time/epoch_s"] for p in done for r in read_metrics(p) if "time/epoch_s" in r]
        job_min = [sum(r.get("time/epoch_s", 0.0) for r in read_metrics(p)) / 60 for p in done]
        epochs = sorted({len(read_metrics(p)) for p in done})
        resumed = [f"{p.name} (after {statuses[p.name]['resumed_after_epoch']})" for p in done
                   if statuses[p.name].get("resumed_after_epoch")]  # fmt: skip
        machines = sorted({machine_of(statuses[p.name]) for p in done})
        lines.append(
            f"| `{folder.relative_to(experiments)}` | {len(done)} of {len(jobs)} | {', '.join(map(str, epochs))} | "
            f"{spread(epoch_s, 's')} | {spread(job_min, 'min', 1)} | "
            f"{', '.join(resumed) or 'none'} | {'; '.join(machines)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {COSTS.name}")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if {COSTS.name} is not current")
    args = parser.parse_args(argv)
    made = table()
    if args.write:
        COSTS.write_text(made)
    elif args.check:
        if not COSTS.is_file() or COSTS.read_text() != made:
            print(f"{COSTS} is not what the records give: run python experiments/costs.py --write", file=sys.stderr)
            return 1
    else:
        print(made, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
