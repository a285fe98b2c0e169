"""Each ordering is exactly what its name says; the network has the seed's shapes and init."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resnet_exp.models.blocks import ORDERINGS, ResidualUnit, get_block
from resnet_exp.models.resnet import ResNet, shape_summary


# Each ordering written out by hand from the unit's own layers (b), after He et al. 2016, Fig. 4.
# s(b, x) is the shortcut's contribution: b.shortcut(x), or 0 in a plain network.
# A new ordering needs an entry.
def s(b, x):
    return 0 if b.shortcut is None else b.shortcut(x)


def post(b, x):  # (a) conv-BN-ReLU-conv-BN, add, ReLU
    return F.relu(b.bn2(b.conv2(F.relu(b.bn1(b.conv1(x))))) + s(b, x))


def bn_after_add(b, x):  # (b) conv-BN-ReLU-conv, add, BN, ReLU
    return F.relu(b.bn2(b.conv2(F.relu(b.bn1(b.conv1(x)))) + s(b, x)))


def relu_before_add(b, x):  # (c) conv-BN-ReLU-conv-BN-ReLU, add
    return F.relu(b.bn2(b.conv2(F.relu(b.bn1(b.conv1(x)))))) + s(b, x)


def relu_only_pre(b, x):  # (d) ReLU-conv-BN-ReLU-conv-BN, add; a projection takes relu(x)
    shortcut = s(b, F.relu(x)) if isinstance(b.shortcut, nn.Conv2d) else s(b, x)
    return b.bn2(b.conv2(F.relu(b.bn1(b.conv1(F.relu(x)))))) + shortcut


def pre(b, x):  # (e) BN-ReLU-conv-BN-ReLU-conv, add; a projection takes relu(x) or BN-ReLU(x)
    if isinstance(b.shortcut, nn.Conv2d):
        shortcut = s(b, F.relu(b.bn1(x)) if b.projection_input == "preact" else F.relu(x))
    else:
        shortcut = s(b, x)
    return b.conv2(F.relu(b.bn2(b.conv1(F.relu(b.bn1(x)))))) + shortcut


BY_HAND = {f.__name__: f for f in (post, bn_after_add, relu_before_add, relu_only_pre, pre)}


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


def test_the_five_orderings_of_the_paper_are_registered_in_its_order():
    """He et al. 2016's Fig. 4 (a)-(e), in the paper's order (a new ordering goes after them)."""
    assert list(ORDERINGS)[:5] == ["post", "bn_after_add", "relu_before_add", "relu_only_pre", "pre"]


@pytest.mark.parametrize("order", sorted(BY_HAND))
@pytest.mark.parametrize("in_ch,out_ch,stride", [(8, 8, 1), (8, 16, 2)])
@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize(
    "shortcut,projection_input", [("projection", "relu"), ("projection", "preact"), ("none", "relu")]
)
def test_block_equals_its_definition(order, in_ch, out_ch, stride, mode, shortcut, projection_input):
    torch.manual_seed(0)
    block = get_block(order)(in_ch, out_ch, stride, shortcut=shortcut, projection_input=projection_input)
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


@pytest.mark.parametrize(
    "order,projection_input,expected",
    [
        ("post", "relu", "x"),
        ("bn_after_add", "relu", "x"),
        ("relu_before_add", "relu", "x"),
        ("relu_only_pre", "relu", "relu(x)"),
        ("relu_only_pre", "preact", "relu(x)"),
        ("pre", "relu", "relu(x)"),
        ("pre", "preact", "relu(bn1(x))"),
    ],
)
def test_projection_input(order, projection_input, expected):
    """What the 1x1 projection sees, captured with a hook and compared with each candidate."""
    torch.manual_seed(0)
    x = torch.randn(2, 8, 8, 8)
    b = get_block(order)(8, 16, 2, projection_input=projection_input)
    randomize_bn(b)
    b.eval()
    seen = []
    b.shortcut.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    with torch.no_grad():
        b(x)
        candidates = {"x": x, "relu(x)": F.relu(x)}
        if b.norm_first:  # only then does bn1 normalise the unit's input
            candidates["relu(bn1(x))"] = F.relu(b.bn1(x))
    matches = [name for name, c in candidates.items() if c.shape == seen[0].shape and torch.equal(c, seen[0])]
    assert matches == [expected]


@pytest.mark.parametrize("order", sorted(ORDERINGS))
def test_plain_network_has_no_path_that_skips_a_conv(order):
    """Without shortcuts, zeroing every conv3x3 of a stage cuts the input off from the output."""
    torch.manual_seed(0)
    net = ResNet(order, shortcut="none").eval()
    assert not any(isinstance(m, nn.Identity) for m in net.modules())
    assert all(u.shortcut is None for u in net.modules() if isinstance(u, ResidualUnit))
    x = torch.randn(2, 1, 64, 64)
    for unit in net.stage2:
        unit.conv2.weight.data.zero_()
        unit.conv2.bias.data.zero_()
    with torch.no_grad():
        out = net(x)
        other = net(torch.randn(2, 1, 64, 64))
    torch.testing.assert_close(out, other)  # the output no longer depends on the input
    residual = ResNet(order).eval()
    for unit in residual.stage2:
        unit.conv2.weight.data.zero_()
        unit.conv2.bias.data.zero_()
    with torch.no_grad():
        assert not torch.allclose(residual(x), residual(torch.randn(2, 1, 64, 64)))


def test_unknown_ordering_names_the_valid_ones():
    with pytest.raises(
        ValueError, match=r"block.order='postt'.*post, bn_after_add, relu_before_add, relu_only_pre, pre"
    ):
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


# Every model preset's shapes for the seed's 96 px input, and where the final BN-ReLU appears.
PRESET_SHAPES = {
    "seed": [(32, 48), (32, 48), (32, 48), (32, 24), (32, 24), (64, 12), (128, 6)],
    "resnet18": [(64, 48), (64, 48), (64, 48), (64, 24), (64, 24), (128, 12), (256, 6), (512, 3)],
    "resnet34": [(64, 48), (64, 48), (64, 48), (64, 24), (64, 24), (128, 12), (256, 6), (512, 3)],
}
PRESET_UNITS = {"seed": [2, 2, 2], "resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3]}


@pytest.mark.parametrize("preset", sorted(PRESET_SHAPES))
@pytest.mark.parametrize("order", ["post", "pre"])
def test_model_presets(preset, order):
    from resnet_exp.config import compose_config

    cfg = compose_config([f"model={preset}", f"block.order={order}"])
    net = ResNet(**cfg.block, **cfg.model)
    rows = shape_summary(net, (2, 1, 96, 96))
    convs = [(shape[1], shape[2]) for _, shape in rows if len(shape) == 4]
    final = [name for name, _ in rows if name.startswith("final_")]
    # the seed replica has no final BN-ReLU; the new presets add it for pre-activation only
    expect_final = preset != "seed" and order == "pre"
    assert final == (["final_bn", "final_relu"] if expect_final else [])
    assert convs == PRESET_SHAPES[preset] + [PRESET_SHAPES[preset][-1]] * len(final) + [(convs[-1][0], 1)]
    assert rows[-1] == ("fc", (2, 10))
    assert [len(getattr(net, f"stage{i + 1}")) for i in range(len(PRESET_UNITS[preset]))] == PRESET_UNITS[preset]


def test_every_ordering_users_may_choose_is_implemented_once():
    """config.ORDERINGS (what the checks accept, without torch) and the classes blocks.py registers
    are the same names."""
    from resnet_exp import config

    assert list(ORDERINGS) == list(config.ORDERINGS)


# He et al.'s CIFAR network (model=cifar_resnetN): 6n+2 layers, n units per stage; its parameter
# counts as the paper gives them (2015, Table 6: ResNet-20 0.27 M, ResNet-56 0.85 M, ResNet-110 1.7 M).
CIFAR_DEPTHS = {20: (3, 0.27e6), 56: (9, 0.85e6), 110: (18, 1.7e6), 164: (27, None), 998: (166, None)}


def cifar_parameters(n: int, order: str, shortcut: str) -> int:
    """The CIFAR network's parameters, counted by hand: a 3x3 stem conv (1 -> 16, with bias) and its
    BN; per unit two 3x3 convs with biases and two BNs (a pre unit's first BN on its input); a 1x1
    projection with bias where stages 2 and 3 start (not in a plain network); the final BN for
    pre-activation orderings; the linear layer 64 -> 10."""
    conv = lambda cin, cout, k: cin * cout * k * k + cout  # noqa: E731
    total = conv(1, 16, 3) + 2 * 16
    width = 16
    for channels in (16, 32, 64):
        for i in range(n):
            cin = width if i == 0 else channels
            bn1 = cin if order == "pre" else channels
            total += conv(cin, channels, 3) + conv(channels, channels, 3) + 2 * bn1 + 2 * channels
            if i == 0 and cin != channels and shortcut == "projection":
                total += conv(cin, channels, 1)
        width = channels
    if order in ("pre", "relu_only_pre"):
        total += 2 * 64
    return total + 64 * 10 + 10


@pytest.mark.parametrize("depth", sorted(CIFAR_DEPTHS))
@pytest.mark.parametrize("block", [*sorted(ORDERINGS), "plain"])
def test_cifar_presets_follow_he_et_al(depth, block):
    """Every ordering and the plain network (block=NAME) at 20, 56, 110 and 164 layers: the paper's
    parameter count, the hand count, and the shapes of a 28 px input layer by layer."""
    from resnet_exp.config import compose_config

    n, paper = CIFAR_DEPTHS[depth]
    cfg = compose_config([f"model=cifar_resnet{depth}", f"block={block}", "data.resize=null"])
    order, shortcut = cfg.block.order, cfg.block.shortcut
    assert (order, shortcut) == (("post", "none") if block == "plain" else (block, "projection"))
    net = ResNet(**cfg.block, **cfg.model)
    params = sum(p.numel() for p in net.parameters())
    assert params == cifar_parameters(n, order, shortcut)
    if paper is not None:
        assert abs(params - paper) / paper < 0.03
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) + 1 == depth  # 6n + 1 convolutions of 3x3 and the linear layer
    final = ["final_bn", "final_relu"] if order in ("pre", "relu_only_pre") else []
    assert shape_summary(net, (2, 1, 28, 28)) == [
        ("conv", (2, 16, 28, 28)),
        ("bn", (2, 16, 28, 28)),
        ("relu", (2, 16, 28, 28)),
        ("stage1", (2, 16, 28, 28)),
        ("stage2", (2, 32, 14, 14)),
        ("stage3", (2, 64, 7, 7)),
        *[(name, (2, 64, 7, 7)) for name in final],
        ("gap", (2, 64, 1, 1)),
        ("fc", (2, 10)),
    ]
    stages = [net.stage1, net.stage2, net.stage3]
    assert [len(s) for s in stages] == [n, n, n]
    assert [s[0].conv1.stride for s in stages] == [(1, 1), (2, 2), (2, 2)]
    assert [s[0].projects for s in stages] == [False, shortcut == "projection", shortcut == "projection"]
    assert net.conv.kernel_size == (3, 3) and net.conv.stride == (1, 1)


def test_unknown_stem_names_the_stems():
    with pytest.raises(ValueError, match=r"model.stem='vit' is not a stem; choose one of: seed, small"):
        ResNet("post", stem="vit")
