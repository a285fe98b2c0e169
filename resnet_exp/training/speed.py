"""Training speed measured, for ``python -m resnet_exp.bench``: the textbook torchvision pipeline
(``reference``), the framework's own path as ``python -m resnet_exp.run`` builds it, its loop,
metrics and callbacks included (``framework``), and a plain PyTorch loop on the framework's batches
(``plain``); each returns images/s and its other timings."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision import transforms

from resnet_exp.data import files
from resnet_exp.runs.job import SilentLogger
from resnet_exp.training.build import build, network, trainer_args
from resnet_exp.training.hardware import keep_freed_memory, synced_clock
from resnet_exp.training.job_callbacks import JobContext, job_callbacks


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
    # the job's callbacks from its config (the divergence guard, the signal probe), writing nothing
    callbacks = [timer, *job_callbacks(cfg.callbacks, JobContext(cfg, None, datamodule, None, None))]
    # a logger that writes nothing, for the callbacks that want one (+callbacks=lr_monitor)
    trainer = pl.Trainer(**args, logger=[SilentLogger()], callbacks=callbacks, use_distributed_sampler=False)
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


def plain_parts(cfg: Any, device: torch.device) -> tuple[torch.nn.Module, torch.optim.Optimizer, Iterator]:
    """What a plain PyTorch loop of the framework trains with: its network (built from ``cfg``,
    seeded by ``cfg.seed``, channels_last, in training mode), plain SGD at ``optim.lr``, and its
    batches (the data module's, on ``device``). For ``plain`` and the step measurements of
    experiments/bench_cpu."""
    pl.seed_everything(cfg.seed, verbose=False)
    datamodule, module = build(cfg)
    datamodule.place(device)
    datamodule.setup()
    net = module.net.to(device, memory_format=torch.channels_last).train()
    return net, torch.optim.SGD(net.parameters(), lr=cfg.optim.lr), iter(datamodule.train_dataloader())


PLAIN_PRECISIONS = ("bf16-mixed", "32-true", "32", 32)  # what the plain loop runs: fp32, or bf16 autocast


def plain_step(cfg: Any, device: torch.device) -> tuple[torch.nn.Module, Callable[[], int]]:
    """The network of ``plain_parts`` and one step of the plain loop on its batches, in ``cfg``'s
    precision (bf16 autocast for bf16-mixed); the step returns the images it trained on."""
    precision = trainer_args(cfg.trainer)["precision"]
    if precision not in PLAIN_PRECISIONS:
        raise ValueError(f"trainer.precision={precision}: the plain loop runs {', '.join(map(str, PLAIN_PRECISIONS))}")
    net, optimizer, batches = plain_parts(cfg, device)

    def step() -> int:
        x, y = next(batches)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
            loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return y.numel()

    return net, step


def plain(cfg: Any, device: torch.device, steps: int, warmup: int) -> dict[str, Any]:
    """The framework's own batches, network and precision in a plain PyTorch loop (no Lightning, no
    metrics, no callbacks): what the framework's loop costs per step is the difference."""
    precision = trainer_args(cfg.trainer)["precision"]
    if precision not in PLAIN_PRECISIONS:
        return {}
    _, step = plain_step(cfg, device)
    images, timed_from = 0, 0.0
    for n in range(warmup + steps):
        if n == warmup:
            timed_from = synced_clock(device)
        trained = step()
        images += trained if n >= warmup else 0
    seconds = synced_clock(device) - timed_from
    return {"images_per_s": images / seconds, "ms_per_step": 1000 * seconds / steps, "precision": precision}


def alternate(
    step: Callable[[], Any], arms: dict[str, Callable[[], None]], rounds: int = 4, steps: int = 8, warmup: int = 3
) -> dict[str, list[float]]:
    """Two or more ways of running ``step`` timed in one process, in turn, on the CPU: after
    ``warmup`` steps, ``rounds`` times each arm's set-up, one untimed step, then ``steps`` timed
    ones, the arms' order reversed every other round (A B, B A, ...) so that a drift of the
    machine's speed favours none; milliseconds a step of each block, by arm, in round order
    (experiments/bench_cpu's A/B measurements)."""
    for _ in range(warmup):
        step()
    ms: dict[str, list[float]] = {name: [] for name in arms}
    for round_ in range(rounds):
        for name, set_up in list(arms.items())[:: -1 if round_ % 2 else 1]:
            set_up()
            step()
            start = time.perf_counter()
            for _ in range(steps):
                step()
            ms[name].append((time.perf_counter() - start) / steps * 1000)
    return ms


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
