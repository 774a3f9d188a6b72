"""How sure a level-accuracy comparison is: two methods judged on the same items (same prefix or scenario, same
trait and level), each item a hit or a miss.

- `wilson_interval`: 95% interval of one method's accuracy (Wilson score, good at small n and near 0 or 1).
- `binomial_p`: exact two-sided test of one method's accuracy against chance (0.5).
- `mcnemar_exact`: exact McNemar test of two methods on the same items: only the items where exactly one method
  hits carry information, and under "no difference" each of them is a fair coin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import binomtest

from big5chat.psychometrics.scoring import rounded

ALPHA = 0.05  # a comparison counts as shown when its two-sided p-value is below this


def wilson_interval(hits: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """(low, high) of the Wilson score interval for ``hits`` of ``n``; (nan, nan) when n is 0."""
    if n <= 0:
        return (float("nan"), float("nan"))
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def binomial_p(hits: int, n: int, chance: float = 0.5) -> float:
    """Exact two-sided p-value of ``hits`` of ``n`` against ``chance``; nan when n is 0."""
    return float(binomtest(hits, n, chance).pvalue) if n > 0 else float("nan")


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> dict[str, Any]:
    """Exact McNemar test of paired hits ``a`` and ``b`` (same items, same order).

    Returns the discordant counts (``a_only``: a hits and b misses; ``b_only``: the reverse) and the two-sided
    p-value (1.0 when no item is discordant).
    """
    x, y = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if x.shape != y.shape:
        raise ValueError(f"paired hits differ in length: {x.shape} vs {y.shape}")
    a_only, b_only = int((x & ~y).sum()), int((~x & y).sum())
    p = binomial_p(a_only, a_only + b_only) if a_only + b_only else 1.0
    return {"n": int(x.size), "a_only": a_only, "b_only": b_only, "p": p}


def _accuracy(hits: np.ndarray) -> dict[str, Any]:
    k, n = int(hits.sum()), int(hits.size)
    low, high = wilson_interval(k, n)
    return {"accuracy": rounded(k / n if n else None), "ci95": [rounded(low), rounded(high)], "p_vs_chance": rounded(binomial_p(k, n))}


def compare_methods(a_name: str, a: Sequence[bool], b_name: str, b: Sequence[bool]) -> dict[str, Any]:
    """Both methods' accuracy with its 95% interval and its p-value against chance, and the exact McNemar test of
    ``a`` against ``b`` on the same items; floats rounded as the metrics files hold them (4 digits, NaN as None)."""
    x, y = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    test = mcnemar_exact(x, y)
    return {
        a_name: _accuracy(x),
        b_name: _accuracy(y),
        "n": test["n"],
        f"{a_name}_only": test["a_only"],
        f"{b_name}_only": test["b_only"],
        "mcnemar_p": rounded(test["p"]),
    }
