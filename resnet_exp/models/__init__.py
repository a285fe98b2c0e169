"""The network: the residual-unit orderings (blocks.py) and the ResNet built from them (resnet.py)."""
