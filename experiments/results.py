"""The README's Results table, made from the committed experiments' records, so that no number in
it is copied by hand: per ordering and recipe, the completed full-size jobs' epoch-1 loss and final
and best test accuracy on both measures, beside the seed's one run and He et al. 2016's Table 2;
then pre minus post, paired by seed, per recipe: on the seeds both orderings completed (a seed
one of them has not completed yet, e.g. while a sweep runs, is named and left out), else unpaired.

    python experiments/results.py            # print the tables
    python experiments/results.py --write    # put them into README.md, between its markers
    python experiments/results.py --check    # exit 1 if README.md's tables are not these
    python experiments/results.py --experiments DIR   # the tables of records kept under DIR instead

The recipes below name the folders of kept records each draws on (a folder not there yet, e.g. an
experiment still running, adds nothing); the recipe's label is read from the jobs themselves, and
jobs of one row that ran different recipes, or one seed twice, are an error.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from resnet_exp.analysis.groups import Group, select
from resnet_exp.analysis.jobs import PRECISE, RUNNING, Job, ReportError, network, read_sweeps
from resnet_exp.analysis.references import HE_2015_BY_DEPTH, HE_ET_AL, SEED
from resnet_exp.analysis.stats import Estimate, compare

HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"
BEGIN = "<!-- results: made by python experiments/results.py --write; do not edit by hand -->"
END = "<!-- /results -->"


@dataclass(frozen=True)
class Recipe:
    """A recipe's full-size jobs: (folder under experiments/, --where conditions) per source."""

    sources: tuple[tuple[str, tuple[str, ...]], ...]
    orderings: tuple[str, ...]  # the rows it has, measured or not


RECIPES = (
    # today's default: the seed's step, both measures, fp32
    Recipe(
        (
            ("bf16_vs_fp32/jobs", ("trainer.precision=32-true",)),
            ("block_order/jobs", ()),
            ("block_order/jobs_more_seeds", ()),
            ("identity_mappings/jobs", ()),
        ),
        ("post", "pre", "bn_after_add", "relu_before_add", "relu_only_pre"),
    ),
    # the seed's step in bf16 (seed_gap's remedy, reused as bf16_vs_fp32's bf16 arm)
    Recipe((("seed_gap/jobs", ("loss.reduction=batch_size",)),), ("post",)),
    # the old default: the full step, the running averages only, bf16
    Recipe((("block_order_full_step/jobs", ()),), ("post", "pre")),
)


def recipe_label(jobs: list[Job]) -> str:
    """What the jobs ran, read from their records: the step and the precision they trained in."""
    steps = {j.config.get("loss.reduction") for j in jobs}
    precisions = {j.ran_with.split(",")[0] for j in jobs}
    if len(steps) != 1 or len(precisions) != 1:
        raise ReportError(
            f"one row's jobs ran different recipes: loss.reduction {sorted(map(str, steps))}, "
            f"precision {sorted(precisions)} ({', '.join(j.name for j in jobs)})"
        )
    step = {"batch_size": "seed's step", "mean": "full step"}[steps.pop()]
    precision = {"32-true": "fp32", "bf16-mixed": "bf16"}.get(p := precisions.pop(), p)
    return f"{step}, {precision}"


def jobs_of(recipe: Recipe, ordering: str, experiments: Path) -> tuple[list[Job], list[str]]:
    """The recipe's jobs of ``ordering`` under ``experiments`` and the experiments they come from."""
    jobs: list[Job] = []
    folders: list[str] = []
    for folder, where in recipe.sources:
        path = experiments / folder
        if not path.is_dir():
            continue
        try:
            found = select(read_sweeps([path]), [*where, f"block.order={ordering}"])
        except ReportError:  # no job of this ordering there
            continue
        jobs += found
        if (name := folder.split("/")[0]) not in folders:
            folders.append(name)
    seeds = [j.seed for j in jobs]
    if len(set(seeds)) != len(seeds):
        raise ReportError(f"{ordering}: a seed appears twice among {', '.join(j.name for j in jobs)}")
    return jobs, folders


def cell(values: list[float]) -> str:
    return Estimate.of(values).text(scale=100, digits=2) if values else ""


def loss_cell(values: list[float]) -> str:
    e = Estimate.of(values)
    return f"{e.mean:.3f} ± {e.std:.3f}" if e.n > 1 else f"{e.mean:.3f}" if e.n else ""


def tables(experiments: Path = HERE) -> str:
    he_rank = {k: sorted(v for _, v in HE_ET_AL.values()).index(err) + 1 for k, (_, err) in HE_ET_AL.items()}
    lines = [
        "| ordering | recipe (experiments) | n | epoch-1 loss | final, precise BN | final, running "
        "| best, running (chosen on test) | He et al.: test error % (rank) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for order, seed in SEED.items():
        lines.append(
            f"| {order} | the seed's (d2l, MXNet) | 1 | {seed.first_loss:.3f} | | "
            f"{100 * seed.final:.1f} | {100 * seed.best:.1f} | |"
        )
    pairs = []
    for i, recipe in enumerate(RECIPES):
        groups = {}
        for order in recipe.orderings:
            jobs, folders = jobs_of(recipe, order, experiments)
            done = [j for j in jobs if j.status == "completed"]
            if any(j.validated for j in done):
                raise ReportError(f"{order}: a job held out a validation split; the table's best is chosen on test")
            he = f"{HE_ET_AL[order][1]:.2f} ({he_rank[order]})" if i == 0 else ""
            if not done:
                lines.append(f"| {order} | no completed job yet | 0 | | | | | {he} |")
                continue
            label = recipe_label(done)
            links = ", ".join(f"[`{f}`](experiments/{f}/)" for f in folders)
            n = f"{len(done)}" + (f" ({len(jobs) - len(done)} not completed)" if len(jobs) > len(done) else "")
            lines.append(
                f"| {order} | {label} ({links}) | {n} | {loss_cell([j.curve('train/loss')[0] for j in done])} | "
                f"{cell([j.final_of(PRECISE) for j in done if PRECISE in j.measures])} | "
                f"{cell([j.final_of(RUNNING) for j in done])} | {cell([j.best_of(RUNNING) for j in done])} | {he} |"
            )
            groups[order] = (Group(order, done), label)
        if "post" in groups and "pre" in groups:
            pairs.append((groups["pre"][0], groups["post"][0], groups["post"][1]))
    lines += [
        "",
        "| pre minus post | pairs | precise BN: points [95% CI], p | running: points [95% CI], p |",
        "|---|---|---|---|",
    ]
    for pre, post, label in pairs:
        pre, post, waiting = common_seeds(pre, post)
        cells = []
        for measure in (PRECISE, RUNNING):
            if not (measure in pre.measures and measure in post.measures):
                cells.append("not measured")
                continue
            c = compare(pre, post, measure)
            cells.append(
                "too few runs"
                if math.isnan(c.p)
                else f"{100 * c.diff:+.2f} [{100 * c.low:+.2f}, {100 * c.high:+.2f}], p = {c.p:.2f}"
            )
        n = (f"{c.n_a}" if c.paired else f"unpaired, {c.n_a} and {c.n_b}") + (f" ({waiting})" if waiting else "")
        lines.append(f"| {label} | {n} | {' | '.join(cells)} |")
    return "\n".join(lines + ["", *depth_table(experiments)]) + "\n"


# experiments/depth: He et al.'s CIFAR network at 28 px, the seed's recipe in fp32; its planned networks
DEPTH_NETWORKS = (("plain", 20), ("post", 20), ("pre", 20), ("bn_after_add", 20),
                  ("plain", 56), ("post", 56), ("pre", 56), ("bn_after_add", 56))  # fmt: skip


def depth_table(experiments: Path) -> list[str]:
    """Each network of experiments/depth (its block at 6n+2 layers): completed jobs, final training
    loss and test accuracy on both measures, beside He et al.'s test error for the same depth."""
    lines = [
        "| depth: network | layers | n | final training loss | final, precise BN | final, running "
        "| He et al.: test error % (CIFAR-10) |",
        "|---|---|---|---|---|---|---|",
    ]
    folder = experiments / "depth" / "jobs"
    jobs = read_sweeps([folder]) if folder.is_dir() else []
    by: dict[tuple[str, int], list[Job]] = {}
    for job in jobs:
        if job.status in ("not started", "unreadable"):
            continue
        by.setdefault(network(job), []).append(job)
    for block, layers in DEPTH_NETWORKS:
        mine = by.get((block, layers), [])
        done = [j for j in mine if j.status == "completed"]
        he = f"{HE_2015_BY_DEPTH[layers]:.2f}" if block == "post" and layers in HE_2015_BY_DEPTH else ""
        n = f"{len(done)}" + (f" ({len(mine) - len(done)} not completed)" if len(mine) > len(done) else "")
        lines.append(
            f"| {block} ([`depth`](experiments/depth/)) | {layers} | {n} | "
            f"{loss_cell([j.curve('train/loss')[-1] for j in done])} | {cell([j.final_of(PRECISE) for j in done])} | "
            f"{cell([j.final_of(RUNNING) for j in done])} | {he} |"
        )
    return lines


def common_seeds(pre: Group, post: Group) -> tuple[Group, Group, str]:
    """pre and post narrowed to the seeds both completed, where at least two are shared and some are
    not, and what was left out ("" where nothing was): pairs are compared by seed, not mixed with
    the seeds of one ordering whose pair has not completed."""
    shared = {j.seed for j in pre.done} & {j.seed for j in post.done}
    alone = {g.label: sorted((j.seed for j in g.done if j.seed not in shared), key=str) for g in (pre, post)}
    if len(shared) < 2 or not any(alone.values()):
        return pre, post, ""
    left = "; ".join(
        f"{label}'s seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
        for label, seeds in alone.items()
        if seeds
    )
    narrow = [Group(g.label, [j for j in g.done if j.seed in shared]) for g in (pre, post)]
    return narrow[0], narrow[1], f"{left} unpaired, left out"


def readme_with(text: str, made: str) -> str:
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ReportError(f"{README} lacks its results markers (one {BEGIN!r}, then one {END!r})")
    head, rest = text.split(BEGIN)
    return f"{head}{BEGIN}\n{made}{END}{rest.split(END, 1)[1]}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="put the tables into README.md between its markers")
    mode.add_argument("--check", action="store_true", help="exit 1 if README.md's tables are not these")
    p.add_argument(
        "--experiments",
        type=Path,
        default=HERE,
        metavar="DIR",
        help="the folder of the experiments' kept records (default: this one); only printed",
    )
    args = p.parse_args(argv)
    if args.experiments.resolve() != HERE and (args.write or args.check):
        p.error("--experiments DIR prints the tables only; README.md holds those of the committed records")
    if not args.experiments.is_dir():
        p.error(f"--experiments {args.experiments}: no such folder")
    try:
        made = tables(args.experiments)
        if not (args.write or args.check):
            print(made, end="")
            return 0
        text = README.read_text()
        new = readme_with(text, made)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.check:
        if new != text:
            print(
                "error: README.md's results tables are not what the records give; "
                "run python experiments/results.py --write",
                file=sys.stderr,
            )
            return 1
        return 0
    part = README.with_suffix(".md.part")
    part.write_text(new)
    part.replace(README)
    return 0


if __name__ == "__main__":
    sys.exit(main())
