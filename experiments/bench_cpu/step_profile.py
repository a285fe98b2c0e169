"""Where a training step's time goes on this CPU, in fp32 and in bf16-mixed: torch.profiler over the
framework's own batches, network, loss and optimizer in a plain loop (``resnet_exp.bench``'s plain
loop: the same step as a job's, without Lightning's few milliseconds), its operators' own time
sorted into the step's parts, and the convolutions' arithmetic rate against the machine's peak.

    python experiments/bench_cpu/step_profile.py [--steps 20] [--warmup 5] [--out step_profile.md] [KEY=VALUE ...]

Parts, by operator (self time: an operator's own, not its children's): the convolutions (forward
and both backward passes), BatchNorm (forward, backward), activations (ReLU and its backward),
pooling, the residual additions and other elementwise work, the loss, the linear layer, the
optimizer's update (its ``record_function`` region), the data gather (the batch indexed from the
resized set, scaled and laid out channels_last), and casts (bf16 autocast's copies). The rest is
named "other".

The convolutions' rate: torch.profiler's FLOP count of the forward convolutions (``with_flops``),
times 3 for forward and both backward passes (the backward of a convolution is two convolutions
of the same size), over the convolutions' own time. The peak it is set against: the cores torch
uses x the clock /proc/cpuinfo reports x the FLOPs a core can issue per cycle. The CPU names
itself only "AMD EPYC" (AVX512-BF16), so the per-cycle figure is not known: the table gives the
peak for both vector widths its generation may have (``FLOPS_PER_CYCLE``), and a fraction over
100% rules that width (with the reported clock) out.

``--out FILE.md`` also writes the measurements as ``FILE.json``; ``--table FILE.json`` makes the
table again from them, without measuring.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile, record_function

from resnet_exp.command_line import load_config
from resnet_exp.training.hardware import keep_freed_memory, machine
from resnet_exp.training.speed import plain_parts

PARTS = (  # (part, operators whose own time it is), first match wins
    ("convolution", r"convolution|conv2d|mkldnn_conv"),
    ("BatchNorm", r"batch_norm"),
    ("activation", r"relu|threshold_backward|clamp_min"),
    ("pooling", r"pool"),
    ("loss", r"cross_entropy|log_softmax|nll_loss"),
    ("linear", r"addmm|^aten::mm$|linear"),
    ("casts", r"_to_copy|^aten::to$|^aten::copy_$"),
    ("elementwise", r"^aten::(add|add_|mul|mul_|div|div_|sum|fill_|zero_|zeros_like|ones_like|mean)$"),
)
# FLOPs a core issues per cycle, by what its vector units may be (the CPU does not say which): two
# FMA pipes 256 bits wide, AVX-512 issued over both (Zen 4), or 512 bits wide (Zen 5); bf16's
# VDPBF16PS makes two products per fp32 lane, twice fp32's.
FLOPS_PER_CYCLE = {
    "2 x 256-bit FMA": {"32-true": 32, "bf16-mixed": 64},
    "2 x 512-bit FMA": {"32-true": 64, "bf16-mixed": 128},
}


def part_of(name: str) -> str:
    return next((part for part, pattern in PARTS if re.search(pattern, name)), "other")


def clock_hz() -> float:
    """The clock /proc/cpuinfo reports (its first core's ``cpu MHz``)."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("cpu MHz"):
            return float(line.split(":")[1]) * 1e6
    raise RuntimeError("/proc/cpuinfo names no clock")


def step_profile(overrides: list[str], precision: str, steps: int, warmup: int) -> dict:
    """One precision's profile: milliseconds per step by part, and the convolutions' FLOPs."""
    cfg = load_config([*overrides, f"trainer.precision={precision}"])
    keep_freed_memory()
    net, optimizer, batches = plain_parts(cfg, torch.device("cpu"))

    def step() -> None:
        with record_function("data gather"):
            x, y = next(batches)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
            loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        with record_function("optimizer"):
            optimizer.step()

    for _ in range(warmup):
        step()
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        for _ in range(steps):
            step()
    events = prof.events()
    total_ms = sum(e.self_cpu_time_total for e in events) / 1000 / steps
    regions = {"data gather": 0.0, "optimizer": 0.0}
    for e in events:  # the regions' operators count for the region, not for their kind
        if e.name in regions:
            regions[e.name] += e.cpu_time_total / 1000 / steps
    by_part: dict[str, float] = defaultdict(float)
    region_ops = set()
    for e in events:
        parent = e.cpu_parent
        while parent is not None:
            if parent.name in regions:
                region_ops.add(id(e))
                break
            parent = parent.cpu_parent
    flops = 0
    for e in events:
        if e.name in regions or id(e) in region_ops:
            continue
        by_part[part_of(e.name)] += e.self_cpu_time_total / 1000 / steps
        outer = e.cpu_parent is None or part_of(e.cpu_parent.name) != "convolution"
        if part_of(e.name) == "convolution" and e.flops and outer:  # counted once, at the outermost call
            flops += e.flops
    by_part.update(regions)
    return {
        "precision": precision,
        "ms_per_step": total_ms,
        "by_part": dict(by_part),
        "conv_gflop_per_step": 3 * flops / steps / 1e9,
        "batch": cfg.data.batch_size,
    }


def table(results: list[dict], threads: int, hz: float, who: str) -> str:
    parts = [p for p, _ in PARTS] + ["data gather", "optimizer", "other"]
    lines = [
        "# Where a training step's time goes",
        "",
        f"Made by `step_profile.py` on {who}, {threads} torch threads, clock {hz / 1e9:.2f} GHz (/proc/cpuinfo), "
        f"batch {results[0]['batch']}, the default recipe's network and step; operators' own time per step "
        "(torch.profiler), by part:",
        "",
        "| part | " + " | ".join(f"{r['precision']}: ms / step | share" for r in results) + " |",
        "|---|" + "---|---|" * len(results),
    ]
    for part in parts:
        cells = []
        for r in results:
            ms = r["by_part"].get(part, 0.0)
            cells += [f"{ms:.1f}", f"{ms / r['ms_per_step']:.1%}"]
        lines.append(f"| {part} | " + " | ".join(cells) + " |")
    lines.append("| all | " + " | ".join(f"{r['ms_per_step']:.1f} | 100%" for r in results) + " |")
    widths = list(FLOPS_PER_CYCLE)
    lines += [
        "",
        "The convolutions' arithmetic rate against the machine's peak, for each vector width it may have:",
        "",
    ]
    lines += [
        "| precision | conv GFLOP a step | conv ms a step | GFLOP/s | "
        + " | ".join(f"peak if {w} | fraction" for w in widths)
        + " |",
        "|---|---|---|---|" + "---|---|" * len(widths),
    ]
    for r in results:
        ms = r["by_part"].get("convolution", 0.0)
        rate = r["conv_gflop_per_step"] / (ms / 1000) if ms else float("nan")
        cells = []
        for w in widths:
            peak = threads * hz * FLOPS_PER_CYCLE[w][r["precision"]] / 1e9
            cells += [f"{peak:.0f}", f"{rate / peak:.0%}" + (" (ruled out)" if rate > peak else "")]
        lines.append(
            f"| {r['precision']} | {r['conv_gflop_per_step']:.1f} | {ms:.0f} | {rate:.0f} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None, help="write the table here (else print it)")
    parser.add_argument("--table", type=Path, default=None, help="make the table from this JSON, measuring nothing")
    parser.add_argument("overrides", nargs="*", help="config overrides, as for python -m resnet_exp.run")
    args = parser.parse_args(argv)
    if args.table:
        record = json.loads(args.table.read_text())
    else:
        results = [step_profile(args.overrides, p, args.steps, args.warmup) for p in ("32-true", "bf16-mixed")]
        m = machine(torch.device("cpu"))
        who = f"{m['cpu']} ({'/'.join(m['isa'])}), torch {m['torch']}"
        record = {"results": results, "threads": torch.get_num_threads(), "hz": clock_hz(), "who": who,
                  "steps": args.steps, "warmup": args.warmup, "overrides": args.overrides}  # fmt: skip
    made = table(record["results"], record["threads"], record["hz"], record["who"])
    if args.out:
        args.out.write_text(made)
        if not args.table:
            args.out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    else:
        print(made, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
