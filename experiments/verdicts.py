"""The README's verdicts, written from the kept records by code, so that every number and every
reading in them is the statistics' own: for each comparison the committed experiments make, the
paired difference on both measures with its 95% interval, the 90% interval and TOST's p against a
margin of ±0.5 point (equivalence is claimed only where TOST rejects both sides at 5%), the number
of pairs and how they were gathered (a second sweep of seeds after a look is named, with the
anytime-valid confidence sequence that allows for it), Holm-adjusted p for families of tests,
which of He et al.'s gaps the intervals exclude, and the seed's one run set against the
prediction interval for one run of ours (the comparison one run each allows).

    python experiments/verdicts.py            # print them
    python experiments/verdicts.py --write    # put them into README.md and each experiment's README
    python experiments/verdicts.py --check    # exit 1 if a page's are not these
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import textwrap
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import RECIPES, jobs_of  # noqa: E402  (this folder's table script)
from seed_gap.analyze import probe_rows  # noqa: E402  (bn_probe.py's lines)

from resnet_exp.analysis.groups import Group, select  # noqa: E402
from resnet_exp.analysis.jobs import PRECISE, RUNNING, Job, largest_drop, network, read_sweeps  # noqa: E402
from resnet_exp.analysis.references import HE_ET_AL, SEED  # noqa: E402
from resnet_exp.analysis.sequential import confidence_sequence  # noqa: E402
from resnet_exp.analysis.stats import Estimate, PairedDifference, compare, holm  # noqa: E402

HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"
BEGIN = "<!-- verdicts: made by python experiments/verdicts.py --write; do not edit by hand -->"
END = "<!-- /verdicts -->"
MARGIN = 0.5  # points: the equivalence margin every verdict here uses
ORDERINGS = ("post", "pre", "bn_after_add", "relu_before_add", "relu_only_pre")


def finals(jobs: list[Job], measure: str) -> dict[int, float]:
    """Seed -> final test accuracy in points by ``measure``, of the completed jobs."""
    return {j.seed: 100 * j.final_of(measure) for j in jobs if j.status == "completed" and j.acc(measure)}


def paired(a: dict, b: dict) -> list[float]:
    """b minus a on the seeds both have, in seed order."""
    return [b[s] - a[s] for s in sorted(set(a) & set(b))]


class Paired:
    """A paired difference (points): mean, 95% interval, 90% interval, t-test p, TOST p at ±MARGIN."""

    def __init__(self, d: list[float]) -> None:
        found = PairedDifference(tuple(d))
        self.d, self.n, self.mean = d, found.n, found.mean
        self.ci95, self.ci90 = found.interval(0.95), found.interval(0.90)
        self.p, self.tost_p = found.p, found.tost_p(MARGIN)

    @property
    def equivalent(self) -> bool:
        return self.tost_p < 0.05

    def text(self) -> str:
        lo, hi = self.ci95
        return f"{self.mean:+.2f} points (95% CI {lo:+.2f} to {hi:+.2f}, p = {self.p:.2g})"

    def equivalence(self) -> str:
        lo, hi = self.ci90
        reading = "inside" if self.equivalent else "not inside"
        return f"90% CI {lo:+.2f} to {hi:+.2f}, {reading} ±{MARGIN:g}; TOST p = {self.tost_p:.3f}"


def recipe_jobs(ordering: str) -> tuple[list[Job], list[str]]:
    return jobs_of(RECIPES[0], ordering, HERE)


def post_vs_pre(up: str = "") -> str:
    (post, _), (pre, _) = recipe_jobs("post"), recipe_jobs("pre")
    on = {m: Paired(paired(finals(post, m), finals(pre, m))) for m in (PRECISE, RUNNING)}
    later = sorted(j.seed for j in pre if "jobs_more_seeds" in str(j.path))
    first = sorted(j.seed for j in pre if j.seed not in later)
    loss = {j.seed: j.curve("train/loss")[0] for j in post}, {j.seed: j.curve("train/loss")[0] for j in pre}
    slower = sum(loss[1][s] > loss[0][s] for s in set(loss[0]) & set(loss[1]))
    cs = {m: confidence_sequence(on[m].d) for m in (PRECISE, RUNNING)}
    cs_inside = [m for m in (PRECISE, RUNNING) if -MARGIN < cs[m][0] and cs[m][1] < MARGIN]
    design = (
        f"the {len(first)} pairs of one sweep, then {len(later)} more from a second sweep run after the first "
        f"interval was read (`block_order/jobs_more_seeds`): a fixed-n interval does not allow for that look; "
        f"the anytime-valid confidence sequence over all {on[PRECISE].n} pairs, which does "
        f"([docs/sequential.md]({up}docs/sequential.md)), is {cs[PRECISE][0]:+.2f} to {cs[PRECISE][1]:+.2f} with "
        f"precise BN and {cs[RUNNING][0]:+.2f} to {cs[RUNNING][1]:+.2f} on the running averages"
        if later
        else f"{on[PRECISE].n} pairs of one sweep"
    )
    apart = [m for m in (PRECISE, RUNNING) if on[m].p < 0.05]
    told = f"told apart with {' and '.join(apart)}" if apart else "not distinguishable on either measure"
    readings = []
    for m in (PRECISE, RUNNING):
        if not on[m].equivalent:
            readings.append(f"with {m} not shown equal within ±{MARGIN:g} point")
        elif not later:
            readings.append(f"with {m} equal within ±{MARGIN:g} point (TOST)")
        elif m in cs_inside:
            readings.append(f"with {m} equal within ±{MARGIN:g} point, also by the anytime-valid sequence")
        else:  # the fixed-n test does not allow for the look between the two sweeps; the sequence does
            readings.append(
                f"with {m} not shown equal within ±{MARGIN:g} point by the anytime-valid sequence, which allows for "
                "the look between its two sweeps (a fixed-n TOST, which does not, would say equal)"
            )
    within = "; ".join(readings)
    return (
        f"- **Post vs pre in fp32, {on[PRECISE].n} seeds paired: {told}; {within}** "
        f"([`block_order`]({up}experiments/block_order/)): pre minus post "
        f"{on[PRECISE].text()} with precise BN ({on[PRECISE].equivalence()}) and {on[RUNNING].text()} on the "
        f"running averages ({on[RUNNING].equivalence()}). The pairs: {design}. Pre's epoch-1 loss is the higher in "
        f"{slower} of {len(set(loss[0]) & set(loss[1]))} seeds ({np.mean(list(loss[1].values())):.2f} "
        f"against {np.mean(list(loss[0].values())):.2f} on average; the seed's {SEED['pre'].first_loss:.3f} against "
        f"{SEED['post'].first_loss:.3f})."
    )


def bf16_vs_fp32(up: str = "") -> str:
    fp32 = select(read_sweeps([HERE / "bf16_vs_fp32" / "jobs"]), ["trainer.precision=32-true"])
    bf16 = select(read_sweeps([HERE / "seed_gap" / "jobs"]), ["loss.reduction=batch_size"])
    on = {m: Paired(paired(finals(fp32, m), finals(bf16, m))) for m in (PRECISE, RUNNING)}
    verdict = "equivalent" if on[PRECISE].equivalent else "not shown equivalent"
    stays = "" if on[PRECISE].equivalent else ", so fp32 stays the default"
    return (
        f"- **bf16 is {verdict} to fp32 within ±0.5 point{stays}** "
        f"([`bf16_vs_fp32`]({up}experiments/bf16_vs_fp32/), post, {on[PRECISE].n} seeds paired): bf16-mixed minus "
        f"fp32 {on[PRECISE].text()} with precise BN ({on[PRECISE].equivalence()}) and {on[RUNNING].text()} on the "
        f"running averages ({on[RUNNING].equivalence()}). The two arms' records do not name their machines "
        f"(its README does): precision is not separated from the machine here. What each job cost: "
        f"[`experiments/costs.md`]({up}experiments/costs.md)."
    )


def orderings_compared() -> tuple[list[int], dict[str, Group], dict[str, dict[tuple[str, str], object]]]:
    """He et al.'s five orderings on the seeds all completed: their groups, and per measure every pair
    compared (b minus a, as the report's), Holm-adjusted over the ten pairs."""
    jobs = {o: recipe_jobs(o)[0] for o in ORDERINGS}
    seeds = set.intersection(*(set(finals(jobs[o], PRECISE)) for o in ORDERINGS))
    groups = {o: Group(o, [j for j in jobs[o] if j.seed in seeds]) for o in ORDERINGS}  # paired on these seeds
    found = {}
    for m in (PRECISE, RUNNING):
        found[m] = {(a, b): compare(groups[b], groups[a], m) for a, b in itertools.combinations(ORDERINGS, 2)}
        holm(list(found[m].values()))
    return sorted(seeds), groups, found


def errors(groups: dict[str, Group], m: str) -> dict[str, float]:
    """Mean test error (%) per ordering by measure ``m``."""
    return {o: float(np.mean([100 - 100 * j.final_of(m) for j in groups[o].done])) for o in ORDERINGS}


def identity_mappings(up: str = "") -> str:
    seeds, groups, compared = orderings_compared()
    parts, separated = [], []
    layers = {network(j)[1] for o in ORDERINGS for j in groups[o].jobs}
    for m in (PRECISE, RUNNING):
        found = compared[m]
        pairs = list(found)
        smallest = min(pairs, key=lambda p: found[p].p_holm)
        separated.append(found[smallest].p_holm < 0.05)
        # He et al.'s gap in accuracy, b minus a: a's test error minus b's; ours in points
        theirs = {(a, b): HE_ET_AL[a][1] - HE_ET_AL[b][1] for a, b in pairs}
        ours = {p: (100 * found[p].low, 100 * found[p].high) for p in pairs}
        excluded = [p for p in pairs if not ours[p][0] <= theirs[p] <= ours[p][1]]
        error = errors(groups, m)
        tau = stats.kendalltau([HE_ET_AL[o][1] for o in ORDERINGS], [error[o] for o in ORDERINGS])
        widest = max(abs(100 * c.diff) for c in found.values())
        a, b = smallest
        parts.append(
            f"with {m} every pairwise difference is within {widest:.1f} points (the smallest Holm-adjusted p is "
            f"{found[smallest].p_holm:.2f}, raw {found[smallest].p:.2g}, for `{b}` minus `{a}`); Kendall's tau between "
            f"He et al.'s ranking and ours is {tau.statistic:+.2f} (p = {tau.pvalue:.2f}: "
            + ("the ranks agree beyond chance" if tau.pvalue < 0.05 and tau.statistic > 0 else
               "the ranks disagree beyond chance" if tau.pvalue < 0.05 else
               "the ranks neither show their ranking nor rule it out")
            + f"); He et al.'s gap lies outside our 95% CI for {len(excluded)} of "
            f"{len(pairs)} pairs" + (f" (e.g. `{excluded[0][1]}` minus `{excluded[0][0]}`: theirs "
            f"{theirs[excluded[0]]:+.2f}, ours {ours[excluded[0]][0]:+.2f} to {ours[excluded[0]][1]:+.2f})"
            if excluded else "")
        )  # fmt: skip
    verdict = "the data separate no pair" if not any(separated) else "some pair is separated (Holm, 5%)"
    (depth,) = layers
    close = (
        f" On this {depth}-layer network, 10 epochs of Fashion-MNIST, the ordering moves final accuracy by less than "
        "these seeds resolve."
        if not any(separated)
        else ""
    )
    return (
        f"- **He et al.'s five orderings, {len(seeds)} seeds each in fp32, paired: {verdict}** "
        f"([`identity_mappings`]({up}experiments/identity_mappings/), seeds {', '.join(map(str, sorted(seeds)))} of "
        f"every ordering): {parts[0]}; {parts[1]}.{close}"
    )


def identity_mappings_page(up: str = "") -> str:
    """identity_mappings' page: the verdict, then each measure's pairwise differences and ranking
    beside He et al.'s Table 2."""
    seeds, groups, compared = orderings_compared()
    lines = [
        identity_mappings(up),
        "",
        "Paired by seed (`report.md`), before and after Holm's correction across the ten pairs:",
        "",
    ]
    ranks = {}
    for m, name in (
        (PRECISE, "precise BN (the verdicts' measure)"),
        (RUNNING, "running averages (the seed's protocol)"),
    ):
        found = compared[m]
        widest = max(abs(100 * c.diff) for c in found.values())
        (a, b), c = min(found.items(), key=lambda kv: kv[1].p_holm)
        halves = [100 * (c.high - c.low) / 2 for c in found.values()]
        holms = [f"{c.p_holm:.2g}" for c in found.values()]
        holms = (
            f"{holms[0]} for all ten"
            if len(set(holms)) == 1
            else f"{min(holms, key=float)} to {max(holms, key=float)} over the ten"
        )
        lines.append(
            f"- {name}: every difference within {widest:.2f} points; the closest to a separation is `{b}` minus "
            f"`{a}`, {100 * c.diff:+.2f} (95% CI {100 * c.low:+.2f} to {100 * c.high:+.2f}, p = {c.p:.2g}, Holm "
            f"{c.p_holm:.2g}); Holm-adjusted p {holms}; the 95% CIs are "
            f"±{min(halves):.2f} to ±{max(halves):.2f} points wide."
        )
        error = errors(groups, m)
        ranks[m] = sorted(ORDERINGS, key=error.get)
    for m in (PRECISE, RUNNING):
        error = errors(groups, m)
        tau = stats.kendalltau([HE_ET_AL[o][1] for o in ORDERINGS], [error[o] for o in ORDERINGS])
        order = ", ".join(f"`{o}` {error[o]:.2f}" for o in ranks[m])
        lines += ["", f"Test error (`he_table.md`), mean over {len(seeds)} seeds, {m}, lowest first: {order}; Kendall's "
                     f"tau against He et al.'s ranking {tau.statistic:+.2f} (p = {tau.pvalue:.2f})."]  # fmt: skip
    same = "rank the orderings the same" if ranks[PRECISE] == ranks[RUNNING] else "rank the orderings differently"
    theirs = ", ".join(f"{o} {HE_ET_AL[o][1]:.2f}" for o in ORDERINGS)
    best, worst = min(ORDERINGS, key=lambda o: HE_ET_AL[o][1]), max(ORDERINGS, key=lambda o: HE_ET_AL[o][1])
    lines += [""]
    lines.append(
        f"The two measures {same}; a ranking of means says nothing by itself about which pairs differ (the "
        f"pairwise differences above do). He et al. 2016, Table 2 (CIFAR-10, ResNet-110, test error %): {theirs}; "
        f"their best, `{best}`, and worst, `{worst}`, are {HE_ET_AL[worst][1] - HE_ET_AL[best][1]:.2f} points of "
        "error apart."
    )
    return "\n".join(map(wrap, lines)) + "\n"


def bf16_full_step_page(up: str = "") -> str:
    """bf16_vs_fp32_full_step's page: bf16-mixed against fp32 under the old default (full step,
    running averages only), post, paired by seed; and the same final weights with BatchNorm's
    statistics recomputed (bn_probe.py's lines, both arms)."""
    fp32 = [j for j in read_sweeps([HERE / "bf16_vs_fp32_full_step" / "jobs"]) if j.status == "completed"]
    seeds = sorted(j.seed for j in fp32)
    bf16 = [j for j in select(read_sweeps([HERE / "block_order_full_step" / "jobs"]), ["block.order=post"])
            if j.seed in seeds and j.status == "completed"]  # fmt: skip
    arms = {"bf16": {j.seed: j for j in bf16}, "fp32": {j.seed: j for j in fp32}}
    probe = {
        arm: {int(r["seed"]): 100 * float(r["recomputed"]) for r in probe_rows(HERE / folder / "bn_probe.txt")
              if r["order"] == "post"}
        for arm, folder in (("bf16", "seed_gap"), ("fp32", "bf16_vs_fp32_full_step"))
    }  # fmt: skip
    final = {a: {s: 100 * j.final_of(RUNNING) for s, j in arms[a].items()} for a in arms}
    rows = [
        "| seed | final test acc, bf16 | final test acc, fp32 | bf16 - fp32 | test acc with recomputed BatchNorm "
        "statistics, bf16 / fp32 | final training loss, bf16 / fp32 |",
        "|---|---|---|---|---|---|",
    ]
    for s in seeds:
        b, f = final["bf16"][s], final["fp32"][s]
        losses = " / ".join(f"{arms[a][s].curve('train/loss')[-1]:.4f}" for a in arms)
        rows.append(
            f"| {s} | {b:.2f} | {f:.2f} | {b - f:+.2f} | {probe['bf16'][s]:.2f} / {probe['fp32'][s]:.2f} | {losses} |"
        )
    gap = Paired(paired(final["fp32"], final["bf16"]))
    recomputed = Paired(paired(probe["fp32"], probe["bf16"]))
    within = "within" if gap.equivalent else "not shown within"
    drops = {a: [100 * largest_drop(j.acc(RUNNING)) for j in arms[a].values()] for a in arms}
    loss1 = {a: [j.curve("train/loss")[0] for j in arms[a].values()] for a in arms}
    last = {a: [j.curve("train/loss")[-1] for j in arms[a].values()] for a in arms}
    both = [v for a in probe for s, v in probe[a].items() if s in seeds]
    bullets = [
        f"- **Final test accuracy** (`report.md`): bf16 minus fp32, paired by seed, **{gap.text()}**; "
        f"{gap.equivalence()}: {within} ±{MARGIN:g} point, so fp32 (`32-true`) stays the default "
        "(`conf/trainer/default.yaml`) and the fast path is one override away, `trainer.precision=auto`. "
        f"At n={gap.n} this measure cannot settle it: fp32 runs swing between epochs as bf16 runs do (largest drop "
        f"{mean_sd(drops['fp32'])} points against {mean_sd(drops['bf16'])}), the swing `../seed_gap/` traces to BatchNorm's "
        "running statistics.",
        "- **With the swing taken out** (the same final weights evaluated with BatchNorm statistics recomputed "
        f"over 40 training batches, as `../seed_gap/` does): bf16 minus fp32 {recomputed.text()}, both arms at "
        f"{min(both):.1f}-{max(both):.1f}. Training follows the same curve: epoch-1 loss {mean_sd(loss1['bf16'], 4)} (bf16) "
        f"and {mean_sd(loss1['fp32'], 4)} (fp32), final training loss {np.mean(last['bf16']):.4f} and "
        f"{np.mean(last['fp32']):.4f} on average.",
    ]
    return "\n".join(rows) + "\n\n" + "\n".join(map(wrap, bullets)) + "\n"


def against_the_seed() -> str:
    lines = []
    for order in ("post", "pre"):
        e = Estimate.of(finals(recipe_jobs(order)[0], RUNNING).values())
        n, pi, ci = e.n, e.prediction, (e.low, e.high)
        seed = 100 * SEED[order].final
        inside_pi = "inside" if pi[0] <= seed <= pi[1] else "outside"
        inside_ci = "inside" if ci[0] <= seed <= ci[1] else "outside"
        lines.append(
            f"{order}'s {seed:.1f} lies {inside_pi} the 95% prediction interval for one run of ours "
            f"({pi[0]:.2f} to {pi[1]:.2f}; {n} runs, running averages, the seed's measure; beside our mean's 95% CI, "
            f"{ci[0]:.2f} to {ci[1]:.2f}, which is not the test for one run, it lies {inside_ci})"
        )
    return (
        "- **The seed's one run per ordering, beside ours in fp32** (one run each: the prediction interval for "
        f"a single run is the comparison it allows): {'; '.join(lines)}."
    )


def mean_sd(values: list[float], digits: int = 2) -> str:
    """``mean ± sd`` (the sample standard deviation) of ``values``."""
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def wrap(text: str) -> str:
    """A page's line as the pages keep it: a verdict bullet and a table row whole, prose at 100 columns."""
    if text.startswith(("- **", "|")) or not text:
        return text
    indent = "  " if text.startswith("- ") else ""
    return textwrap.fill(text, 100, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)


def block_order_page(up: str = "") -> str:
    """block_order's page: the verdict, its table beside the seed's one run per ordering, the
    paired differences seed by seed, and the first sweep's spread that sized the second."""
    jobs = {o: sorted(recipe_jobs(o)[0], key=lambda j: j.seed) for o in ("post", "pre")}
    done = {o: [j for j in jobs[o] if j.status == "completed"] for o in jobs}

    def cell(values: list[float]) -> str:
        e = Estimate.of(values)
        return f"{e.mean:.2f} ± {e.std:.2f} [{e.low:.2f}, {e.high:.2f}]"

    def drops(o: str, m: str) -> str:
        d = [100 * largest_drop(j.acc(m)) for j in done[o]]
        return f"{np.mean(d):.2f} [{max(d):.2f}]"

    rows = [
        "| ordering | n | epoch-1 loss | final, precise BN | final, running | best, running (chosen on test) | "
        "largest drop, precise BN | largest drop, running |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for o in jobs:
        rows.append(f"| {o}, the seed | 1 | {SEED[o].first_loss:.4g} | | {100 * SEED[o].final:.1f} | "
                    f"{100 * SEED[o].best:.1f} | | |")  # fmt: skip
    for o in jobs:
        loss = [j.curve("train/loss")[0] for j in done[o]]
        rows.append(
            f"| {o} | {len(done[o])} | {mean_sd(loss, 3)} | "
            f"{cell([100 * j.final_of(PRECISE) for j in done[o]])} | {cell([100 * j.final_of(RUNNING) for j in done[o]])} | "
            f"{cell([100 * max(j.acc(RUNNING)) for j in done[o]])} | {drops(o, PRECISE)} | {drops(o, RUNNING)} |"
        )
    on = {m: Paired(paired(finals(done["post"], m), finals(done["pre"], m))) for m in (PRECISE, RUNNING)}
    per_seed = ", ".join(f"{d:+.2f}" for d in on[PRECISE].d)
    first = sorted(j.seed for j in done["pre"] if "jobs_more_seeds" not in str(j.path))
    early = [d for s, d in zip(sorted(set(finals(done["post"], PRECISE)) & set(finals(done["pre"], PRECISE))),
                               on[PRECISE].d) if s in first]  # fmt: skip
    sd = float(np.std(early, ddof=1))
    needed = next(n for n in range(2, 1000) if stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n) <= MARGIN)
    text = [
        post_vs_pre(up),
        "",
        *rows,
        "",
        f"Paired by seed, pre minus post: **{on[PRECISE].text()} with precise BN** (per seed {per_seed}) and "
        f"{on[RUNNING].text()} on the running averages. One comparison per measure, so Holm changes nothing.",
        "",
        f"**More seeds.** With the paired differences' spread over the first sweep's {len(early)} seeds (sd "
        f"{sd:.2f} points, precise BN), a 95% CI of ±{MARGIN:g} point needs about {needed} pairs; so `run.sh` goes on "
        "with further seeds of both orderings as their own sweep (the verdict names the look this makes).",
    ]
    return "\n".join(map(wrap, text)) + "\n"


def full_step(up: str = "") -> str:
    """block_order_full_step beside the seed: the old default (a full step on each epoch's partial batch,
    the running averages only), post and pre, one job per seed; what agrees with the seed's two runs
    and what does not."""
    jobs = {o: [j for j in select(read_sweeps([HERE / "block_order_full_step" / "jobs"]), [f"block.order={o}"])
                if j.status == "completed"] for o in ("post", "pre")}  # fmt: skip
    by_seed = {o: {j.seed: j for j in jobs[o]} for o in jobs}
    seeds = sorted(set(by_seed["post"]) & set(by_seed["pre"]))

    def estimate(values: list[float], digits: int) -> str:
        e = Estimate.of(values)
        return f"{e.mean:.{digits}f} ± {e.std:.{digits}f} [{e.low:.{digits}f}, {e.high:.{digits}f}]"

    loss1 = {o: [j.curve("train/loss")[0] for j in jobs[o]] for o in jobs}
    loss2 = {o: [j.curve("train/loss")[1] for j in jobs[o]] for o in jobs}
    final = {o: [100 * j.final_of(RUNNING) for j in jobs[o]] for o in jobs}
    best = {o: [100 * max(j.acc(RUNNING)) for j in jobs[o]] for o in jobs}
    drop = {o: [100 * j.largest_drop for j in jobs[o]] for o in jobs}
    n = {o: len(jobs[o]) for o in jobs}
    seed = {o: SEED[o] for o in jobs}
    rows = [
        "| | seed post | ours post | seed pre | ours pre |",
        "|---|---|---|---|---|",
        f"| jobs | 1 | {n['post']} | 1 | {n['pre']} |",
        "| epoch-1 training loss | " + " | ".join(f"{seed[o].first_loss:.4g} | {estimate(loss1[o], 4)}" for o in jobs) + " |",
        "| final test acc | " + " | ".join(f"{100 * seed[o].final:.1f} | {estimate(final[o], 2)}" for o in jobs) + " |",
        "| best test acc (epoch chosen on test) | "
        + " | ".join(f"{100 * seed[o].best:.1f} | {estimate(best[o], 2)}" for o in jobs) + " |",
        "| largest epoch-to-epoch drop of test acc (points) | "
        + " | ".join(f"{100 * seed[o].largest_drop[0]:.1f} | {mean_sd(drop[o])} "
                     f"(worst {max(drop[o]):.2f})" for o in jobs) + " |",
    ]  # fmt: skip
    pre_ci = Estimate.of(loss1["pre"])
    holds = "inside" if pre_ci.low <= seed["pre"].first_loss <= pre_ci.high else "outside"
    slower = sum(by_seed["pre"][s].curve("train/loss")[0] > by_seed["post"][s].curve("train/loss")[0] for s in seeds)
    last = {o: [j.curve("train/loss")[-1] for j in jobs[o]] for o in jobs}
    train_acc = {o: [100 * j.curve("train/acc")[-1] for j in jobs[o]] for o in jobs}
    gap = Paired([100 * (by_seed["post"][s].final_of(RUNNING) - by_seed["pre"][s].final_of(RUNNING)) for s in seeds])
    low, high = Estimate.of(gap.d).prediction
    seed_gap = 100 * (seed["post"].final - seed["pre"].final)
    inside = "inside" if low <= seed_gap <= high else "outside"
    told = "told apart" if gap.p < 0.05 else f"not distinguishable at n={gap.n}"
    top = max((100 * max(j.acc(RUNNING)), o, j.seed) for o in jobs for j in jobs[o])
    bullets = [
        "**What agrees.**",
        f"- **Training.** post's epoch-1 loss is {mean_sd(loss1['post'], 4)} "
        f"against the seed's {seed['post'].first_loss:.4g} (its {n['post']} runs between {min(loss1['post']):.4f} and "
        f"{max(loss1['post']):.4f}) and its epoch-2 loss {np.mean(loss2['post']):.4f} (mean) against "
        f"{seed['post'].epochs[1].loss:.4g}; the seed's pre epoch-1 loss, {seed['pre'].first_loss:.4g}, lies {holds} "
        f"the 95% CI of ours ({pre_ci.low:.4f} to {pre_ci.high:.4f}).",
        f"- **pre starts more slowly**, as in the seed: its epoch-1 loss is {np.mean(loss1['pre']) / np.mean(loss1['post']):.1f} "
        f"times post's (the seed's: {seed['pre'].first_loss / seed['post'].first_loss:.1f}), higher in {slower} of "
        f"{len(seeds)} seed pairs; at epoch 10 pre's training loss is {mean_sd(last['pre'], 3)} against post's "
        f"{mean_sd(last['post'], 3)}, training accuracy {np.mean(train_acc['pre']):.1f}% against "
        f"{np.mean(train_acc['post']):.1f}% (`curves.png`).",
        f"- **Neither ordering wins on test accuracy.** post minus pre, final test accuracy, paired by seed: "
        f"{gap.text()}: {told}. The seed's single runs put post {seed_gap:+.1f} points from pre at the end; that "
        f"lies {inside} the 95% prediction interval for one pair of ours ({low:+.2f} to "
        f"{high:+.2f}), the comparison one run each allows.",
        "",
        "**What does not agree.**",
        f"- **Test accuracy swings from epoch to epoch**: the largest drop is {np.mean(drop['post']):.2f} points on "
        f"average for post and {np.mean(drop['pre']):.2f} for pre ({max(max(drop['post']), max(drop['pre'])):.2f} at "
        f"worst), where the seed's runs fell at most {100 * seed['post'].largest_drop[0]:.1f} (post) and "
        f"{100 * seed['pre'].largest_drop[0]:.1f} (pre) by its printed log. So the final epoch's test accuracy depends "
        "on where the swing leaves it (`../seed_gap/` traces the swing to the full step on each epoch's partial "
        "batch), and the spread it makes is what leaves the comparison inconclusive.",
        f"- **The best test accuracy is lower**: {np.mean(best['post']):.2f}% (post) and {np.mean(best['pre']):.2f}% "
        f"(pre) on average (the single best run {top[0]:.2f}%, {top[1]} seed {top[2]}) against the seed's "
        f"{100 * seed['post'].best:.1f}% and {100 * seed['pre'].best:.1f}%.",
    ]
    return "\n".join(rows) + "\n\n" + "\n".join(map(wrap, bullets)) + "\n"


def verdicts() -> str:
    return "\n".join([post_vs_pre(), bf16_vs_fp32(), identity_mappings(), against_the_seed()]) + "\n"


# Each experiment's README holds its own verdict, the same bullet, its links relative to it.
EXPERIMENTS = {
    "block_order": block_order_page,
    "bf16_vs_fp32": bf16_vs_fp32,
    "identity_mappings": identity_mappings_page,
    "block_order_full_step": full_step,
    "bf16_vs_fp32_full_step": bf16_full_step_page,
}


def with_region(text: str, path: Path, made: str) -> str:
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise SystemExit(f"error: {path} lacks its verdict markers (one {BEGIN!r}, then one {END!r})")
    head, rest = text.split(BEGIN)
    return f"{head}{BEGIN}\n{made}{END}{rest.split(END, 1)[1]}"


def pages() -> dict[Path, str]:
    """Every page with a verdict region, and what the region holds."""
    made = {README: verdicts()}
    made.update({HERE / name / "README.md": write(up="../../") + "\n" for name, write in EXPERIMENTS.items()})
    return made


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="put them into README.md and each experiment's README")
    mode.add_argument("--check", action="store_true", help="exit 1 if a page's verdicts are not these")
    args = p.parse_args(argv)
    if not (args.write or args.check):
        print(verdicts(), end="")
        return 0
    stale = []
    for path, made in pages().items():
        text = path.read_text()
        new = with_region(text, path, made)
        if args.write:
            path.write_text(new)
        elif new != text:
            stale.append(str(path.relative_to(HERE.parent)))
    if stale:
        print(f"error: the verdicts of {', '.join(stale)} are not what the records give; run python "
              "experiments/verdicts.py --write", file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
