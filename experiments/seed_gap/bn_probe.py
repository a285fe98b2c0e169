"""Test accuracy of jobs' checkpoints with BatchNorm's running averages, and with the running
statistics recomputed over fixed training batches (``resnet_exp.training.precise_bn``, the remedy
``evaluation.precise_bn_batches=N``), on the same weights.

    python experiments/seed_gap/bn_probe.py [--batches 40] [--checkpoint last.ckpt] JOB_DIR ...

For each job directory: rebuilds the network from its config.yaml and the checkpoint's weights,
evaluates the whole test set in eval mode in the precision the job trained in, then
recomputes the statistics and evaluates again. Prints one line per job.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from omegaconf import OmegaConf

from resnet_exp.training.build import datamodule, network
from resnet_exp.training.precise_bn import indices, recompute


def accuracy(net: torch.nn.Module, loader, bf16: bool) -> float:
    net.eval()
    correct = total = 0
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for x, y in loader:
            correct += int((net(x).argmax(1) == y).sum())
            total += len(y)
    return correct / total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--checkpoint", default="last.ckpt")
    parser.add_argument("jobs", nargs="+", type=Path)
    args = parser.parse_args()
    for job in args.jobs:
        cfg = OmegaConf.to_container(OmegaConf.load(job / "config.yaml"))
        ckpt = torch.load(job / "checkpoints" / args.checkpoint, map_location="cpu", weights_only=True)
        epoch = ckpt["epoch"] + 1
        net = network(cfg)
        net.load_state_dict({k.removeprefix("net."): v for k, v in ckpt["state_dict"].items() if k.startswith("net.")})
        bf16 = json.loads((job / "status.json").read_text()).get("precision") == "bf16-mixed"
        dm = datamodule(cfg)
        dm.setup()
        test = dm.test_dataloader()
        net = net.to(memory_format=torch.channels_last)
        running = accuracy(net, test, bf16)
        images, _ = dm.train_set.resized(torch.device("cpu"), dm.resize)
        chosen = indices(len(dm.train_set), args.batches, cfg["data"]["batch_size"])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            recompute(net, [images[i].float().div_(255).contiguous(memory_format=torch.channels_last) for i in chosen])
        recomputed = accuracy(net, test, bf16)
        print(
            f"{job}: block.order={cfg['block']['order']} seed={cfg['seed']} epoch={epoch} test acc "
            f"running averages {running:.4f}, recomputed over {args.batches} batches {recomputed:.4f} "
            f"({(recomputed - running) * 100:+.2f} points)",
            flush=True,
        )


if __name__ == "__main__":
    main()
