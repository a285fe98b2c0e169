"""The statistics of a report: mean ± std with a t-interval per group, and each pair of groups
compared (paired by seed where both ran the same seeds, else Welch), Holm-adjusted; intervals
from scipy."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from resnet_exp.analysis.groups import Group
from resnet_exp.analysis.jobs import PRECISE


@dataclass
class Estimate:
    """Mean, sample standard deviation and the 95% t-interval of the mean."""

    n: int
    mean: float
    std: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Estimate:
        x = np.asarray(list(values), dtype=float)
        n = len(x)
        if n == 0:
            return cls(0, math.nan, math.nan, math.nan, math.nan)
        mean = float(x.mean())
        if n == 1:
            return cls(1, mean, math.nan, math.nan, math.nan)
        std = float(x.std(ddof=1))
        half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
        return cls(n, mean, std, mean - half, mean + half)

    @property
    def prediction(self) -> tuple[float, float]:
        """The 95% prediction interval for one more value from the same spread: what a single run is
        set against (the mean's interval is narrower by sqrt(n + 1))."""
        half = (self.high - self.mean) * math.sqrt(self.n + 1)
        return self.mean - half, self.mean + half

    def text(self, scale: float = 1.0, digits: int = 4) -> str:
        if self.n == 0:
            return "n/a"
        if self.n == 1:
            return f"{self.mean * scale:.{digits}f} (one run)"
        return (
            f"{self.mean * scale:.{digits}f} ± {self.std * scale:.{digits}f} "
            f"[{self.low * scale:.{digits}f}, {self.high * scale:.{digits}f}]"
        )


@dataclass(frozen=True)
class PairedDifference:
    """Paired differences (B minus A, one per seed): their mean with its t-intervals, the paired
    t-test's p, and TOST's p for equivalence within ±margin (the larger of the two one-sided
    tests' p; below 5% exactly when the 90% interval lies inside the margin). Pairs that all
    differ alike (no spread) have the point as their interval, and the tests their limits: p 0
    (1 where the difference is 0), TOST 0 inside the margin, else 1. Fewer than two pairs: NaN."""

    differences: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.differences)

    @property
    def mean(self) -> float:
        return float(np.mean(self.differences)) if self.n else math.nan

    @property
    def sd(self) -> float:
        return float(np.std(self.differences, ddof=1)) if self.n > 1 else math.nan

    @property
    def se(self) -> float:
        return self.sd / math.sqrt(self.n) if self.n > 1 else math.nan

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        half = float(stats.t.ppf(0.5 + level / 2, self.n - 1)) * self.se if self.n > 1 else math.nan
        return self.mean - half, self.mean + half

    @property
    def p(self) -> float:
        """The paired t-test's two-sided p."""
        if self.n < 2:
            return math.nan
        if self.se == 0:
            return 1.0 if self.mean == 0 else 0.0
        return float(stats.ttest_1samp(self.differences, 0.0).pvalue)

    def tost_p(self, margin: float) -> float:
        if self.n < 2:
            return math.nan
        if self.se == 0:
            return 0.0 if -margin < self.mean < margin else 1.0
        below = stats.t.sf((self.mean + margin) / self.se, self.n - 1)  # H0: difference <= -margin
        above = stats.t.cdf((self.mean - margin) / self.se, self.n - 1)  # H0: difference >= +margin
        return float(max(below, above))


@dataclass
class Comparison:
    a: Group
    b: Group
    measure: str
    paired: bool
    n_a: int
    n_b: int
    diff: float
    low: float
    high: float
    p: float
    p_holm: float = math.nan

    def sentence(self) -> str:
        """The plain reading, consistent with the interval and both p-values: the interval is the
        raw (unadjusted) 95% CI, which excludes 0 exactly when the raw p is below 0.05; the verdict
        follows the Holm-adjusted p, and where the two disagree the sentence says so."""
        n = f"n={self.n_a}" if self.n_a == self.n_b else f"n={self.n_a} and {self.n_b}"
        if math.isnan(self.p):
            return f"Too few completed runs to compare ({n})."
        pts = f"{abs(self.diff) * 100:.2f} points"
        ci = f"95% CI {self.low * 100:+.2f} to {self.high * 100:+.2f}"
        higher, lower = (self.a, self.b) if self.diff > 0 else (self.b, self.a)
        if self.p_holm < 0.05:
            return (
                f"{higher.label} ends higher than {lower.label} by {pts} ({ci}), "
                f"significant at {n} after Holm correction."
            )
        if self.p < 0.05:
            return (
                f"Not distinguishable at {n} after correcting for the other comparisons: {higher.label} ends "
                f"higher by {pts} and the raw {ci} excludes 0 (p={self.p:.3f}), but the Holm-adjusted "
                f"p={self.p_holm:.3f} is not below 0.05."
            )
        return f"Not distinguishable at {n}: the difference of {pts} has a {ci} points that includes 0."


def compare(a: Group, b: Group, measure: str = PRECISE) -> Comparison:
    """Difference of mean final test accuracy by ``measure``, a minus b: paired by seed where both
    groups ran the same seeds (each seed once), else Welch's t-test."""
    fa = {j.seed: j.final_of(measure) for j in a.done}
    fb = {j.seed: j.final_of(measure) for j in b.done}
    xa, xb = [j.final_of(measure) for j in a.done], [j.final_of(measure) for j in b.done]
    paired = len(fa) == len(xa) and len(fb) == len(xb) and set(fa) == set(fb) and len(fa) >= 2
    if paired:
        seeds = sorted(fa, key=str)
        found = PairedDifference(tuple(float(fa[s] - fb[s]) for s in seeds))
        low, high = found.interval(0.95)
        return Comparison(a, b, measure, True, found.n, found.n, found.mean, low, high, found.p)
    if len(xa) < 2 or len(xb) < 2:
        return Comparison(
            a,
            b,
            measure,
            False,
            len(xa),
            len(xb),
            (np.mean(xa) if xa else math.nan) - (np.mean(xb) if xb else math.nan),
            math.nan,
            math.nan,
            math.nan,
        )
    diff = float(np.mean(xa) - np.mean(xb))
    if np.ptp(xa) == 0 and np.ptp(xb) == 0:  # no spread in either group
        return Comparison(a, b, measure, False, len(xa), len(xb), diff, diff, diff, 1.0 if diff == 0 else 0.0)
    test = stats.ttest_ind(xa, xb, equal_var=False)  # Welch's
    ci = test.confidence_interval(0.95)
    return Comparison(a, b, measure, False, len(xa), len(xb), diff, float(ci.low), float(ci.high), float(test.pvalue))


def holm_adjusted(ps: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given; a NaN stays NaN and counts for none."""
    ranked = sorted((i for i, p in enumerate(ps) if not math.isnan(p)), key=lambda i: ps[i])
    adjusted = [math.nan] * len(ps)
    running = 0.0
    for rank, i in enumerate(ranked):
        running = max(running, min(1.0, (len(ranked) - rank) * ps[i]))
        adjusted[i] = running
    return adjusted


def holm(comparisons: list[Comparison]) -> None:
    """Holm-Bonferroni adjusted p-values, in place."""
    for c, p in zip(comparisons, holm_adjusted([c.p for c in comparisons])):
        if not math.isnan(p):
            c.p_holm = p
