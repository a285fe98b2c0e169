"""Denormal numbers flushed to zero against kept, in the default recipe's fp32 training step (post
ordering): the framework's batches, network, loss and SGD in a plain loop, as relu_inplace.py runs
it. x86 cores can take many times longer on an operation whose input or output is denormal
(below about 1.2e-38 in fp32) unless the FTZ/DAZ flags flush them to zero; oneDNN's convolutions
set them for themselves, ATen's elementwise kernels (BatchNorm, ReLU, the additions: the share
step_profile.md shows fp32 losing most) do not. ``torch.set_flush_denormal`` sets them for the
process. One block of 8 timed steps each way, alternated 4 times (A B, B A, ...) in one process after 3 warm-up
steps. Prints milliseconds a step for each block.

    python experiments/bench_cpu/flush_denormal.py [PRECISION] > experiments/bench_cpu/flush_denormal.txt
"""

from __future__ import annotations

import sys

import torch

from resnet_exp.command_line import load_config
from resnet_exp.training.hardware import keep_freed_memory
from resnet_exp.training.speed import alternate, plain_step

precision = sys.argv[1] if len(sys.argv) > 1 else "32-true"
keep_freed_memory()
_, step = plain_step(load_config([f"trainer.precision={precision}", "block.order=post"]), torch.device("cpu"))
ms = alternate(
    step, {"denormals kept": lambda: torch.set_flush_denormal(False), "flushed": lambda: torch.set_flush_denormal(True)}
)
torch.set_flush_denormal(False)
print(
    f"{precision}: ms a step, {torch.get_num_threads()} threads, torch {torch.__version__}, 4 alternations of 8 steps:"
)
for name, values in ms.items():
    print(name, [round(v) for v in values])
