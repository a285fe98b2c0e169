"""Denormal numbers flushed to zero against kept, in the default recipe's fp32 training step (post
ordering): the framework's batches, network, loss and SGD in a plain loop, as relu_inplace.py runs
it. x86 cores can take many times longer on an operation whose input or output is denormal
(below about 1.2e-38 in fp32) unless the FTZ/DAZ flags flush them to zero; oneDNN's convolutions
set them for themselves, ATen's elementwise kernels (BatchNorm, ReLU, the additions: the share
step_profile.md shows fp32 losing most) do not. ``torch.set_flush_denormal`` sets them for the
process. One block of 8 timed steps each way, alternated 4 times in one process after 3 warm-up
steps. Prints milliseconds a step for each block.

    python experiments/bench_cpu/flush_denormal.py [PRECISION] > experiments/bench_cpu/flush_denormal.txt
"""

from __future__ import annotations

import contextlib
import sys
import time

import torch
import torch.nn.functional as F

from resnet_exp.command_line import load_config
from resnet_exp.training.hardware import keep_freed_memory
from resnet_exp.training.speed import plain_parts

precision = sys.argv[1] if len(sys.argv) > 1 else "32-true"
keep_freed_memory()
net, optimizer, batches = plain_parts(
    load_config([f"trainer.precision={precision}", "block.order=post"]), torch.device("cpu")
)


def step() -> None:
    x, y = next(batches)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16-mixed" else contextlib.nullcontext()
    with autocast:
        loss = F.cross_entropy(net(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


for _ in range(3):
    step()
ms = {"denormals kept": [], "flushed": []}
for _ in range(4):
    for name in ms:
        torch.set_flush_denormal(name == "flushed")
        step()
        start = time.perf_counter()
        for _ in range(8):
            step()
        ms[name].append((time.perf_counter() - start) / 8 * 1000)
torch.set_flush_denormal(False)
print(
    f"{precision}: ms a step, {torch.get_num_threads()} threads, torch {torch.__version__}, 4 alternations of 8 steps:"
)
for name, values in ms.items():
    print(name, [round(v) for v in values])
