"""The depth experiment's cost table and plan, from measurements made before any long run, and what
the kept jobs spent against it, and the GPU ladder's cost.

    python experiments/depth/plan.py            # write cost.md, and the plan and the ladder's cost into README.md
    python experiments/depth/plan.py --check    # exit 1 if any is not what the measurements and records make now

Reads ``cost/*.json`` (cost.sh: ``python -m resnet_exp.bench`` of He et al.'s CIFAR network at 20,
56, 110 and 164 layers on Fashion-MNIST at 28 px, and of the seed network at 96 px, fp32 and bf16, on this
machine) and the records of identity_mappings jobs 12-14 (the seed network, fp32, full size, on the
CPU kind this plan is for): a job's epoch takes longer than its training images at the bench's speed
(precise BN, two test passes and the signal probe besides), and those jobs measured by how much
(their ``time/epoch_s`` over 60,000 images at their own ``time/images_per_s``). An epoch here is
then 60,000 / (the bench's images/s) times that factor, and a job ten of them. The plan (which jobs,
how many) is ``PLAN`` below; its cost is the sum of its jobs'. Below the plan, what the jobs kept so
far spent against it (``spent``): their epochs' sum against what the plan gives those epochs, and
each network's fastest epoch against the plan's, since an epoch that shared the machine is slower.

The GPU ladder's cost (``ladder``): the presets ``experiment=depth`` and ``experiment=depth_he_schedule``
(their networks, orderings, seeds, epochs and batch read from the composed presets), each job estimated
the same way from the bench: on this CPU from ``cost/``, on a GPU from ``cost_gpu/`` once a device
session has measured it (``cost.sh``'s header says how); a speed measured at batch 256 only stands in
for batch 128's, and says so.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from collections import Counter
from pathlib import Path

from omegaconf import OmegaConf

from resnet_exp.runs.records import CONFIG_FILE, read_metrics, read_status

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from costs import readme_with  # noqa: E402  (experiments/costs.py: a generated region between its markers)

CALIBRATION = HERE.parent / "identity_mappings" / "jobs"
JOBS = (HERE / "jobs", HERE / "first_epoch_jobs")  # the plan's sweeps' kept records
CALIBRATION_JOBS = ("12", "13", "14")  # relu_only_pre seeds 3-5: fp32, a 2-core AMD EPYC with AVX512-BF16
TRAIN_IMAGES, EPOCHS = 60_000, 10
MODELS = ("seed", "cifar_resnet20", "cifar_resnet56", "cifar_resnet110", "cifar_resnet164")
LAYERS = {"seed": "the seed network (14 layers, 96 px)", "cifar_resnet20": "ResNet-20 (28 px)",
          "cifar_resnet56": "ResNet-56 (28 px)", "cifar_resnet110": "ResNet-110 (28 px)",
          "cifar_resnet164": "ResNet-164 (28 px)"}  # fmt: skip
PRECISIONS = {"32-true": "fp32", "bf16-mixed": "bf16"}
# The plan: (model, precision, networks, seeds, epochs). The seed-recipe sweep: plain, post, pre
# and bn_after_add, 10 epochs; then the first-epoch sweep (added while the first ran): post, pre and
# bn_after_add, their first epoch again with the training curve.
PLAN = (("cifar_resnet20", "32-true", 4, 3, EPOCHS), ("cifar_resnet56", "32-true", 4, 3, EPOCHS),
        ("cifar_resnet20", "32-true", 3, 3, 1), ("cifar_resnet56", "32-true", 3, 3, 1))  # fmt: skip


def spent(epoch: dict[tuple[str, str], float]) -> list[str]:
    """What the plan's jobs kept so far (``JOBS``) spent against it, as lines of the README's plan
    region: jobs complete of the plan's, the sum of their epochs (``time/epoch_s``) against the plan's
    epochs for them, each network's fastest epoch against the plan's epoch, and what the jobs left
    take at the plan's speeds."""
    planned = {(model, precision, epochs): networks * seeds for model, precision, networks, seeds, epochs in PLAN}
    done, took, budget, fastest = 0, 0.0, 0.0, {}
    for folder in JOBS:
        for job in sorted((p for p in folder.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)):
            status = read_status(job)
            if status.get("status") != "completed":
                continue
            rows, c = read_metrics(job), OmegaConf.load(job / CONFIG_FILE)
            model = f"cifar_resnet{2 * sum(c.model.blocks) + 2}"
            key = (model, str(status.get("precision") or c.trainer.precision), int(c.trainer.max_epochs))
            if key not in planned or len(rows) != key[2]:
                continue
            seconds = [r["time/epoch_s"] for r in rows]
            done, took = done + 1, took + sum(seconds)
            budget += key[2] * epoch[model, key[1]]
            fastest[model] = min([*seconds, fastest.get(model, float("inf"))])
    if not done:
        return ["Spent so far: no job of the plan is complete."]
    each = ", ".join(
        f"{LAYERS[m].split(' (')[0]} {fastest[m]:.0f} s against {epoch[m, '32-true']:.0f}"
        for m in MODELS
        if m in fastest
    )
    whole = sum(
        networks * seeds * epochs * epoch[model, precision] for model, precision, networks, seeds, epochs in PLAN
    )
    left = sum(planned.values()) - done
    return [
        f"Spent so far, from the records in {' and '.join(f'`{f.name}/`' for f in JOBS)}: {done} of "
        f"{sum(planned.values())} jobs complete, {took / 3600:.1f} hours (the sum of their epochs) against the plan's "
        f"{budget / 3600:.1f} for them. Each network's fastest epoch against the plan's: {each}; the rest of the "
        "difference is what else the machine ran beside them (Hardware, below)."
        + (
            f" The {left} jobs left take about {(whole - budget) / 3600:.1f} hours at the plan's speeds."
            if left
            else ""
        ),
    ]


def overhead() -> tuple[float, list[str]]:
    """A job's epoch over its training images at its own training speed, from the calibration jobs."""
    ratios, seen = [], []
    for n in CALIBRATION_JOBS:
        with open(CALIBRATION / n / "metrics.csv", newline="") as f:
            for row in csv.DictReader(f):
                ratios.append(float(row["time/epoch_s"]) / (TRAIN_IMAGES / float(row["time/images_per_s"])))
        seen.append(n)
    return statistics.median(ratios), seen


README = HERE / "README.md"
BEGIN = "<!-- plan: made by python experiments/depth/plan.py; do not edit by hand -->"
END = "<!-- /plan -->"
LADDER_BEGIN = "<!-- ladder: made by python experiments/depth/plan.py; do not edit by hand -->"
LADDER_END = "<!-- /ladder -->"
PRESETS = ("depth", "depth_he_schedule")
GPU_COMMAND = 'COST_DIR=$OUT/cost_gpu BATCHES="256 128" MODELS=ladder experiments/depth/cost.sh'


def epoch_s(factor: float, record: dict) -> float:
    """An epoch of a job, seconds: 60,000 training images at the bench record's speed, times the factor."""
    return factor * TRAIN_IMAGES / record["framework"]["images_per_s"]


def measured(folder: Path, on_gpu: bool = False) -> dict[tuple[str, str, int], dict]:
    """The bench records in ``folder`` (cost.sh's, or ``python -m resnet_exp.gpu_check``'s
    ``bench_depth_*.json`` copied there), by (model, precision, batch) read from each record: its
    ``model=`` override (none: the seed network), the precision its framework path resolved to, its
    batch. Counted: eager records of the plan's networks at their own size (28 px for the CIFAR
    network), on a CPU or (``on_gpu``) on GPUs of one kind; any other file is named on stderr as
    skipped. Two records of one kind: the one with more timed steps."""
    found: dict[tuple[str, str, int], dict] = {}
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        if not {"framework", "overrides", "device", "batch_size", "steps"} <= record.keys():
            print(f"skipped {path}: not a bench record", file=sys.stderr)
            continue
        overrides = record["overrides"]
        model = next((o.split("=", 1)[1] for o in overrides if o.startswith("model=")), "seed")
        key = (model, record["framework"]["precision"], int(record["batch_size"]))
        why = (
            f"model {model}, not one of {', '.join(MODELS)}" if model not in MODELS
            else f"precision {key[1]}, not {' or '.join(PRECISIONS)}" if key[1] not in PRECISIONS
            else f"compile={record['framework'].get('compile')}" if record["framework"].get("compile", "none") != "none"
            else "not at 28 px (data.resize=null)" if model != "seed" and "data.resize=null" not in overrides
            else f"measured on {record['device']}" if record["device"].startswith("CPU") == on_gpu
            else None
        )  # fmt: skip
        if why:
            print(f"skipped {path}: {why}", file=sys.stderr)
        elif record["steps"] > found.get(key, {}).get("steps", -1):
            found[key] = record
    devices = sorted({r["device"] for r in found.values()})
    if len(devices) > 1:
        raise SystemExit(f"{folder}: records of {len(devices)} devices ({', '.join(devices)}); keep one kind there")
    return found


def preset_jobs(preset: str) -> tuple[dict[str, int], int, int]:
    """A preset's jobs by network (its sweep expanded as the sweeper does), its epochs and batch."""
    from resnet_exp.config import compose_config
    from resnet_exp.sweeps.checks import job_list

    cfg = compose_config([f"experiment={preset}"], return_hydra_config=True)
    jobs = job_list([f"{key}={value}" for key, value in cfg.hydra.sweeper.params.items()])
    per_network = Counter(dict(o.split("=", 1) for o in job)["model"] for job in jobs)
    return dict(per_network), int(cfg.trainer.max_epochs), int(cfg.data.batch_size)


def joined(cells: list[str]) -> str:
    """Table cells for fp32 / bf16, or one "not measured" where neither was."""
    return "not measured" if set(cells) == {"not measured"} else " / ".join(cells)


def ladder(factor: float, gpu_records: Path = HERE / "cost_gpu") -> tuple[list[str], str]:
    """(cost.md's section on the GPU ladder, the README's ladder sentence): every job of each preset
    at the bench's speed on this CPU and, where measured (``gpu_records``), on a GPU, fp32 and bf16.
    A preset's total over a precision is a number only where every network of it was measured."""
    sources = {"this CPU": measured(HERE / "cost"), "a GPU": measured(gpu_records, on_gpu=True)}
    gpu = sources["a GPU"]
    device = next(iter(gpu.values()))["device"] if gpu else None
    lines = [
        "## The GPU ladder",
        "",
        "Each preset's jobs (`python -m resnet_exp.run experiment=NAME`: its networks, orderings and seeds), "
        f"a job estimated as above: its epochs x {factor:.4f} x 60,000 / (the bench's training images/s). Hours: "
        "the jobs one after another on one otherwise idle machine (both cores of this CPU, or one GPU; the "
        "parallel launcher shortens a GPU's), in fp32, the presets' precision / in bf16 "
        "(`trainer.precision=bf16-mixed`). Hours marked * use the network's speed at batch 256: the preset's "
        "batch was not measured. ResNet-164's speeds on this CPU were measured after the plan, for this table.",
        "",
        "| preset | network | jobs | epochs, batch | " + " | ".join(f"{where}, hours" for where in sources) + " |",
        "|---|---|---|---|" + "---|" * len(sources),
    ]
    says: dict[str, str] = {}  # the README's words for each preset
    for preset in PRESETS:
        per_network, epochs, batch = preset_jobs(preset)
        # (hours, starred) per source and precision, for each network measured
        found: dict[tuple[str, str], list[tuple[float, bool]]] = {(w, p): [] for w in sources for p in PRECISIONS}
        for model, jobs in per_network.items():
            cells = []
            for where, bench in sources.items():
                cell = []
                for precision in PRECISIONS:
                    record, star = bench.get((model, precision, batch)), False
                    if record is None and (model, precision, 256) in bench:
                        record, star = bench[model, precision, 256], True
                    if record is None:
                        cell.append("not measured")
                        continue
                    hours = jobs * epochs * epoch_s(factor, record) / 3600
                    found[where, precision].append((hours, star))
                    cell.append(f"{hours:,.1f}{'*' if star else ''}")
                cells.append(joined(cell))
            lines.append(f"| `{preset}` | {LAYERS[model]} | {jobs} | {epochs}, {batch} | {' | '.join(cells)} |")

        def total(where: str, precision: str) -> str:
            got = found[where, precision]
            if len(got) < len(per_network):
                return f"{len(got)} of {len(per_network)} networks measured" if got else "not measured"
            return f"{sum(h for h, _ in got):,.0f}{'*' if any(s for _, s in got) else ''}"

        whole = [joined([total(where, p) for p in PRECISIONS]) for where in sources]
        lines.append(f"| `{preset}` | in all | {sum(per_network.values())} | | {' | '.join(whole)} |")
        fp32, bf16 = (total("this CPU", p) for p in PRECISIONS)
        on_gpu = ""
        if gpu:
            g32, g16 = (total("a GPU", p) for p in PRECISIONS)
            on_gpu = f"; on one GPU ({device}) {g32} (fp32) / {g16} (bf16)"
        says[preset] = (
            f"`experiment={preset}` ({sum(per_network.values())} jobs): {fp32} hours of this 2-core CPU in fp32 "
            f"({bf16} in bf16){on_gpu}"
        )
    lines += [
        "",
        (
            f"The GPU column is from `cost_gpu/` ({device}); its epochs carry this CPU's factor of {factor:.4f} "
            "(the seed network's jobs here), which a GPU's evaluation and data path need not share."
            if gpu
            else f"No GPU has measured it yet: in a device session, `{GPU_COMMAND}` (the bench of each network, "
            "both precisions and batches) and its records copied into `experiments/depth/cost_gpu/` fill the GPU "
            "column."
        ),
        "",
    ]
    sentence = (
        "Their cost, estimated from the bench (`cost.md`, The GPU ladder: each preset's jobs one after another, "
        "on one idle machine; * where batch 128 was not measured): "
        + "; ".join(says.values())
        + "."
        + ("" if gpu else " On a GPU: not measured yet, no GPU was available to this experiment.")
    )
    return lines, sentence


def cost_page() -> tuple[str, str, str]:
    """(cost.md's text, what the README's plan region holds, its ladder sentence) from the measurements."""
    factor, seen = overhead()
    bench = {(model, precision): r for (model, precision, batch), r in measured(HERE / "cost").items() if batch == 256}
    epoch = {k: epoch_s(factor, record) for k, record in bench.items()}
    any_bench = next(iter(bench.values()))
    lines = [
        "# The depth experiment's cost, before it ran",
        "",
        f"Made by `plan.py` from `cost/*.json` ({any_bench['device']}, torch {any_bench['versions']['torch']}, "
        f"batch {any_bench['batch_size']}, {any_bench['steps']} timed steps after {any_bench['warmup']}) and the "
        f"epoch times of `identity_mappings/jobs/{{{','.join(seen)}}}`: a job's epoch took {factor:.4f} times its "
        "training images at its own speed (precise BN, two test passes, the signal probe), so an epoch here is "
        f"{factor:.4f} x 60,000 / (images/s).",
        "",
        "| network | precision | training images/s | an epoch, s | a job of 10 epochs, min | bf16's speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for model in MODELS:
        for precision, name in PRECISIONS.items():
            if (model, precision) not in bench:
                lines.append(f"| {LAYERS[model]} | {name} | not measured | | | |")
                continue
            speed = bench[model, precision]["framework"]["images_per_s"]
            fp32 = bench.get((model, "32-true"))
            up = f"{speed / fp32['framework']['images_per_s']:.2f}x" if precision != "32-true" and fp32 else ""
            e = epoch[model, precision]
            lines.append(f"| {LAYERS[model]} | {name} | {speed:,.0f} | {e:,.0f} | {EPOCHS * e / 60:,.0f} | {up} |")
    total = 0.0
    lines += [
        "",
        "## The plan",
        "",
        "| network | precision | networks | seeds | epochs | jobs | CPU-hours |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, precision, networks, seeds, epochs in PLAN:
        hours = networks * seeds * epochs * epoch[model, precision] / 3600
        total += hours
        lines.append(
            f"| {LAYERS[model]} | {PRECISIONS[precision]} | {networks} | {seeds} | {epochs} | {networks * seeds} "
            f"| {hours:.1f} |"
        )
    jobs = sum(n * s for _, _, n, s, _ in PLAN)
    total_line = (
        f"In all: {jobs} jobs, about {total:.1f} hours of this machine (both cores), against a budget of about 12."
    )
    lines += ["", total_line, ""]
    plan_start = lines.index("## The plan")
    region = "\n".join([*lines[plan_start + 2 : -1], "(`cost.md`: the measured speeds behind it.)", "", *spent(epoch)])
    ladder_lines, sentence = ladder(factor)
    return "\n".join([*lines, *ladder_lines]), region, sentence


def main() -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--check", action="store_true", help="exit 1 if cost.md or README.md's plan or ladder is stale")
    args = parser.parse_args()
    page, region, sentence = cost_page()
    new_readme = readme_with(README.read_text(), region + "\n", README, BEGIN, END)
    new_readme = readme_with(new_readme, sentence + "\n", README, LADDER_BEGIN, LADDER_END)
    cost = HERE / "cost.md"
    if args.check:
        stale = [p.name for p, text in ((cost, page), (README, new_readme)) if p.read_text() != text]
        if stale:
            print(f"stale: {', '.join(stale)}; run python experiments/depth/plan.py", file=sys.stderr)
            return 1
        return 0
    cost.write_text(page)
    README.write_text(new_readme)
    print(f"written: {cost}, {README} (the plan, the ladder's cost)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
