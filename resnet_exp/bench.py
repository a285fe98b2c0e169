"""``python -m resnet_exp.bench [--steps N] [--warmup W] [--out FILE] [KEY=VALUE ...]``: training
speed of the framework's default path against the textbook torchvision pipeline, in one process,
on the same network, batch size and learning rate.

- **reference**: torchvision's own data set class (``reference_dataset`` of the data set's files
  module) with ``Resize(96)`` and ``ToTensor()`` in a
  ``DataLoader`` with 4 workers, the model in fp32, a plain PyTorch training loop (no Lightning).
- **framework**: what ``python -m resnet_exp.run`` trains with, built by the same code from the
  same config (``KEY=VALUE`` overrides apply to both where they name the network, the batch size
  or the learning rate): its data pipeline, precision, memory format, Lightning loop and callbacks.

Also, for what the framework's own loop costs per step (Lightning, metrics, callbacks): a plain
PyTorch loop on the framework's batches, network and precision (``plain``, and
``overhead_ms_per_step``; with a tiny network, e.g. ``model.channels=[8] model.blocks=[1]
model.stem_channels=8``, that cost dominates).

For each: training images/s over ``--steps`` steps after ``--warmup`` untimed ones, seconds for
one evaluation of the test set (``--eval-batches`` limits it), start-up seconds (data loading,
model build, moving to the device: everything before the first step) and warm-up seconds (the
untimed steps, where ``compile=...`` compiles).
Prints a table and writes JSON (``--out``, default ``outputs/bench.json``) with the device and versions.
It is a measurement, not a test: run it on the machine you want numbers for.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torchvision

from resnet_exp.command_line import described, load_config
from resnet_exp.config import ConfigError
from resnet_exp.data import DataError, check
from resnet_exp.training.build import PartRefused, check_parts
from resnet_exp.training.hardware import ISA, machine, uses_gpu
from resnet_exp.training.speed import describe_device, framework, plain, reference


def machine_line(found: dict[str, Any] | None) -> str:
    """The machine a result was measured on, in one line (results written before it was kept: so said)."""
    if not found:
        return "machine: not recorded"
    isa = ", ".join(found["isa"]) or "none of " + ", ".join(ISA)
    gpu = f"; GPU {found['gpu']}" if found.get("gpu") else ""
    return (
        f"machine: {found['cpu']} ({isa}; torch kernels {found['kernels']}), {found['cores']} cores, "
        f"{found['threads']} threads{gpu}"
    )


def table(result: dict[str, Any]) -> str:
    ref, fw = result["reference"], result["framework"]
    lines = [
        f"device: {result['device']}; batch {result['batch_size']}; {result['steps']} timed steps after "
        f"{result['warmup']} warm-up steps; torch {result['versions']['torch']}",
        machine_line(result.get("machine")),
        "",
        "| path | train images/s | test eval s | start-up s | warm-up steps s (incl. compile) |",
        "|---|---|---|---|---|",
        f"| reference: torchvision DataLoader (4 workers), fp32 eager | {ref['images_per_s']:,.0f} | "
        f"{ref['eval_s']:.2f} | {ref['startup_s']:.1f} | {ref['warmup_s']:.1f} |",
        f"| framework: pipeline={fw['pipeline']}, precision={fw['precision']}, {fw['memory_format']}, "
        f"compile={fw['compile']}, allocator {fw['allocator']} | "
        f"{fw['images_per_s']:,.0f} | {fw['eval_s']:.2f} | {fw['startup_s']:.1f} | {fw['warmup_s']:.1f} |",
        "",
        f"framework / reference: {result['ratio']:.2f}x training images/s",
    ]
    if result.get("plain"):
        lines.append(
            f"framework loop overhead: {result['overhead_ms_per_step']:+.2f} ms per step "
            f"({fw['ms_per_step']:.2f} against {result['plain']['ms_per_step']:.2f} ms in a plain loop "
            "on the same batches, network and precision)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resnet_exp.bench", description=described(__doc__))
    parser.add_argument("--steps", type=int, default=50, help="timed training steps per path (default 50)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first (default 10)")
    parser.add_argument("--eval-batches", type=int, default=None, help="test batches to evaluate (default: all)")
    parser.add_argument("--out", default="outputs/bench.json", help="JSON file to write (default outputs/bench.json)")
    parser.add_argument("overrides", nargs="*", help="config overrides, as for resnet_exp.run (KEY=VALUE)")
    args = parser.parse_args(argv)
    for name in ("steps", "warmup", "eval_batches"):
        value, least = getattr(args, name), 0 if name == "warmup" else 1
        if value is not None and value < least:
            print(f"error: --{name.replace('_', '-')}={value} must be at least {least}", file=sys.stderr)
            return 2
    try:
        cfg = load_config(args.overrides)
        check(cfg.data.name, cfg.data.root, cfg.data.cache_dir, cfg.data.download)
        check_parts(cfg)  # what run refuses before any work (the accelerator asked for, the optimizer, ...)
    except (ConfigError, DataError, PartRefused) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    device = torch.device("cuda" if uses_gpu(cfg.trainer) else "cpu")
    print(f"reference path: {args.warmup} + {args.steps} steps ...", flush=True)
    ref = reference(cfg, device, args.steps, args.warmup, args.eval_batches)
    print("framework path ...", flush=True)
    fw = framework(cfg, args.steps, args.warmup, args.eval_batches)
    print("plain loop on the framework's batches ...", flush=True)
    loop = plain(cfg, device, args.steps, args.warmup)
    fw["ms_per_step"] = 1000 * cfg.data.batch_size / fw["images_per_s"]
    result = {
        "device": describe_device(device),
        "machine": machine(device),  # the CPU's model and instruction sets, threads, torch: ratios by machine kind
        "batch_size": cfg.data.batch_size,
        "steps": args.steps,
        "warmup": args.warmup,
        "eval_batches": args.eval_batches,
        "overrides": args.overrides,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "pytorch_lightning": pl.__version__,
        },
        "reference": ref,
        "framework": fw,
        "ratio": fw["images_per_s"] / ref["images_per_s"],
        "plain": loop,
        # what Lightning's loop, the metrics and the callbacks add to each step
        "overhead_ms_per_step": fw["ms_per_step"] - loop["ms_per_step"] if loop else None,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
