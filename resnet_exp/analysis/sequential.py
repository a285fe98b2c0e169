"""Seeds until the answer is resolved: an anytime-valid confidence sequence for a paired difference,
the rule that stops a sequential sweep, and what a design costs in seeds.

The confidence sequence (``confidence_sequence``) is the scale-invariant Gaussian-mixture one: for
paired differences X_1, X_2, ... with mean mu, the likelihood ratio of the data's shape (the data
up to a common scale, whose law does not depend on the unknown sigma) for an effect theta = (mu' -
mu) / sigma against theta = 0, mixed over theta ~ N(0, tau2), is

    L_n(mu) = (1 + n tau2)^(-1/2) (1 - tau2 T^2 / ((1 + n tau2) Q))^(-n/2),
    T = sum(X_i - mu), Q = sum((X_i - mu)^2),

a nonnegative martingale with L_1 = 1 under N(mu, sigma^2) data whatever sigma is; by Ville's
inequality it ever reaches 1/alpha with probability at most alpha. At each n, the values of mu
where it is below 1/alpha are an interval (closed form below), valid at every n at once (so is
their running intersection, which ``decide`` uses): one may look after every seed
and stop whenever the answer is in (Wang and Ramdas 2023, "Anytime-valid t-tests and confidence
sequences for Gaussian means with unknown variance", the test martingale in the reduced
filtration; Howard et al. 2021 for confidence sequences at large). It is finite from
``first_finite(alpha, tau2)`` pairs on (4 at alpha = 0.05, tau2 = 3). A t-interval recomputed
after every seed does not keep its level under such looks:
``simulate_coverage`` measures both.

No package does this one: confseq (Howard's) implements the sub-Gaussian and bounded boundaries,
which need sigma or a range known in advance; here sigma is what a pilot only estimates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

# The mixture's prior scale of the effect in units of sigma: tau2 = 3 makes the sequence tightest
# around 5-10 pairs, where this project's comparisons resolve (docs/sequential.md).
TAU2 = 3.0


def half_width_factor(n: int, alpha: float, tau2: float = TAU2) -> float:
    """The confidence sequence's half-width at ``n`` pairs in units of the sample standard deviation
    (inf where it is not finite yet: n < 4 at alpha = 0.05, tau2 = 3)."""
    if n < 2:
        return math.inf
    kn = n * tau2 / (1 + n * tau2)
    g = 1 - ((1 + n * tau2) ** (1 / n) * alpha ** (-2 / n)) ** -1
    return math.sqrt(g * (n - 1) / (n * (kn - g))) if kn > g else math.inf


def first_finite(alpha: float, tau2: float = TAU2) -> int | None:
    """The fewest pairs at which the confidence sequence is finite (None: not within 10,000)."""
    return next((n for n in range(2, 10_000) if math.isfinite(half_width_factor(n, alpha, tau2))), None)


def confidence_sequence(diffs: Sequence[float], alpha: float = 0.05, tau2: float = TAU2) -> tuple[float, float]:
    """The (1 - alpha) confidence sequence for the mean of ``diffs`` at its current length: (low,
    high), (-inf, inf) until it is finite."""
    x = np.asarray(diffs, dtype=float)
    n = len(x)
    if n < 2:
        return -math.inf, math.inf
    factor = half_width_factor(n, alpha, tau2)
    if not math.isfinite(factor):
        return -math.inf, math.inf
    half, mean = factor * float(x.std(ddof=1)), float(x.mean())
    return mean - half, mean + half


def mixture_ratio(diffs: Sequence[float], mu: float, tau2: float = TAU2) -> float:
    """L_n(mu) above, the martingale whose level set ``confidence_sequence`` is (for the tests)."""
    y = np.asarray(diffs, dtype=float) - mu
    n, t, q = len(y), float(y.sum()), float((y * y).sum())
    return (1 + n * tau2) ** -0.5 * (1 - tau2 * t * t / ((1 + n * tau2) * q)) ** (-n / 2)


def comparisons(settings: int) -> int:
    """The pairs of ``settings`` settings a sequential sweep compares, each at alpha divided by
    their number (Bonferroni), so that all its sequences cover together."""
    return settings * (settings - 1) // 2


DIFFER, EQUIVALENT, OPEN = "differ", "equivalent", "open"


@dataclass(frozen=True)
class Decision:
    """Where one comparison stands after n pairs: its mean difference and confidence sequence (in
    the differences' unit), and ``differ`` (the sequence excludes 0), ``equivalent`` (it lies
    inside +-margin) or ``open``."""

    n: int
    mean: float
    low: float
    high: float
    state: str

    @property
    def resolved(self) -> bool:
        return self.state != OPEN


def decide(diffs: Sequence[float], alpha: float, margin: float, tau2: float = TAU2) -> Decision:
    """Where the comparison of ``diffs`` (in the order they came) stands: the running intersection
    of its confidence sequence over every prefix (as valid as each, and never wider than the last
    one, so a comparison once resolved stays resolved); the last one alone where the intersection
    is empty (the sequence has then missed, which happens with probability at most alpha)."""
    low, high = -math.inf, math.inf
    for n in range(2, len(diffs) + 1):
        lo, hi = confidence_sequence(diffs[:n], alpha, tau2)
        low, high = max(low, lo), min(high, hi)
    if low > high:
        low, high = confidence_sequence(diffs, alpha, tau2)
    state = DIFFER if low > 0 or high < 0 else EQUIVALENT if -margin < low and high < margin else OPEN
    mean = float(np.mean(diffs)) if len(diffs) else math.nan
    return Decision(len(diffs), mean, low, high, state)


def simulate_coverage(
    draw, sequences: int, max_n: int, alpha: float = 0.05, tau2: float = TAU2, seed: int = 0
) -> tuple[float, float]:
    """Under optional stopping (a look after every pair, up to ``max_n``), the fraction of
    sequences of ``draw(rng, (sequences, max_n))`` (mean 0) where the confidence sequence ever
    leaves out the true mean 0, and where a 95% t-interval recomputed at each look ever does."""
    rng = np.random.default_rng(seed)
    x = draw(rng, (sequences, max_n))
    cs_missed = np.zeros(sequences, bool)
    t_missed = np.zeros(sequences, bool)
    for n in range(2, max_n + 1):
        mean, sd = x[:, :n].mean(1), x[:, :n].std(1, ddof=1)
        cs_missed |= np.abs(mean) > half_width_factor(n, alpha, tau2) * sd
        t_missed |= np.abs(mean) > stats.t.ppf(1 - alpha / 2, n - 1) * sd / math.sqrt(n)
    return float(cs_missed.mean()), float(t_missed.mean())


def stopping_pairs(
    sd: float,
    difference: float,
    alpha: float,
    margin: float,
    max_n: int,
    runs: int = 4000,
    seed: int = 0,
    tau2: float = TAU2,
) -> np.ndarray:
    """The number of pairs the sequential rule takes (looking after every pair, stopping when the
    comparison's running intersection is resolved, or at ``max_n``) on normal differences of mean ``difference`` and
    standard deviation ``sd``, over ``runs`` simulated sweeps; ``max_n + 1`` where it never stops."""
    rng = np.random.default_rng(seed)
    x = rng.normal(difference, sd, (runs, max_n))
    stop = np.full(runs, max_n + 1)
    low, high = np.full(runs, -np.inf), np.full(runs, np.inf)
    for n in range(2, max_n + 1):  # the running intersection, as decide() keeps it
        mean, s = x[:, :n].mean(1), x[:, :n].std(1, ddof=1)
        half = half_width_factor(n, alpha, tau2) * s
        finite = np.isfinite(half)
        low = np.where(finite, np.maximum(low, mean - half), low)
        high = np.where(finite, np.minimum(high, mean + half), high)
        resolved = (low > 0) | (high < 0) | ((-margin < low) & (high < margin))
        stop = np.where(resolved & (stop > max_n), n, stop)
    return stop


def fixed_pairs_to_differ(sd: float, difference: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """The pairs a fixed-n paired t-test needs to find ``difference`` (two-sided, level ``alpha``)
    with probability ``power`` (noncentral t); 2 where the differences do not spread at all."""
    if sd <= 0:
        return 2
    for n in range(2, 10_000):
        df, nc = n - 1, abs(difference) / sd * math.sqrt(n)
        crit = stats.t.ppf(1 - alpha / 2, df)
        if stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc) >= power:
            return n
    return 10_000


def fixed_pairs_for_equivalence(
    sd: float, margin: float, difference: float = 0.0, alpha: float = 0.05, power: float = 0.8
) -> int:
    """The pairs a fixed-n TOST (the 1 - 2 alpha interval inside +-margin) needs to show
    equivalence with probability ``power`` when the true difference is ``difference``: the
    interval's half-width is t(1 - alpha, n - 1) s / sqrt(n), with s taken at ``sd`` and the mean
    normal around ``difference``."""
    if sd <= 0:
        return 2
    for n in range(2, 10_000):
        half = stats.t.ppf(1 - alpha, n - 1) * sd / math.sqrt(n)
        if half >= margin:
            continue
        se = sd / math.sqrt(n)
        p = stats.norm.cdf((margin - half - difference) / se) - stats.norm.cdf((-margin + half - difference) / se)
        if p >= power:
            return n
    return 10_000


def describe(name: str, d: Decision, margin: float) -> str:
    """One comparison's standing, in a line."""
    if not math.isfinite(d.low):
        return f"{name}: {d.n} pairs, mean {d.mean:+.2f} points, its confidence sequence not finite yet"
    reading = {
        "differ": "they differ (the sequence excludes 0)",
        "equivalent": f"equivalent within ±{margin:g} points",
        "open": "open",
    }[d.state]
    return (
        f"{name}: {d.n} pairs, mean {d.mean:+.2f} points, confidence sequence [{d.low:+.2f}, {d.high:+.2f}]: {reading}"
    )
