"""Test accuracy step by step at the end of an epoch: does it fall at the last, partial batch?

    python experiments/seed_gap/step_probe.py [--last 15] JOB_DIR ...

For each job: its last checkpoint (the end of epoch e) trains epoch e+1 as the run would (the same
data order, from the job's seed and the epoch; the job's optimizer, which must be stateless: plain
SGD; the job's precision, channels_last), and after each of the epoch's last ``--last`` full
batches the whole test set is evaluated with BatchNorm's running averages. From the state before
the last, partial batch (96 images) that step is taken both ways: a full step
(``loss.reduction=mean``, the default) and the seed's 96/256 step (``batch_size``). Where the job
has logged epoch e+1, the full step's accuracy is shown beside it (the probe replays the run).

Each job's result is kept in its directory (``step_probe.json``), so jobs can be probed as they
finish and summed up by a later call. Prints markdown: per job, the largest and the mean absolute
change from one full step to the next and the change over the last step each way; the means per
training; the last step's change both ways, paired over all jobs; the accuracies step by step.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from analyze import paired  # this folder's: mean [95% CI], p of paired differences
from bn_probe import accuracy  # this folder's: the whole test set in eval mode, in the job's precision
from hydra.utils import instantiate
from omegaconf import OmegaConf

from resnet_exp.runs.records import read_metrics
from resnet_exp.training.build import datamodule, network


def test_acc(net: torch.nn.Module, loader, bf16: bool) -> float:
    """Test accuracy in %, BatchNorm with its running averages; the network back in train mode."""
    acc = accuracy(net, loader, bf16) * 100
    net.train()
    return acc


def step(net: torch.nn.Module, optim_cfg: dict, x: torch.Tensor, y: torch.Tensor, scale: float, bf16: bool) -> None:
    """One step of the job's optimizer on ``scale`` times the batch's mean cross-entropy, as training/classifier.py
    trains (the optimizer is stateless: plain SGD)."""
    optimizer = instantiate(optim_cfg, params=net.parameters())
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = F.cross_entropy(net(x), y) * scale
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def probe(job: Path, last: int) -> dict:
    """The probe of one job, kept in the job's directory (``step_probe.json``) for the next call
    with the same checkpoint and ``last``: jobs can be probed as they finish, and summed up once."""
    cache = job / "step_probe.json"
    ckpt_time = (job / "checkpoints" / "last.ckpt").stat().st_mtime
    if cache.is_file():
        kept = json.loads(cache.read_text())
        if kept["last_steps"] == last and kept["checkpoint_mtime"] == ckpt_time:
            return {**kept, "job": job}
    result = measure(job, last)
    cache.write_text(json.dumps({**result, "last_steps": last, "checkpoint_mtime": ckpt_time}, indent=1))
    return {**result, "job": job}


def measure(job: Path, last: int) -> dict:
    cfg = OmegaConf.to_container(OmegaConf.load(job / "config.yaml"))
    if cfg["optim"].get("momentum"):
        raise SystemExit(f"{job}: the probe needs a stateless optimizer (plain SGD); this job has momentum")
    ckpt = torch.load(job / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    epoch = ckpt["epoch"] + 1  # the 0-based index of the epoch it trains again
    net = network(cfg)
    net.load_state_dict({k.removeprefix("net."): v for k, v in ckpt["state_dict"].items() if k.startswith("net.")})
    net = net.to(memory_format=torch.channels_last).train()
    bf16 = json.loads((job / "status.json").read_text()).get("precision") == "bf16-mixed"
    dm = datamodule(cfg)
    dm.setup()
    train, test = dm.train_dataloader(), dm.val_dataloader()
    train.sampler.set_epoch(epoch)
    batches = list(train)
    full = cfg["data"]["batch_size"]
    accs = []
    for i, (x, y) in enumerate(batches[:-1]):
        if i == len(batches) - 1 - last:
            accs.append(test_acc(net, test, bf16))
        step(net, cfg["optim"], x, y, 1.0, bf16)
        if i >= len(batches) - 1 - last:
            accs.append(test_acc(net, test, bf16))
    x, y = batches[-1]
    after = {}
    for name, scale in (("mean", 1.0), ("batch_size", len(y) / full)):
        copy_ = copy.deepcopy(net)
        step(copy_, cfg["optim"], x, y, scale, bf16)
        after[name] = test_acc(copy_, test, bf16)
    logged = next(
        (r.get("test/acc_running", r["test/acc"]) * 100 for r in read_metrics(job) if int(r["epoch"]) == epoch + 1),
        None,
    )
    return {"order": cfg["block"]["order"], "seed": cfg["seed"], "epoch": epoch + 1,
            "trained": cfg.get("loss", {}).get("reduction", "mean"),
            "accs": accs, "after": after, "last_batch": len(y), "logged": logged}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--last", type=int, default=15, help="full batches before the partial one to evaluate after")
    parser.add_argument("jobs", nargs="+", type=Path)
    args = parser.parse_args()
    results = [probe(job, args.last) for job in args.jobs]
    print(f"Test accuracy (%, running averages) over the last {args.last} full steps of an epoch and at its")
    print("last, partial batch, taken as a full step (mean) or the seed's shorter step (batch_size), from")
    print("the same state. `trained`: how the job took its partial batches before. Changes in points.\n")
    print("| job | ordering | seed | trained | epoch | largest change, full steps | mean abs change, full steps | "
          "last step: mean | last step: batch_size | logged |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        a = r["accs"]
        changes = [b - c for c, b in zip(a, a[1:])]
        r["changes"], r["last"] = changes, {k: v - a[-1] for k, v in r["after"].items()}
        logged = "n/a" if r["logged"] is None else f"{r['logged']:.2f}"
        print(f"| {r['job'].name} | {r['order']} | {r['seed']} | {r['trained']} | {r['epoch']} | "
              f"{max(changes, key=abs):+.2f} | {sum(map(abs, changes)) / len(changes):.2f} | "
              f"{r['after']['mean']:.2f} ({r['last']['mean']:+.2f}) | "
              f"{r['after']['batch_size']:.2f} ({r['last']['batch_size']:+.2f}) | {logged} |")  # fmt: skip
    print("\nMean absolute change of test accuracy per step, over the jobs (by how they trained):\n")
    print("| trained | jobs | full steps | last step: mean | last step: batch_size |")
    print("|---|---|---|---|---|")
    for trained in sorted({r["trained"] for r in results}):
        group = [r for r in results if r["trained"] == trained]
        steps = [abs(c) for r in group for c in r["changes"]]
        last = {k: sum(abs(r["last"][k]) for r in group) / len(group) for k in ("mean", "batch_size")}
        cells = [f"{sum(steps) / len(steps):.2f}", f"{last['mean']:.2f}", f"{last['batch_size']:.2f}"]
        print(f"| {trained} | {len(group)} | " + " | ".join(cells) + " |")
    # the last step both ways from the same state: paired over all jobs
    whole, short = [r["last"]["mean"] for r in results], [r["last"]["batch_size"] for r in results]
    if len(results) > 1:
        print(
            f"\nOver all {len(results)} jobs, the last step's change (signed): a full step "
            f"{sum(whole) / len(whole):+.2f} (lower in {sum(x < 0 for x in whole)} of {len(whole)}), the seed's "
            f"step {sum(short) / len(short):+.2f} (lower in {sum(x < 0 for x in short)}); the seed's minus the "
            f"full, paired: {paired([b - a for a, b in zip(whole, short)])}."
        )
    print("\nAccuracy before the last full steps and after each:\n")
    for r in results:
        print(f"- job {r['job'].name}: " + ", ".join(f"{v:.2f}" for v in r["accs"]))


if __name__ == "__main__":
    main()
