"""Test accuracy of jobs' last checkpoints with BatchNorm's running averages and with batch statistics.

    python experiments/block_order_cpu_reduced/bn_probe.py outputs/sweeps/<sweep>/*/

For each job directory: rebuilds the network from its config.yaml, loads checkpoints/last.ckpt and
evaluates the full test set (batches of the job's batch size, the project's own data pipeline) twice:
in eval mode (running averages, what the run logs as test/acc) and in train mode under no_grad
(each batch normalised with its own statistics). Prints one line per job.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

from resnet_exp.training.build import datamodule, network


def accuracy(net: torch.nn.Module, loader, batch_stats: bool) -> float:
    net.train(batch_stats)
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += int((net(x).argmax(1) == y).sum())
            total += len(y)
    return correct / total


def main(jobs: list[str]) -> None:
    for job in map(Path, jobs):
        cfg = OmegaConf.load(job / "config.yaml")
        net = network(cfg)
        state = torch.load(job / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
        net.load_state_dict({k.removeprefix("net."): v for k, v in state["state_dict"].items() if k.startswith("net.")})
        dm = datamodule(cfg)
        dm.setup()
        loader = dm.val_dataloader()
        running, batch = accuracy(net, loader, False), accuracy(net, loader, True)
        print(
            f"{job}: block.order={cfg.block.order} seed={cfg.seed} epoch={state['epoch'] + 1} "
            f"test acc running averages {running:.4f}, batch statistics {batch:.4f}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
