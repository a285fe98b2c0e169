"""BatchNorm statistics recomputed before an evaluation ("precise BN", as in detectron2/fvcore).

During training each BatchNorm keeps running averages of its batches' statistics with momentum
0.1, about the last ten batches, while the weights move under them; evaluated with those averages,
a network can score well below what the same weights reach with statistics that match them. Before
each evaluation ``recompute`` (torch's ``update_bn``) resets the running statistics and averages
them, cumulatively and with equal weight, over a fixed set of training batches, under ``no_grad``: the weights, the
gradients and the training data's order are not touched, only what evaluation normalises with.
The run evaluates the same weights with the running averages it replaced too (``running_statistics``,
logged as ``test/acc_running``), so each epoch pairs the two on identical weights; training goes on
from the recomputed statistics, which the next epoch's 235 momentum-0.1 updates wash out (0.9^235).
On by default (``evaluation.precise_bn_batches=40``); 0 turns it off (the running averages alone).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import update_bn

# The batches it averages over: drawn once with this seed from the training images.
PRECISE_BN_SEED = 2_2017


# Every BatchNorm torch has, by its public classes (the lazy ones become one of these once built).
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def batch_norms(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, BATCH_NORMS)]


def indices(train_size: int, batches: int, batch_size: int) -> list[torch.Tensor]:
    """The training images of the ``batches`` batches: a fixed draw, the same for every epoch."""
    generator = torch.Generator().manual_seed(PRECISE_BN_SEED)
    order = torch.randperm(train_size, generator=generator)[: batches * batch_size]
    return list(order.split(batch_size))


def running_statistics(net: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every BatchNorm buffer of ``net`` by name, to evaluate with in
    ``torch.func.functional_call`` after ``recompute`` replaced them."""
    names = {name for name, m in net.named_modules() if isinstance(m, BATCH_NORMS)}
    return {k: v.detach().clone() for k, v in net.named_buffers() if k.rpartition(".")[0] in names}


def recompute(net: nn.Module, batches: list[torch.Tensor]) -> None:
    """Replace every BatchNorm's running mean and variance by their cumulative average over
    ``batches`` (float images in the network's input layout), the network in train mode, under
    ``no_grad``: torch's ``update_bn`` (momentum None for the pass, each BatchNorm's momentum and
    the network's mode put back after it)."""
    update_bn(batches, net)
