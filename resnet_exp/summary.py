"""``python -m resnet_exp.summary [--size N] [KEY=VALUE ...]``: the network's shapes, layer by layer of the top level.

Builds the network from the same config as a run (so ``block.order=pre`` or ``model.channels=...``
apply) and prints the output shape of each top-level layer (the stem's conv, BN, ReLU and pool,
each stage of residual units, the head) for a 1 x ``model.in_channels`` x N x N input, as the seed
did, and the parameter count.
"""

from __future__ import annotations

import argparse
import sys

from resnet_exp.command_line import described, load_config
from resnet_exp.config import ConfigError
from resnet_exp.data import data_set
from resnet_exp.models.resnet import format_summary
from resnet_exp.training.build import network


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resnet_exp.summary", description=described(__doc__))
    parser.add_argument(
        "--size", type=int, default=None, help="input height and width (default: data.resize, else the data set's)"
    )
    parser.add_argument("overrides", nargs="*", help="config overrides, as for resnet_exp.run")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.overrides)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    size = args.size or cfg.data.resize or data_set(cfg.data.name).size
    net = network(cfg)
    shape = (1, cfg.model.in_channels, size, size)
    print(f"block.order={cfg.block.order} block.shortcut={cfg.block.shortcut}, input {shape}")
    print(format_summary(net, shape))
    return 0


if __name__ == "__main__":
    sys.exit(main())
