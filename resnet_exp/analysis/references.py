"""The published numbers this project's results are set beside, in one place: the seed's one run
per ordering (the ResNet chapter of *Dive into Deep Learning*, MXNet edition, as one reader adapted
it: a 2018 GPU, about 41 s an epoch) and He et al. 2016's Table 2."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# The seed's two logs as its program printed them, one section per ordering.
SEED_LOG = Path(__file__).with_name("seed_log.txt")
_EPOCH = re.compile(
    r"^epoch (?P<epoch>\d+), loss (?P<loss>[\d.]+), train acc (?P<train_acc>[\d.]+), "
    r"test acc (?P<test_acc>[\d.]+), time (?P<time_s>[\d.]+) sec$"
)


@dataclass(frozen=True)
class SeedEpoch:
    """One line of the seed's log: an epoch's training loss and accuracy, its test accuracy
    (BatchNorm's running averages, the seed's only measure) and its time in seconds."""

    epoch: int
    loss: float
    train_acc: float
    test_acc: float
    time_s: float


@dataclass(frozen=True)
class SeedRun:
    """The seed's one run of an ordering, as its log has it, and the figures the project quotes of
    it, computed from the log (test accuracy as fractions, as printed)."""

    epochs: tuple[SeedEpoch, ...]

    @property
    def curve(self) -> list[float]:
        return [e.test_acc for e in self.epochs]

    @property
    def first_loss(self) -> float:
        return self.epochs[0].loss

    @property
    def final(self) -> float:
        return self.epochs[-1].test_acc

    @property
    def best(self) -> float:
        """The highest test accuracy (chosen on the test set: the seed has no other)."""
        return max(self.curve)

    @property
    def best_epoch(self) -> int:
        return self.epochs[self.curve.index(self.best)].epoch

    @property
    def largest_drop(self) -> tuple[float, int]:
        """The largest fall of test accuracy from one epoch to the next, and the epoch it fell
        from ((0.0, 0) if it never falls)."""
        falls = [(a.test_acc - b.test_acc, a.epoch) for a, b in zip(self.epochs, self.epochs[1:])]
        return max([(0.0, 0), *falls])

    def late_range(self, first_epoch: int) -> float:
        """How far test accuracy moves from ``first_epoch`` on (max - min)."""
        late = [e.test_acc for e in self.epochs if e.epoch >= first_epoch]
        return max(late) - min(late)


def read_seed_log(path: Path = SEED_LOG) -> dict[str, SeedRun]:
    """The seed's runs by ordering (``post``, ``pre``), from its log's ``[ordering]`` sections; a
    line that is neither a section, a comment nor an epoch as the seed printed it is an error."""
    runs: dict[str, list[SeedEpoch]] = {}
    order = None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            order = line[1:-1]
            runs[order] = []
            continue
        m = _EPOCH.match(line)
        if m is None or order is None:
            raise ValueError(f"{path}:{number}: not an epoch line of the seed's log: {line!r}")
        d = m.groupdict()
        runs[order].append(
            SeedEpoch(int(d["epoch"]), *(float(d[k]) for k in ("loss", "train_acc", "test_acc", "time_s")))
        )
    return {order: SeedRun(tuple(epochs)) for order, epochs in runs.items()}


SEED = dict(sorted(read_seed_log().items()))  # post, pre

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
