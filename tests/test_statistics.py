"""The study's intervals and tests (``big5chat.statistics``): textbook values, the undefined cases (NaN, never an
error), and the percentile bootstrap drawing exactly the resamples of the study's numpy loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from big5chat import statistics as st

Z95 = 1.959963984540054  # the normal quantile at 0.975


def test_wilson_interval_textbook_values_and_edges() -> None:
    lo, hi = st.wilson_interval(3, 4)  # Newcombe (1998): 0.3006 .. 0.9544
    assert lo == pytest.approx(0.3006, abs=1e-4) and hi == pytest.approx(0.9544, abs=1e-4)
    lo, hi = st.wilson_interval(0, 10)
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(0.2775, abs=1e-4)  # never below 0, never a zero width
    lo, hi = st.wilson_interval(10, 10)
    assert hi == pytest.approx(1.0, abs=1e-12) and lo == pytest.approx(0.7225, abs=1e-4)
    assert all(math.isnan(v) for v in st.wilson_interval(0, 0))


@pytest.mark.parametrize(("k", "n"), [(0, 1), (1, 3), (7, 20), (33, 50), (120, 121)])
def test_wilson_interval_is_the_score_formula(k: int, n: int) -> None:
    p, d = k / n, 1 + Z95**2 / n
    c, h = (p + Z95**2 / (2 * n)) / d, Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / d
    assert st.wilson_interval(k, n) == (pytest.approx(c - h, abs=1e-14), pytest.approx(c + h, abs=1e-14))


def test_binomial_p_and_mcnemar() -> None:
    assert st.binomial_p(5, 10) == pytest.approx(1.0)
    assert st.binomial_p(10, 10) == pytest.approx(2 * 0.5**10)
    assert math.isnan(st.binomial_p(0, 0))
    out = st.mcnemar_exact([True, True, True, False, True], [False, False, False, False, True])
    assert out == {"n": 5, "a_only": 3, "b_only": 0, "p": pytest.approx(2 * 0.5**3)}
    assert st.mcnemar_exact([True, False], [True, False])["p"] == 1.0  # nothing discordant
    with pytest.raises(ValueError, match="differ in length"):
        st.mcnemar_exact([True], [True, False])


def test_pearson_is_fisher_z_and_nan_where_undefined() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=12)
    y = x + rng.normal(size=12)
    x[3] = np.nan  # the pair is left out
    r, lo, hi, n = st.pearson(x, y)
    ok = ~np.isnan(x)
    ref = float(np.corrcoef(x[ok], y[ok])[0, 1])
    z, se = math.atanh(ref), 1 / math.sqrt(11 - 3)
    assert n == 11 and r == pytest.approx(ref, abs=1e-12)
    assert (lo, hi) == (pytest.approx(math.tanh(z - Z95 * se), abs=1e-12), pytest.approx(math.tanh(z + Z95 * se), abs=1e-12))
    assert all(math.isnan(v) for v in st.pearson(np.ones(5), y[:5])[:3])  # a constant series
    r3 = st.pearson([1.0, 2.0, 3.0], [1.0, 3.0, 2.0])
    assert r3.r == pytest.approx(0.5) and math.isnan(r3.lo) and r3.n == 3  # an r, no interval below 4 pairs
    assert math.isnan(st.pearson([1.0, 2.0, 3.0], [1.0, 3.0, 2.0], min_n=4).r)
    assert math.isnan(st.pearson([1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0]).lo)  # |r| = 1: no Fisher z


def test_mean_interval_is_the_t_interval() -> None:
    v = np.array([0.2, 0.5, -0.1, 0.4, 0.3])
    mean, lo, hi = st.mean_interval(v)
    ci = stats.ttest_1samp(v, 0.0).confidence_interval(0.95)
    assert mean == pytest.approx(0.26) and (lo, hi) == (pytest.approx(ci.low, abs=1e-12), pytest.approx(ci.high, abs=1e-12))
    half = stats.t.ppf(0.975, 4) * v.std(ddof=1) / np.sqrt(5)
    assert (lo, hi) == (mean - half, mean + half)  # to the bit: the arithmetic the study's tables were written with
    assert st.mean_interval([0.5])[0] == 0.5 and math.isnan(st.mean_interval([0.5])[1])
    assert all(math.isnan(x) for x in st.mean_interval([]))


def _numpy_bootstrap(samples: list[np.ndarray], statistic, n_boot: int, seed: int, ci: float = 0.95):  # type: ignore[no-untyped-def]
    """The loop the study's intervals were first computed with: one ``integers`` draw per sample, in order."""
    rng = np.random.default_rng(seed)
    drawn = [s[rng.integers(0, len(s), size=(n_boot, len(s)))] if len(s) else np.empty((n_boot, 0), s.dtype) for s in samples]
    boots = np.asarray(statistic(*drawn, axis=-1))
    a = (1 - ci) / 2
    return np.quantile(boots, a, axis=-1), np.quantile(boots, 1 - a, axis=-1)


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_percentile_bootstrap_draws_the_numpy_loops_resamples(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    a, b = rng.normal(size=17), rng.integers(1, 6, size=9).astype(float)

    def two(x, y, axis=-1):  # type: ignore[no-untyped-def]
        return np.stack([x.mean(axis=axis), np.concatenate([x, y], axis=axis).mean(axis=axis)])

    for samples, statistic in (([a], np.mean), ([a, b], two)):
        lo, hi = st.percentile_bootstrap(samples, statistic, n_boot=300, seed=seed)
        ref_lo, ref_hi = _numpy_bootstrap(samples, statistic, 300, seed)
        np.testing.assert_array_equal(lo, ref_lo)  # the same numbers, bit for bit
        np.testing.assert_array_equal(hi, ref_hi)
    lo, hi = st.percentile_bootstrap([a, b], two, n_boot=300, seed=seed)
    assert lo.shape == (2,) and (lo < hi).all()


def test_percentile_bootstrap_holds_one_value_samples_fixed() -> None:
    one, many, empty = np.array([2.0]), np.array([1.0, 4.0, 6.0, 9.0]), np.array([], float)

    def pooled(x, y, z, axis=-1):  # type: ignore[no-untyped-def]
        return np.concatenate([x, y, z], axis=axis).mean(axis=axis)

    lo, hi = st.percentile_bootstrap([one, many, empty], pooled, n_boot=200, seed=3)
    ref_lo, ref_hi = _numpy_bootstrap([one, many, empty], pooled, 200, 3)  # numpy draws nothing for a one-value sample
    assert (float(lo), float(hi)) == (float(ref_lo), float(ref_hi))
    lo, hi = st.percentile_bootstrap([one], np.mean, n_boot=50, seed=0)  # nothing varies: the interval is the value
    assert float(lo) == float(hi) == 2.0
