"""Residual-unit orderings, one small definition each, looked up by name.

Every unit has the same layers: two 3x3 convolutions (the first one strided), two BatchNorms and a
shortcut: the identity where the shape is kept, a strided 1x1 convolution where it changes, or
nothing at all in a plain network (``block.shortcut=none``). An ordering only says in which order
``forward`` applies them. To add one, subclass ``ResidualUnit``, write ``forward`` and decorate the
class with ``@ordering("name")``, and add the name to ``config.ORDERINGS`` (what users may type,
checked before torch loads); the network and the configs pick it up by name.

The five orderings of He et al. 2016, "Identity Mappings in Deep Residual Networks", Fig. 4:
(a) ``post``, (b) ``bn_after_add``, (c) ``relu_before_add``, (d) ``relu_only_pre``, (e) ``pre``.

A ReLU of a tensor that nothing else needs (a BatchNorm's output, an addition's) runs in place, as
torchvision's units do: the same values, one pass less over memory (experiments/bench_cpu/
relu_inplace.txt). A ReLU of the unit's input ``x`` does not: the shortcut, or the BatchNorm's
backward, still needs ``x``.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from resnet_exp import config

# The ordering classes by name: exactly config.ORDERINGS (the names users may type), one class each.
ORDERINGS: dict[str, type[ResidualUnit]] = {}
SHORTCUTS, PROJECTION_INPUTS = config.SHORTCUTS, config.PROJECTION_INPUTS


def ordering(name: str) -> Callable[[type[ResidualUnit]], type[ResidualUnit]]:
    """Register a residual-unit class under the name users type as ``block.order``."""

    def register(cls: type[ResidualUnit]) -> type[ResidualUnit]:
        if name in ORDERINGS:
            raise ValueError(f"block ordering {name!r} is defined twice")
        if name not in config.ORDERINGS:
            raise ValueError(f"block ordering {name!r} is not in config.ORDERINGS; add it there, for users to choose")
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

    Class attributes: ``norm_first``, the first BatchNorm normalises the unit's input rather than
    the first convolution's output; ``preactivated``, the unit's output is an un-activated sum, so
    a pre-activation network ends with a BN-ReLU of its own (``model.final_norm=auto``).
    """

    order: str = ""
    norm_first: bool = False
    preactivated: bool = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        shortcut: str = "projection",
        projection_input: str = "relu",
    ) -> None:
        super().__init__()
        if shortcut not in SHORTCUTS:
            raise ValueError(f"block.shortcut={shortcut!r} is not a shortcut; choose one of: {', '.join(SHORTCUTS)}")
        if projection_input not in PROJECTION_INPUTS:
            raise ValueError(
                f"block.projection_input={projection_input!r} is not valid; "
                f"choose one of: {', '.join(PROJECTION_INPUTS)}"
            )
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(in_channels if self.norm_first else out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module | None
        if shortcut == "none":
            self.shortcut = None
        elif stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride)
        else:
            self.shortcut = nn.Identity()
        self.projection_input = projection_input

    @property
    def projects(self) -> bool:
        """Whether the shortcut is a 1x1 convolution (rather than the identity, or none)."""
        return isinstance(self.shortcut, nn.Conv2d)

    def add_shortcut(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``out + shortcut(x)``; a plain unit (no shortcut) returns ``out`` alone."""
        return out if self.shortcut is None else out + self.shortcut(x)

    def extra_repr(self) -> str:
        return f"order={self.order!r}"


@ordering("post")
class PostActivation(ResidualUnit):
    """(a) original, ResNet v1: conv-BN-ReLU-conv-BN, add the shortcut of x, ReLU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(self.add_shortcut(out, x), inplace=True)


@ordering("bn_after_add")
class BNAfterAddition(ResidualUnit):
    """(b) BN after addition: conv-BN-ReLU-conv, add the shortcut of x, BN, ReLU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.relu(self.bn1(self.conv1(x)), inplace=True))
        return F.relu(self.bn2(self.add_shortcut(out, x)), inplace=True)


@ordering("relu_before_add")
class ReLUBeforeAddition(ResidualUnit):
    """(c) ReLU before addition: conv-BN-ReLU-conv-BN-ReLU, add the shortcut of x."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = F.relu(self.bn2(self.conv2(out)), inplace=True)
        return self.add_shortcut(out, x)


@ordering("relu_only_pre")
class ReLUOnlyPreActivation(ResidualUnit):
    """(d) ReLU-only pre-activation: ReLU-conv-BN-ReLU-conv-BN, add the shortcut.

    The pre-activation is relu(x), so a projection shortcut takes relu(x) in either convention.
    """

    preactivated = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(x)
        out = F.relu(self.bn1(self.conv1(a)), inplace=True)
        out = self.bn2(self.conv2(out))
        return self.add_shortcut(out, a if self.projects else x)


@ordering("pre")
class PreActivation(ResidualUnit):
    """(e) full pre-activation: BN-ReLU-conv-BN-ReLU-conv, add the shortcut.

    Where the shape changes, the projection takes relu(x) (``projection_input="relu"``, the seed)
    or the unit's own BN-ReLU of x (``"preact"``, the paper's code); the identity takes x.
    """

    norm_first = True
    preactivated = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.bn1(x), inplace=True)
        out = self.conv2(F.relu(self.bn2(self.conv1(a)), inplace=True))
        if self.projects:
            x = a if self.projection_input == "preact" else F.relu(x)
        return self.add_shortcut(out, x)
