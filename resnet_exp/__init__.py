"""resnet-exp: how should the layers inside a residual block be ordered?"""

__version__ = "0.1.0"
