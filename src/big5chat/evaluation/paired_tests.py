"""How sure a level-accuracy comparison is: two methods judged on the same items (same prefix or scenario, same
trait and level), each item a hit or a miss.

Each method's accuracy gets its 95% Wilson interval and an exact binomial test against chance (0.5); the two
methods are compared by the exact McNemar test on the same items (``big5chat.statistics`` computes all three).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from big5chat.formatting import rounded
from big5chat.statistics import binomial_p, mcnemar_exact, wilson_interval

ALPHA = 0.05  # a comparison counts as shown when its two-sided p-value is below this


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
