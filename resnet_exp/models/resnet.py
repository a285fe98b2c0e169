"""The network: stem, residual stages, head; and its layer-by-layer shape summary."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from resnet_exp.config import STEMS, final_norm_ok
from resnet_exp.models.blocks import get_block


class ResNet(nn.Sequential):
    """The seed's ResNet, with the residual-unit ordering chosen by name.

    stem (``stem``): ``"seed"``, conv7x7/2 (``stem_channels``), BN, ReLU, max-pool 3/2 (the seed's,
    for 96 px images); or ``"small"``, conv3x3/1, BN, ReLU and no pool (He et al.'s stem for 32 px
    images, 2015, Sec. 4.2, for images at their own size); then one stage per entry of
    ``channels``/``blocks``, every stage after the first starting with a strided unit; with
    ``final_norm``, a BN-ReLU after the last unit (pre-activation networks need it: their units end
    in an un-activated sum; ``"auto"`` adds it exactly for such orderings); global average pool; a
    linear classifier. Conv and linear weights are Xavier-uniform, biases zero.
    ``shortcut`` and ``projection_input`` are passed to every unit (see ``blocks.py``).
    """

    def __init__(
        self,
        order: str = "post",
        stem_channels: int = 32,
        channels: Sequence[int] = (32, 64, 128),
        blocks: Sequence[int] = (2, 2, 2),
        num_classes: int = 10,
        in_channels: int = 1,
        shortcut: str = "projection",
        projection_input: str = "relu",
        final_norm: bool | str = False,
        stem: str = "seed",
    ) -> None:
        if len(channels) != len(blocks):
            raise ValueError(
                f"model.channels has {len(channels)} stages but model.blocks has {len(blocks)}; "
                "give one block count per stage"
            )
        unit = get_block(order)
        if not final_norm_ok(final_norm):
            raise ValueError(f"model.final_norm={final_norm!r} is not valid; choose one of: true, false, auto")
        options = {"shortcut": shortcut, "projection_input": projection_input}
        layers = stem_layers(stem, in_channels, stem_channels)
        width = stem_channels
        for i, (out_channels, n) in enumerate(zip(channels, blocks)):
            stride = 1 if i == 0 else 2
            stage = [unit(width, out_channels, stride, **options)]
            stage += [unit(out_channels, out_channels, **options) for _ in range(n - 1)]
            layers[f"stage{i + 1}"] = nn.Sequential(*stage)
            width = out_channels
        if final_norm is True or (final_norm == "auto" and unit.preactivated):
            layers["final_bn"] = nn.BatchNorm2d(width)
            layers["final_relu"] = nn.ReLU(inplace=True)
        layers["gap"] = nn.AdaptiveAvgPool2d(1)
        layers["fc"] = nn.Sequential(nn.Flatten(), nn.Linear(width, num_classes))
        super().__init__(layers)
        self.order = order
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform conv and linear weights, zero biases; BatchNorm keeps its defaults."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)


def stem_layers(stem: str, in_channels: int, channels: int) -> OrderedDict[str, nn.Module]:
    """The stem ``model.stem`` names, as named layers: ``seed`` (conv7x7/2, BN, ReLU, max-pool 3/2)
    or ``small`` (conv3x3/1, BN, ReLU)."""
    if stem not in STEMS:
        raise ValueError(f"model.stem={stem!r} is not a stem; choose one of: {', '.join(STEMS)}")
    if stem == "small":
        conv = nn.Conv2d(in_channels, channels, 3, stride=1, padding=1)
        return OrderedDict({"conv": conv, "bn": nn.BatchNorm2d(channels), "relu": nn.ReLU(inplace=True)})
    conv = nn.Conv2d(in_channels, channels, 7, stride=2, padding=3)
    pool = nn.MaxPool2d(3, stride=2, padding=1)
    return OrderedDict({"conv": conv, "bn": nn.BatchNorm2d(channels), "relu": nn.ReLU(inplace=True), "pool": pool})


def network(cfg: Mapping[str, Any]) -> ResNet:
    """The ResNet that a config's ``block.*`` and ``model.*`` describe."""
    return ResNet(**cfg["block"], **cfg["model"])


def shape_summary(net: nn.Sequential, input_shape: Sequence[int]) -> list[tuple[str, tuple[int, ...]]]:
    """Each top-level layer's name and output shape for a zero input of ``input_shape``."""
    rows = []
    was_training = net.training
    net.eval()
    with torch.no_grad():
        x = torch.zeros(*input_shape)
        for name, layer in net.named_children():
            x = layer(x)
            rows.append((name, tuple(x.shape)))
    net.train(was_training)
    return rows


def format_summary(net: nn.Sequential, input_shape: Sequence[int]) -> str:
    """The summary as the seed printed it: one ``name output shape: (...)`` line per layer."""
    rows = shape_summary(net, input_shape)
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}} output shape: {shape}" for name, shape in rows]
    params = sum(p.numel() for p in net.parameters())
    lines.append(f"{params:,} parameters")
    return "\n".join(lines)
