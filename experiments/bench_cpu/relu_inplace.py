"""ReLU in place against out of place in the default recipe's fp32 training step (post ordering):
the framework's batches, network, loss and SGD in a plain loop, as step_profile.py runs it. The
network as models/ builds it (its ReLUs of a BatchNorm's or an addition's output in place, as
torchvision's) for one block of 8 timed steps, every ReLU out of place for the next (``F.relu``
told to ignore ``inplace``, each ``nn.ReLU``'s ``inplace`` off), alternated 4 times in one
process after 3 warm-up steps. Prints milliseconds a step for each block.

    python experiments/bench_cpu/relu_inplace.py > experiments/bench_cpu/relu_inplace.txt
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from resnet_exp.command_line import load_config
from resnet_exp.training.hardware import keep_freed_memory
from resnet_exp.training.speed import plain_parts

relu = F.relu


def out_of_place(input: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    return relu(input)


keep_freed_memory()
net, optimizer, batches = plain_parts(
    load_config(["trainer.precision=32-true", "block.order=post"]), torch.device("cpu")
)


def step() -> None:
    x, y = next(batches)
    loss = F.cross_entropy(net(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


for _ in range(3):
    step()
modules = [m for m in net.modules() if isinstance(m, torch.nn.ReLU)]
ms = {"out-of-place": [], "in-place": []}
for _ in range(4):
    for name in ms:
        F.relu = out_of_place if name == "out-of-place" else relu
        for m in modules:
            m.inplace = name == "in-place"
        step()
        start = time.perf_counter()
        for _ in range(8):
            step()
        ms[name].append((time.perf_counter() - start) / 8 * 1000)
F.relu = relu
print(f"ms a step, {torch.get_num_threads()} threads, torch {torch.__version__}, 4 alternations of 8 steps:")
for name, values in ms.items():
    print(name, [round(v) for v in values])
