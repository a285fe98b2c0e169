"""What every committed experiment cost, from its kept records alone (status.json, metrics.csv), so
that no cost in the docs is a figure typed by hand: per folder of records, the jobs completed, the
epochs they trained, the time an epoch took (``time/epoch_s``: training, precise BN and the test
set) and a job took (its epochs' sum; the attempt's wall time where the job ran in one attempt),
the jobs that were stopped and resumed, and the machine each ran on (status.json's ``machine``,
kept since jobs record it; older records say "not recorded", and their READMEs say which CPU).

    python experiments/costs.py            # print the table
    python experiments/costs.py --write    # write experiments/costs.md, the README's cost table and
                                           # the planned sweeps' costs (PLANNED) in their READMEs
    python experiments/costs.py --check    # exit 1 if any is not what the records give
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from omegaconf import OmegaConf

from resnet_exp.runs.records import CONFIG_FILE, read_metrics, read_status

HERE = Path(__file__).resolve().parent
COSTS = HERE / "costs.md"
README = HERE.parent / "README.md"
BEGIN = "<!-- costs: made by python experiments/costs.py --write; do not edit by hand -->"
END = "<!-- /costs -->"
# The sweeps designed and not yet run, each with the jobs it will train by kind (network,
# precision, count), whose cost is written into its README between these markers.
PLAN_BEGIN = "<!-- planned cost: made by python experiments/costs.py --write; do not edit by hand -->"
PLAN_END = "<!-- /planned cost -->"
SEED_NETWORK = "14 layers, 96 px, precise BN and running averages"
PLANNED = {
    # run.sh's 18 seeds, each in both precisions (tests/test_experiments.py holds the count to run.sh)
    "bf16_same_machine/README.md": ((SEED_NETWORK, "32-true", 18), (SEED_NETWORK, "bf16-mixed", 18)),
}


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


def kind(job: Path, status: dict) -> tuple[str, str, str]:
    """What a job trained and where: its network (weighted layers and image size), the precision it
    ran in, and its machine (as recorded)."""
    c = OmegaConf.load(job / CONFIG_FILE)
    layers = 2 * sum(int(n) for n in c.model.blocks) + 2
    size = f"{c.data.resize} px" if c.data.resize else "native size"
    evaluation = (
        "precise BN and running averages"
        if c.get("evaluation", {}).get("precise_bn_batches")
        else "running averages only"
    )
    return (
        f"{layers} layers, {size}, {evaluation}",
        str(status.get("precision") or c.trainer.precision),
        machine_of(status),
    )


def kinds_found(experiments: Path = HERE) -> dict[tuple[str, str, str], list[tuple[float, list[float], str]]]:
    """Every completed job of the whole schedule (10 epochs), pooled over folders by network,
    precision and machine: (minutes, its epochs' seconds, its folder) of each."""
    found: dict[tuple[str, str, str], list[tuple[float, list[float], str]]] = {}
    for folder in record_folders(experiments):
        for job in (p for p in folder.iterdir() if p.name.isdigit()):
            status = read_status(job)
            rows = read_metrics(job)
            if status.get("status") != "completed" or len(rows) != 10:
                continue
            epochs = [r["time/epoch_s"] for r in rows if "time/epoch_s" in r]
            found.setdefault(kind(job, status), []).append(
                (sum(epochs) / 60, epochs, str(folder.relative_to(experiments)))
            )
    return found


def by_kind(found: dict) -> str:
    """``kinds_found``'s jobs as a table: what one job costs of each kind."""
    lines = [
        "| network | precision | machine | jobs | a job (sum of its epochs) | an epoch | from |",
        "|---|---|---|---|---|---|---|",
    ]
    for (network, precision, machine), jobs in sorted(found.items()):
        folders = sorted({f for _, _, f in jobs})
        lines.append(
            f"| {network} | {precision} | {machine} | {len(jobs)} | {spread([m for m, _, _ in jobs], 'min', 1)} | "
            f"{spread([e for _, es, _ in jobs for e in es], 's')} | {', '.join(f'`{f}`' for f in folders)} |"
        )
    return "\n".join(lines) + "\n"


def planned(found: dict, plan: tuple[tuple[str, str, int], ...]) -> str:
    """What a sweep not yet run will cost, from the kinds its jobs are (network, precision, how
    many): each kind's min and median job over the records, on whatever machines they ran, and the
    sum; a kind the records lack is said to be unknown."""
    lines = ["| jobs | network | precision | a job, min / median | in all, min / median |", "|---|---|---|---|---|"]
    low = mid = 0.0
    unknown = []
    for network, precision, count in plan:
        minutes = [m for (n, p, _), jobs in found.items() if (n, p) == (network, precision) for m, _, _ in jobs]
        if not minutes:
            unknown.append(f"{network}, {precision}")
            lines.append(f"| {count} | {network} | {precision} | no record of the kind | |")
            continue
        low, mid = low + count * min(minutes), mid + count * statistics.median(minutes)
        lines.append(
            f"| {count} | {network} | {precision} | {min(minutes):.1f} / {statistics.median(minutes):.1f} min | "
            f"{count * min(minutes) / 60:.1f} / {count * statistics.median(minutes) / 60:.1f} h |"
        )
    total = f"{low / 60:.1f} / {mid / 60:.1f} hours" + (f", plus the unknown ({'; '.join(unknown)})" if unknown else "")
    return "\n".join([*lines, "", f"In all: {total} of one machine, at the records' min / median job of each kind."])


def table(experiments: Path = HERE, kinds: str | None = None) -> str:
    """costs.md: per folder of records, then ``kinds`` (``by_kind``'s table, made here if not given)."""
    lines = [
        "# What each experiment cost, from its records",
        "",
        "Made by `python experiments/costs.py --write` from the kept records; the suite checks it is current.",
        "Per folder of job records: jobs completed (of those kept), their epochs, the time an epoch took",
        "(`time/epoch_s`: training, precise BN and the test set) and a job took (the sum of its epochs,",
        "start-up left out), as min / median / max; the jobs whose last attempt resumed after a whole",
        "epoch (a stop within the first epoch leaves no such mark; records older than that field say",
        '"not recorded"); and the machine, where the records',
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
        unknown = [p.name for p in done if "resumed_after_epoch" not in statuses[p.name]]
        if unknown:  # records older than the field: they do not say
            told = "all" if len(unknown) == len(done) else f"{len(unknown)} of {len(done)}"
            resumed.append(f"not recorded ({told}: their records predate it)")
        machines = sorted({machine_of(statuses[p.name]) for p in done})
        lines.append(
            f"| `{folder.relative_to(experiments)}` | {len(done)} of {len(jobs)} | {', '.join(map(str, epochs))} | "
            f"{spread(epoch_s, 's')} | {spread(job_min, 'min', 1)} | "
            f"{', '.join(resumed) or 'none'} | {'; '.join(machines)} |"
        )
    lines += [
        "",
        "## One job of the whole schedule, by kind",
        "",
        "Every completed 10-epoch job above, pooled by what it trained (network and image size), how it",
        "evaluated (precise BN costs a few seconds an epoch), its precision and its machine where",
        "recorded: min / median / max. The minimum is the closest the",
        "records come to an idle machine's cost; the README's cost table is this one.",
        "",
        (kinds or by_kind(kinds_found(experiments))).rstrip("\n"),
    ]
    return "\n".join(lines) + "\n"


def readme_with(text: str, made: str, path: Path = README, begin: str = BEGIN, end: str = END) -> str:
    if text.count(begin) != 1 or text.count(end) != 1:
        raise SystemExit(f"error: {path} lacks its cost markers (one {begin!r}, then one {end!r})")
    head, rest = text.split(begin)
    return f"{head}{begin}\n{made}{end}{rest.split(end, 1)[1]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {COSTS.name}")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if {COSTS.name} is not current")
    args = parser.parse_args(argv)
    found = kinds_found()  # read once: costs.md, the README's table and the plans all use it
    kinds = by_kind(found)
    pages = {COSTS: table(kinds=kinds), README: readme_with(README.read_text(), kinds)}
    for page, plan in PLANNED.items():
        path = HERE / page
        pages[path] = readme_with(path.read_text(), planned(found, plan) + "\n", path, PLAN_BEGIN, PLAN_END)
    made = pages[COSTS]
    if args.write:
        for path, text in pages.items():
            path.write_text(text)
    elif args.check:
        stale = [
            str(p.relative_to(HERE.parent)) for p, text in pages.items() if not p.is_file() or p.read_text() != text
        ]
        if stale:
            print(f"not what the records give: {', '.join(stale)}; run python experiments/costs.py --write",
                  file=sys.stderr)  # fmt: skip
            return 1
    else:
        print(made, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
