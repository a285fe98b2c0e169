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
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import torchvision
from torch.utils.data import DataLoader
from torchvision import transforms

from resnet_exp.command_line import load_config
from resnet_exp.config import ConfigError
from resnet_exp.data import DataError, check, files
from resnet_exp.training.build import PartRefused, build, check_parts, network, trainer_args
from resnet_exp.training.hardware import ISA, keep_freed_memory, machine, synced_clock, uses_gpu


def reference(cfg: Any, device: torch.device, steps: int, warmup: int, eval_batches: int | None) -> dict[str, float]:
    """The textbook pipeline, timed."""
    start = time.perf_counter()
    source = files(cfg.data.name)
    directory = source.locate(cfg.data.root, cfg.data.cache_dir, cfg.data.download)
    resize = [] if cfg.data.resize is None else [transforms.Resize(cfg.data.resize)]
    transform = transforms.Compose([*resize, transforms.ToTensor()])
    train, test = (source.reference_dataset(directory, cfg.data.cache_dir, t, transform) for t in (True, False))
    pin = device.type == "cuda"
    batch = cfg.data.batch_size
    train_loader = DataLoader(train, batch, shuffle=True, num_workers=4, pin_memory=pin, persistent_workers=True)
    test_loader = DataLoader(test, batch, shuffle=False, num_workers=4, pin_memory=pin)
    pl.seed_everything(cfg.seed, verbose=False)
    net = network(cfg).to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=cfg.optim.lr)
    net.train()
    images = 0
    timed_from = None
    batches = iter(train_loader)
    for step in range(warmup + steps):
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(train_loader)
            x, y = next(batches)
        if step == 0:
            first = synced_clock(device)
            startup = first - start
        if step == warmup:
            timed_from = synced_clock(device)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= warmup:
            images += y.numel()
    train_s = synced_clock(device) - timed_from
    net.eval()
    t0 = synced_clock(device)
    with torch.no_grad():
        for i, (x, y) in enumerate(test_loader):
            if eval_batches is not None and i >= eval_batches:
                break
            net(x.to(device, non_blocking=True)).argmax(1)
    eval_s = synced_clock(device) - t0
    return {
        "images_per_s": images / train_s,
        "eval_s": eval_s,
        "startup_s": startup,
        "warmup_s": timed_from - first,
        "steps": steps,
    }


class Timer(pl.Callback):
    """Times the framework's own loop from inside: start-up (fit start to the first batch), the
    training steps after the warm-up ones, the test-set evaluation."""

    def __init__(self, warmup: int, start: float) -> None:
        self.warmup, self.start = warmup, start
        self.first = self.startup = self.timed_from = self.train_end = self.eval_start = self.eval_end = 0.0
        self.images = 0

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule, batch: Any, idx: int) -> None:
        if idx == 0:
            self.first = synced_clock(module.device)
            self.startup = self.first - self.start
        if idx == self.warmup:
            self.timed_from = synced_clock(module.device)

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, out: Any, batch: Any, idx: int):
        if idx >= self.warmup:
            self.images += batch[1].shape[0]
        if idx + 1 == trainer.num_training_batches:
            self.train_end = synced_clock(module.device)

    def on_validation_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.eval_start = synced_clock(module.device)

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.eval_end = synced_clock(module.device)


def framework(cfg: Any, steps: int, warmup: int, eval_batches: int | None) -> dict[str, Any]:
    """The default path of ``python -m resnet_exp.run``, built by its own code, timed."""
    start = time.perf_counter()
    kept = keep_freed_memory()  # as python -m resnet_exp.run does (after the reference: not part of it)
    pl.seed_everything(cfg.seed, verbose=False)
    datamodule, module = build(cfg)
    timer = Timer(warmup, start)
    args = trainer_args(cfg.trainer)
    args.update(
        max_epochs=1,
        limit_train_batches=warmup + steps,
        limit_val_batches=eval_batches if eval_batches is not None else 1.0,
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer = pl.Trainer(**args, logger=False, callbacks=[timer], use_distributed_sampler=False)
    trainer.fit(module, datamodule=datamodule)
    return {
        "images_per_s": timer.images / (timer.train_end - timer.timed_from),
        "eval_s": timer.eval_end - timer.eval_start,
        "startup_s": timer.startup,
        "warmup_s": timer.timed_from - timer.first,
        "steps": steps,
        "pipeline": datamodule.resolved_pipeline(),
        "precision": str(trainer.precision),
        "compile": cfg.compile or "none",
        "memory_format": "channels_last",
        "allocator": "keeps freed memory" if kept else "default",
    }


def plain(cfg: Any, device: torch.device, steps: int, warmup: int) -> dict[str, Any]:
    """The framework's own batches, network and precision in a plain PyTorch loop (no Lightning, no
    metrics, no callbacks): what the framework's loop costs per step is the difference."""
    precision = trainer_args(cfg.trainer)["precision"]
    if precision not in ("bf16-mixed", "32-true", "32", 32):
        return {}
    pl.seed_everything(cfg.seed, verbose=False)
    datamodule, module = build(cfg)
    datamodule.place(device)
    datamodule.setup()
    net = module.net.to(device, memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(net.parameters(), lr=cfg.optim.lr)
    batches = iter(datamodule.train_dataloader())
    images, timed_from = 0, 0.0
    for step in range(warmup + steps):
        if step == warmup:
            timed_from = synced_clock(device)
        x, y = next(batches)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
            loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        images += y.numel() if step >= warmup else 0
    seconds = synced_clock(device) - timed_from
    return {"images_per_s": images / seconds, "ms_per_step": 1000 * seconds / steps, "precision": precision}


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


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
    parser = argparse.ArgumentParser(prog="python -m resnet_exp.bench", description=__doc__.split("\n\n")[0])
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
