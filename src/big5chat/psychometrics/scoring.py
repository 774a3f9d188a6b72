"""Scoring (reverse keys, domain and facet scores), reliability, separation with bootstrap CIs, and
intra-trait correlation matrices against human data (docs/paper.md §2.8-2.9)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from big5chat.statistics import percentile_bootstrap

DOMAINS = ("O", "C", "E", "A", "N")


def keyed(raw: Any, reverse: Any, scale_min: int = 1, scale_max: int = 5) -> np.ndarray:
    """Scores after reverse keying: (min + max) - x on reverse items (6 - x on a 1..5 scale); NaN stays NaN."""
    raw, reverse = np.asarray(raw, float), np.asarray(reverse, bool)
    return np.where(reverse, (scale_min + scale_max) - raw, raw)


def domain_scores(long: pd.DataFrame, by: list[str], unit: str = "domain", value: str = "score") -> pd.DataFrame:
    """Mean keyed score per group and domain (or facet): columns by + [unit, score, n_items, n_missing]."""
    g = long.groupby([*by, unit], sort=False)[value]
    out = g.agg(score="mean", n_items="count", n_rows="size").reset_index()
    out["n_missing"] = out.pop("n_rows") - out["n_items"]
    return out


def runs_summary(domains: pd.DataFrame, by: list[str], unit: str = "domain") -> pd.DataFrame:
    """Mean and SD across runs of the per-run domain scores (the study's reported mean +- sd)."""
    g = domains.groupby([*by, unit], sort=False)["score"]
    return g.agg(mean="mean", sd="std", runs="count").reset_index()


def cronbach_alpha(matrix: np.ndarray) -> float:
    """Cronbach's alpha of a respondents x items matrix (rows with a missing item are left out)."""
    m = np.asarray(matrix, float)
    m = m[~np.isnan(m).any(axis=1)]
    k = m.shape[1] if m.ndim == 2 else 0
    if k < 2 or len(m) < 2:
        return float("nan")
    total_var = m.sum(axis=1).var(ddof=1)
    if total_var == 0:
        return float("nan")
    return float(k / (k - 1) * (1 - m.var(axis=0, ddof=1).sum() / total_var))


def bootstrap_separation(high: np.ndarray, low: np.ndarray, n_boot: int = 1000, seed: int = 0, ci: float = 0.95) -> dict[str, float]:
    """mean(high) - mean(low) over paired items (same items, two conditions), with a percentile bootstrap CI
    that resamples items (``statistics.percentile_bootstrap``)."""
    high, low = np.asarray(high, float), np.asarray(low, float)
    keep = ~(np.isnan(high) | np.isnan(low))
    d = high[keep] - low[keep]
    if len(d) == 0:
        return {"diff": float("nan"), "lo": float("nan"), "hi": float("nan"), "n_items": 0}
    lo, hi = percentile_bootstrap([d], np.mean, n_boot=n_boot, seed=seed, confidence=ci)
    return {"diff": float(d.mean()), "lo": float(lo), "hi": float(hi), "n_items": int(len(d))}


def acquiescence_split(delta: np.ndarray, in_domain: np.ndarray, sign: np.ndarray, n_boot: int = 1000, seed: int = 0,
                       ci: float = 0.95) -> dict[str, float]:  # fmt: skip
    """A questionnaire gap, net of acquiescence. ``delta``: per item of the whole questionnaire, the raw answer under
    the high condition minus under the low one (NaN = missing); ``in_domain``: the induced trait's items; ``sign``:
    +1 forward-keyed, -1 reverse-keyed.

    - gap = mean over the trait's items of sign x delta (the keyed domain score's change);
    - common = mean of delta over every item, whatever its keying or domain (the shift toward "agree": acquiescence);
    - specific = mean over the trait's items of sign x (delta - common) = gap - common x mean(sign): what is left of
      the gap once every item is moved back by the common shift (0 when the answers only moved alike).

    Percentile bootstrap CIs (``statistics.percentile_bootstrap``) resample items with replacement, the trait's items
    and the others separately."""
    delta, in_domain, sign = np.asarray(delta, float), np.asarray(in_domain, bool), np.asarray(sign, float)
    keep = ~np.isnan(delta)
    delta, in_domain, sign = delta[keep], in_domain[keep], sign[keep]
    dom, rest = np.flatnonzero(in_domain), np.flatnonzero(~in_domain)
    if len(dom) == 0:
        nan = float("nan")
        return {k: nan for k in ("gap", "gap_lo", "gap_hi", "common", "common_lo", "common_hi", "specific", "specific_lo", "specific_hi")} | {
            "n_items": 0
        }

    def split(d_idx: np.ndarray, r_idx: np.ndarray, axis: int = -1) -> np.ndarray:
        # d_idx, r_idx: [..., k] item indices (a resample per row); gap, common and specific per resample
        sd = sign[d_idx] * delta[d_idx]
        common = np.concatenate([delta[d_idx], delta[r_idx]], axis=axis).mean(axis=axis)
        gap = sd.mean(axis=axis)
        return np.stack([gap, common, gap - common * sign[d_idx].mean(axis=axis)])

    point = split(dom[None, :], rest[None, :])[:, 0]
    lo, hi = percentile_bootstrap([dom, rest], split, n_boot=n_boot, seed=seed, confidence=ci)
    out: dict[str, float] = {}
    for i, name in enumerate(("gap", "common", "specific")):
        out |= {name: float(point[i]), f"{name}_lo": float(lo[i]), f"{name}_hi": float(hi[i])}
    return out | {"n_items": int(len(dom))}


def correlation_matrix(table: pd.DataFrame, domains: tuple[str, ...] = DOMAINS) -> pd.DataFrame:
    """Pearson correlations between domain columns across the rows (e.g. the 10 induced conditions)."""
    return table[list(domains)].astype(float).corr()


def frobenius(a: pd.DataFrame, b: pd.DataFrame) -> float:
    """||a - b||_F over the common domains (lower is closer)."""
    cols = [c for c in a.columns if c in b.columns]
    return float(np.linalg.norm(a.loc[cols, cols].to_numpy() - b.loc[cols, cols].to_numpy()))


_ITEM = re.compile(r"^([OCEAN])(\d+)$")


def human_domains(responses: pd.DataFrame, reverse_items: list[str], scale_min: int, scale_max: int, min_items: int = 3) -> pd.DataFrame:
    """Per-person domain means from item-level responses whose columns are named by domain letter + number
    (O1..O5, ...; the psych::bfi layout), after reversing ``reverse_items`` as (min + max) - x. A person's domain
    needs at least ``min_items`` answered items, else it is NaN."""
    cols = [c for c in responses.columns if _ITEM.match(str(c))]
    if not cols:
        raise ValueError("no item columns named like O1, C2, E3, A4, N5 in the human responses")
    unknown = [r for r in reverse_items if r not in cols]
    if unknown:
        raise ValueError(f"reverse items not among the response columns: {unknown}")
    items = responses[cols].apply(pd.to_numeric, errors="coerce")
    for c in reverse_items:
        items[c] = (scale_min + scale_max) - items[c]
    out = {}
    for d in DOMAINS:
        dc = [c for c in cols if c.startswith(d)]
        block = items[dc]
        out[d] = block.mean(axis=1).where(block.notna().sum(axis=1) >= min_items)
    return pd.DataFrame(out)
