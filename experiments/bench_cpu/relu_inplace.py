"""ReLU in place against out of place in the default recipe's fp32 training step (post ordering):
the framework's batches, network, loss and SGD in a plain loop, as step_profile.py runs it. The
network as models/ builds it (its ReLUs of a BatchNorm's or an addition's output in place, as
torchvision's) for one block of 8 timed steps, every ReLU out of place for the next (``F.relu``
told to ignore ``inplace``, each ``nn.ReLU``'s ``inplace`` off), alternated 4 times (A B, B A, ...) in one
process after 3 warm-up steps. Prints milliseconds a step for each block.

    python experiments/bench_cpu/relu_inplace.py > experiments/bench_cpu/relu_inplace.txt
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from resnet_exp.command_line import load_config
from resnet_exp.training.hardware import keep_freed_memory
from resnet_exp.training.speed import alternate, plain_step

relu = F.relu


def out_of_place(input: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    return relu(input)


keep_freed_memory()
net, step = plain_step(load_config(["trainer.precision=32-true", "block.order=post"]), torch.device("cpu"))
modules = [m for m in net.modules() if isinstance(m, torch.nn.ReLU)]


def relus(inplace: bool) -> None:
    F.relu = relu if inplace else out_of_place
    for m in modules:
        m.inplace = inplace


ms = alternate(step, {"out-of-place": lambda: relus(False), "in-place": lambda: relus(True)})
F.relu = relu
print(f"ms a step, {torch.get_num_threads()} threads, torch {torch.__version__}, 4 alternations of 8 steps:")
for name, values in ms.items():
    print(name, [round(v) for v in values])
