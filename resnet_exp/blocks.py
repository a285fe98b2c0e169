"""Residual-unit orderings, one small definition each, looked up by name.

Every unit has the same layers: two 3x3 convolutions (the first one strided), two BatchNorms and a
shortcut that is the identity where the shape is kept and a strided 1x1 convolution where it changes.
An ordering only says in which order ``forward`` applies them. To add one, subclass ``ResidualUnit``,
write ``forward`` and decorate the class with ``@ordering("name")``; nothing else changes.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

ORDERINGS: dict[str, type[ResidualUnit]] = {}


def ordering(name: str) -> Callable[[type[ResidualUnit]], type[ResidualUnit]]:
    """Register a residual-unit class under the name users type as ``block.order``."""

    def register(cls: type[ResidualUnit]) -> type[ResidualUnit]:
        if name in ORDERINGS:
            raise ValueError(f"block ordering {name!r} is defined twice")
        cls.order = name
        ORDERINGS[name] = cls
        return cls

    return register


def get_block(order: str) -> type[ResidualUnit]:
    """The residual-unit class for ``block.order``; a clear error names the valid orderings."""
    try:
        return ORDERINGS[order]
    except KeyError:
        raise ValueError(
            f"block.order={order!r} is not a known ordering; choose one of: {', '.join(ORDERINGS)}"
        ) from None


class ResidualUnit(nn.Module):
    """The layers every ordering shares. Subclasses define ``forward`` only.

    ``norm_first``: the first BatchNorm normalises the unit's input (pre-activation) rather than the
    first convolution's output.
    """

    order: str = ""
    norm_first: bool = False

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(in_channels if self.norm_first else out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Conv2d(in_channels, out_channels, 1, stride=stride)
        else:
            self.shortcut = nn.Identity()

    @property
    def projects(self) -> bool:
        """Whether the shortcut is a 1x1 convolution rather than the identity."""
        return not isinstance(self.shortcut, nn.Identity)

    def extra_repr(self) -> str:
        return f"order={self.order!r}"


@ordering("post")
class PostActivation(ResidualUnit):
    """ResNet v1: conv-BN-ReLU-conv-BN, add the shortcut of x, ReLU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


@ordering("pre")
class PreActivation(ResidualUnit):
    """Full pre-activation (He et al. 2016): BN-ReLU-conv-BN-ReLU-conv, add the shortcut.

    Where the shape changes, the projection is applied to relu(x), without a BatchNorm of its own.
    """

    norm_first = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return out + (self.shortcut(F.relu(x)) if self.projects else x)
