"""The study's intervals and tests, each written once and computed by scipy.

- `wilson_interval`: 95% Wilson score interval of a proportion (good at small n and near 0 or 1);
- `binomial_p`: exact two-sided binomial test of a proportion against chance;
- `mcnemar_exact`: exact McNemar test of two methods on the same items (a binomial test of the discordant items);
- `pearson`: Pearson's r with its Fisher-z interval;
- `mean_interval`: a mean with its t interval;
- `percentile_bootstrap`: percentile bootstrap interval of statistics of one or more samples, each resampled with
  replacement on its own.

Undefined results are NaN, never an error: an empty sample, a constant series, too few points for an interval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy import stats

NAN = float("nan")


def wilson_interval(hits: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """(low, high) of the Wilson score interval for ``hits`` of ``n``; (nan, nan) when n is 0."""
    if n <= 0:
        return (NAN, NAN)
    ci = stats.binomtest(int(hits), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def binomial_p(hits: int, n: int, chance: float = 0.5) -> float:
    """Exact two-sided p-value of ``hits`` of ``n`` against ``chance``; nan when n is 0."""
    return float(stats.binomtest(int(hits), int(n), chance).pvalue) if n > 0 else NAN


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> dict[str, Any]:
    """Exact McNemar test of paired hits ``a`` and ``b`` (same items, same order): only the items where exactly one
    method hits carry information, and under "no difference" each of them is a fair coin.

    Returns the discordant counts (``a_only``: a hits and b misses; ``b_only``: the reverse) and the two-sided
    p-value (1.0 when no item is discordant).
    """
    x, y = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if x.shape != y.shape:
        raise ValueError(f"paired hits differ in length: {x.shape} vs {y.shape}")
    a_only, b_only = int((x & ~y).sum()), int((~x & y).sum())
    p = binomial_p(a_only, a_only + b_only) if a_only + b_only else 1.0
    return {"n": int(x.size), "a_only": a_only, "b_only": b_only, "p": p}


class Correlation(NamedTuple):
    r: float
    lo: float
    hi: float
    n: int


def pearson(x: Any, y: Any, *, confidence: float = 0.95, min_n: int = 2) -> Correlation:
    """Pearson's r over the pairs where neither value is NaN, with its Fisher-z interval.

    r is NaN below ``min_n`` pairs or when either series is constant; the interval is NaN below 4 pairs or at
    |r| = 1 (the Fisher z of r is infinite there)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y, n = x[ok], y[ok], int(ok.sum())
    if n < max(min_n, 2) or np.std(x) == 0 or np.std(y) == 0:
        return Correlation(NAN, NAN, NAN, n)
    res = stats.pearsonr(x, y)
    r = float(res.statistic)
    if n < 4 or abs(r) >= 1:
        return Correlation(r, NAN, NAN, n)
    ci = res.confidence_interval(confidence)
    return Correlation(r, float(ci.low), float(ci.high), n)


def mean_interval(values: Any, confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``values`` with its t interval, mean -+ t(n - 1) x sd / sqrt(n) (the interval of
    ``scipy.stats.ttest_1samp``, in this arithmetic); NaN mean when empty, NaN interval below 2 values."""
    v = np.asarray(values, float)
    n = len(v)
    if n == 0:
        return (NAN, NAN, NAN)
    mean = float(v.mean())
    if n < 2:
        return (mean, NAN, NAN)
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1) * v.std(ddof=1) / np.sqrt(n))
    return (mean, mean - half, mean + half)


def percentile_bootstrap(
    samples: Sequence[np.ndarray], statistic: Callable[..., Any], *, n_boot: int, seed: int, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of the percentile bootstrap interval of ``statistic(*samples, axis=-1)`` (vectorized; it may
    return one value or an array of several statistics), each sample resampled with replacement on its own, in
    order, ``n_boot`` times from ``numpy.random.default_rng(seed)``: one ``integers(0, n, (n_boot, n))`` draw per
    sample, as ``scipy.stats.bootstrap`` makes them. The interval is read off scipy's bootstrap distribution with
    ``numpy.quantile`` (linear interpolation, as scipy's; numpy's arithmetic keeps the study's intervals to the bit).

    scipy resamples samples of two or more values; a sample of one value has one resample (itself), so it is held
    fixed (numpy draws nothing for it either), and an empty one is passed as it is."""
    samples = [np.asarray(s) for s in samples]
    varied = [i for i, s in enumerate(samples) if len(s) > 1]
    rng = np.random.default_rng(seed)
    if not varied:  # nothing to resample: every draw is the sample itself
        point = np.asarray(statistic(*(s[None, :] for s in samples), axis=-1))[..., 0]
        return point, point

    def of_varied(*drawn: np.ndarray, axis: int = -1) -> Any:
        shape = drawn[0].shape[:-1]
        full = [np.broadcast_to(s, (*shape, len(s))) for s in samples]
        for i, d in zip(varied, drawn):
            full[i] = d
        return statistic(*full, axis=axis)

    res = stats.bootstrap([samples[i] for i in varied], of_varied, n_resamples=n_boot, vectorized=True, paired=False,
                          confidence_level=confidence, method="percentile", rng=rng)  # fmt: skip
    a = (1 - confidence) / 2
    draws = res.bootstrap_distribution
    return np.quantile(draws, a, axis=-1), np.quantile(draws, 1 - a, axis=-1)
