"""Seeded sampling helpers."""

from __future__ import annotations

import pandas as pd


def per_group(frame: pd.DataFrame, by: list[str] | str, n: int, seed: int) -> pd.DataFrame:
    """At most ``n`` rows per group, drawn with ``seed`` (all of a smaller group), in the frame's original order."""
    shuffled = frame.sample(frac=1.0, random_state=seed)
    return shuffled.groupby(by, sort=False).head(n).sort_index()
