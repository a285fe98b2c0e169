"""``python -m resnet_exp.summary [--size N] [KEY=VALUE ...]``: the network's layer-by-layer shapes.

Builds the network from the same config as a run (so ``block.order=pre`` or ``model.channels=...``
apply) and prints each top-level layer's output shape for a 1 x 1 x N x N input, as the seed did.
"""

from __future__ import annotations

import argparse
import sys

from resnet_exp.config import ConfigError, load_config
from resnet_exp.resnet import ResNet, format_summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resnet_exp.summary", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=None, help="input height and width (default: data.resize)")
    parser.add_argument("overrides", nargs="*", help="config overrides, as for resnet_exp.run")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.overrides)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    size = args.size or cfg.data.resize
    net = ResNet(**cfg.block, **cfg.model)
    print(f"block.order={cfg.block.order} block.shortcut={cfg.block.shortcut}, input (1, 1, {size}, {size})")
    print(format_summary(net, (1, 1, size, size)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
