"""The trait corpus: high/low labels per trait and the seeded train/test split (docs/paper.md §2.1).

The study labelled a post high when its z-score lies above the trait's median (label 1 = above median),
and also tried a tercile split (<= 33rd percentile low, > 67th percentile high, the middle dropped). The
split is a seeded 95/5 ``train_test_split`` over all posts. Optionally the split keeps each author's
posts together (``by_author``), which the study did not do.

A corpus labelled with levels instead of z-scores (high / median / low) gives its levels directly; the median
rows are left out of that trait. A trait a post is not labelled for (an empty cell) stays unlabelled: no level,
no classifier target. Posts labelled for no trait at all are dropped and counted.

Each trait gets a ``{trait}_level`` column ('high', 'low' or '') and a ``{trait}_target`` column, the
classifier's regression target: ``norm.cdf(z)`` for z-scores (the study's), 1 / 0 for high / low levels,
empty where the post is unlabelled for the trait.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from big5chat.traits import LEVEL_COLUMN, TRAITS, Z_COLUMN

LabelKind = Literal["z", "level"]


def label_kind(columns: Any) -> LabelKind:
    """'z' when the frame carries every z column, else 'level' (the loaders' canonical columns)."""
    cols = set(columns)
    return "z" if all(c in cols for c in Z_COLUMN.values()) else "level"


def _raw_labels(posts: pd.DataFrame, trait: str, kind: LabelKind) -> np.ndarray:
    """z as floats (NaN = unlabelled), or levels as strings ('' = unlabelled)."""
    if kind == "z":
        return pd.to_numeric(posts[Z_COLUMN[trait]].replace("", np.nan), errors="coerce").to_numpy(dtype=float)
    return posts[LEVEL_COLUMN[trait]].fillna("").astype(str).to_numpy()


def labelled_mask(posts: pd.DataFrame, trait: str, kind: LabelKind | None = None) -> np.ndarray:
    """Rows that carry a label for ``trait`` (any z; a level other than empty)."""
    raw = _raw_labels(posts, trait, kind or label_kind(posts.columns))
    return ~np.isnan(raw) if raw.dtype.kind == "f" else raw != ""


@dataclass(frozen=True)
class Thresholds:
    low_max: float  # z <= low_max -> low
    high_min: float  # z > high_min -> high


def level_thresholds(z: np.ndarray, method: Literal["median", "tercile"]) -> Thresholds:
    z = np.asarray(z, dtype=float)
    if method == "median":
        m = float(np.median(z))
        return Thresholds(low_max=m, high_min=m)
    if method == "tercile":
        return Thresholds(low_max=float(np.percentile(z, 100 / 3)), high_min=float(np.percentile(z, 200 / 3)))
    raise ValueError(f"unknown split method {method!r} (use 'median' or 'tercile')")


def assign_levels(z: np.ndarray, t: Thresholds) -> np.ndarray:
    """'high' above high_min, 'low' at or below low_max, '' in between (tercile middle)."""
    z = np.asarray(z, dtype=float)
    out = np.full(z.shape, "", dtype=object)
    out[z > t.high_min] = "high"
    out[z <= t.low_max] = "low"
    return out


def trait_labels(
    posts: pd.DataFrame, trait: str, method: Literal["median", "tercile"] = "median", kind: LabelKind | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(levels 'high'/'low'/'', classifier targets with NaN where unlabelled, a summary) of one trait."""
    from scipy.stats import norm

    kind = kind or label_kind(posts.columns)
    raw = _raw_labels(posts, trait, kind)
    present = labelled_mask(posts, trait, kind)
    info: dict[str, Any] = {"labelled": int(present.sum()), "missing": int((~present).sum())}
    if kind == "z":
        if not present.any():
            raise ValueError(f"no post carries a z-score for {trait}")
        th = level_thresholds(raw[present], method)
        levels = np.where(present, assign_levels(np.nan_to_num(raw), th), "")
        target = norm.cdf(raw)  # NaN stays NaN
        info |= {"low_max": round(th.low_max, 6), "high_min": round(th.high_min, 6)}
    else:
        levels = np.where(np.isin(raw, ("high", "low")), raw, "")
        target = np.where(levels == "high", 1.0, np.where(levels == "low", 0.0, np.nan))
    info["dropped_middle"] = int((present & (levels == "")).sum())
    return levels.astype(object), target.astype(float), info


def train_test_assignment(n: int, test_size: float, seed: int, groups: np.ndarray | None = None) -> np.ndarray:
    """'train'/'test' per row: sklearn's train_test_split(random_state=seed), or grouped by author."""
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    idx = np.arange(n)
    if n < 2:
        raise ValueError(f"need at least 2 posts to split, got {n}")
    if groups is None:
        _, test_idx = train_test_split(idx, test_size=test_size, random_state=seed, shuffle=True)
    else:
        if len(set(groups)) < 2:
            raise ValueError("a split by author needs at least 2 authors")
        splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
        _, test_idx = next(splitter.split(idx, groups=groups))
    split = np.full(n, "train", dtype=object)
    split[test_idx] = "test"
    return split


def label_corpus(
    posts: pd.DataFrame,
    *,
    method: Literal["median", "tercile"],
    test_size: float,
    seed: int,
    by_author: bool = False,
    traits: tuple[str, ...] | list[str] = TRAITS,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Posts with a ``split`` column, ``{trait}_level`` and ``{trait}_target`` per trait, and a summary for metrics."""
    kind = label_kind(posts.columns)
    any_label = np.zeros(len(posts), dtype=bool)
    for trait in traits:
        any_label |= labelled_mask(posts, trait, kind)
    out = posts.loc[any_label].reset_index(drop=True).copy()
    groups = None
    if by_author:
        if "author_id" not in out or out["author_id"].isna().any() or (out["author_id"] == "").any():
            raise ValueError("a split by author needs an author_id on every post")
        groups = out["author_id"].to_numpy()
    out["split"] = train_test_assignment(len(out), test_size, seed, groups)
    summary: dict[str, Any] = {"labels": kind, "method": method if kind == "z" else "levels", "n_posts": int(len(out)),
                               "unlabelled_dropped": int((~any_label).sum()), "test_size": test_size, "seed": seed,
                               "by_author": by_author, "n_test": int((out["split"] == "test").sum()), "traits": {}}  # fmt: skip
    for trait in traits:
        levels, target, info = trait_labels(out, trait, method, kind)
        out[f"{trait}_level"] = levels
        out[f"{trait}_target"] = target
        counts = {
            split: {lvl: int(((levels == lvl) & (out["split"].to_numpy() == split)).sum()) for lvl in ("high", "low")} for split in ("train", "test")
        }
        summary["traits"][trait] = info | {"counts": counts}
    return out, summary


def sample_scenarios(scenarios: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``df.sample(n, replace=False, random_state=seed)`` as the study drew its 10k SODA scenarios."""
    if n > len(scenarios):
        raise ValueError(f"asked for {n} scenarios but the source has only {len(scenarios)}")
    return scenarios.sample(n=n, replace=False, random_state=seed)
