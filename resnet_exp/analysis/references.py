"""The published numbers this project's results are set beside, in one place: the seed's one run
per ordering (the ResNet chapter of *Dive into Deep Learning*, MXNet edition, as one reader adapted
it: a 2018 GPU, about 41 s an epoch) and He et al. 2016's Table 2."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SeedRun:
    """The seed's one run of an ordering: its epoch-1 training loss, final and best test accuracy
    (the best chosen on the test set; BatchNorm's running averages, the seed's only measure)."""

    first_loss: float
    final: float
    best: float


SEED = {
    "post": SeedRun(first_loss=0.557, final=0.893, best=0.917),
    "pre": SeedRun(first_loss=1.186, final=0.908, best=0.917),
}

# He et al. 2016, "Identity Mappings in Deep Residual Networks", Table 2: ResNet-110's test error (%)
# on their data set (not this project's default), the residual units of their Fig. 4 (a)-(e), by
# this project's block.order names.
HE_ET_AL = {
    "post": ("(a) original", 6.61),
    "bn_after_add": ("(b) BN after addition", 8.17),
    "relu_before_add": ("(c) ReLU before addition", 7.84),
    "relu_only_pre": ("(d) ReLU-only pre-activation", 6.71),
    "pre": ("(e) full pre-activation", 6.37),
}

# He et al. 2015, "Deep Residual Learning for Image Recognition", Table 6: the test error (%) of their
# network for small images with the original (post) unit on their data set (not this project's
# default), by depth (6n+2 layers); at 110 layers Table 2 above gives the same unit's mean (6.61).
# Their plain networks have no table (Fig. 6).
HE_2015_BY_DEPTH = {20: 8.75, 56: 6.97}
