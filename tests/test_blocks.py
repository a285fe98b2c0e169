"""Each ordering is exactly what its name says; the network has the seed's shapes and init."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resnet_exp.blocks import ORDERINGS, get_block
from resnet_exp.resnet import ResNet, shape_summary


# Each ordering written out by hand from the unit's own layers (b). A new ordering needs an entry.
def post(b, x):
    return F.relu(b.bn2(b.conv2(F.relu(b.bn1(b.conv1(x))))) + b.shortcut(x))


def pre(b, x):
    shortcut = b.shortcut(F.relu(x)) if isinstance(b.shortcut, nn.Conv2d) else x
    return b.conv2(F.relu(b.bn2(b.conv1(F.relu(b.bn1(x)))))) + shortcut


BY_HAND = {"post": post, "pre": pre}


def randomize_bn(module: nn.Module) -> None:
    """Give every BatchNorm non-trivial affine parameters and running statistics."""
    g = torch.Generator().manual_seed(1)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=g) + 0.5
            m.bias.data = torch.randn(n, generator=g)
            m.running_mean = torch.randn(n, generator=g)
            m.running_var = torch.rand(n, generator=g) + 0.5


def test_every_ordering_has_a_hand_written_reference():
    assert set(BY_HAND) == set(ORDERINGS)


@pytest.mark.parametrize("order", sorted(BY_HAND))
@pytest.mark.parametrize("in_ch,out_ch,stride", [(8, 8, 1), (8, 16, 2)])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_block_equals_its_definition(order, in_ch, out_ch, stride, mode):
    torch.manual_seed(0)
    block = get_block(order)(in_ch, out_ch, stride)
    randomize_bn(block)
    block.train(mode == "train")
    x = torch.randn(4, in_ch, 12, 12)
    with torch.no_grad():
        expected = BY_HAND[order](block, x)
        got = block(x)
    assert got.shape == (4, out_ch, 12 // stride, 12 // stride)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.parametrize("order", sorted(ORDERINGS))
def test_shortcut_is_identity_or_strided_projection(order):
    keep = get_block(order)(16, 16, 1)
    assert isinstance(keep.shortcut, nn.Identity) and not keep.projects
    down = get_block(order)(16, 32, 2)
    assert isinstance(down.shortcut, nn.Conv2d) and down.projects
    assert down.shortcut.kernel_size == (1, 1) and down.shortcut.stride == (2, 2)
    assert (down.shortcut.in_channels, down.shortcut.out_channels) == (16, 32)


def test_pre_projection_takes_relu_of_input_and_post_takes_input():
    """Only the negative part of x differs between x and relu(x): the pre unit must ignore it."""
    torch.manual_seed(0)
    x = torch.randn(2, 8, 8, 8)
    for order, sees_negative in (("pre", False), ("post", True)):
        b = get_block(order)(8, 16, 2).eval()
        sc_in = []
        b.shortcut.register_forward_hook(lambda m, inp, out: sc_in.append(inp[0]))
        with torch.no_grad():
            b(x)
        assert bool((sc_in[0] < 0).any()) is sees_negative


def test_unknown_ordering_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"block.order='postt'.*post, pre"):
        get_block("postt")


@pytest.mark.parametrize("order", sorted(ORDERINGS))
def test_shape_summary_matches_the_seed(order):
    net = ResNet(order)
    assert shape_summary(net, (1, 1, 224, 224)) == [
        ("conv", (1, 32, 112, 112)),
        ("bn", (1, 32, 112, 112)),
        ("relu", (1, 32, 112, 112)),
        ("pool", (1, 32, 56, 56)),
        ("stage1", (1, 32, 56, 56)),
        ("stage2", (1, 64, 28, 28)),
        ("stage3", (1, 128, 14, 14)),
        ("gap", (1, 128, 1, 1)),
        ("fc", (1, 10)),
    ]


def test_network_layout_follows_config():
    net = ResNet("pre", stem_channels=16, channels=(16, 24, 40, 48), blocks=(1, 2, 3, 1), num_classes=7)
    stages = [net.stage1, net.stage2, net.stage3, net.stage4]
    assert [len(s) for s in stages] == [1, 2, 3, 1]
    assert [s[0].conv1.stride for s in stages] == [(1, 1), (2, 2), (2, 2), (2, 2)]
    assert [s[0].projects for s in stages] == [False, True, True, True]
    assert all(type(u).order == "pre" for s in stages for u in s)
    assert net(torch.zeros(2, 1, 96, 96)).shape == (2, 7)
    with pytest.raises(ValueError, match="one block count per stage"):
        ResNet("post", channels=(32, 64), blocks=(2, 2, 2))


def test_xavier_uniform_weights_and_zero_biases():
    torch.manual_seed(0)
    net = ResNet("post")
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 1 + 6 * 2 + 2 + 1  # stem, two convs per unit, two projections, classifier
    for m in layers:
        w = m.weight
        receptive = w[0][0].numel() if w.dim() > 2 else 1
        bound = math.sqrt(6 / ((w.shape[0] + w.shape[1]) * receptive))
        assert w.abs().max() <= bound
        assert w.abs().max() > 0.9 * bound  # uniform over the whole range, not a narrower default
        assert torch.count_nonzero(m.bias) == 0
