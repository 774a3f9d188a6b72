"""The Big Five traits and levels, with every spelling the study's files use."""

from __future__ import annotations

from typing import Literal, get_args

Trait = Literal["openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"]
Level = Literal["high", "low"]

TRAITS: tuple[str, ...] = get_args(Trait)
LEVELS: tuple[str, ...] = get_args(Level)
# OCEAN order, the order of the study's mode codes and of PsychGenerator's z-score columns.
LETTER = {t: t[0].upper() for t in TRAITS}
FROM_LETTER = {v: k for k, v in LETTER.items()}
Z_COLUMN = {t: f"{t[:3]}_z" for t in TRAITS}  # ope_z, con_z, ext_z, agr_z, neu_z
# Level-labelled corpora: the project's own columns (high / median / low) and PsychGenerator's level files
# (0 / 1 / 2 = low / median / high).
LEVEL_COLUMN = {t: f"{t[:3]}_level" for t in TRAITS}  # ope_level, ...
LEVEL_LABEL_COLUMN = {t: f"{t[:3]}_z_label" for t in TRAITS}  # ope_z_label, ... (PsychGenerator)
CORPUS_LEVELS = ("low", "median", "high")  # PsychGenerator's 0, 1, 2
TITLE = {t: t.capitalize() for t in TRAITS}


def normalize_trait(value: str) -> str:
    """'O', 'o', 'Openness', 'openness', 'ope' -> 'openness'; anything else raises ValueError."""
    v = str(value).strip()
    if v.upper() in FROM_LETTER and len(v) == 1:
        return FROM_LETTER[v.upper()]
    low = v.lower()
    for t in TRAITS:
        if low == t or low == t[:3]:
            return t
    raise ValueError(f"unknown trait {value!r} (expected one of {', '.join(TRAITS)} or O/C/E/A/N)")


def normalize_level(value: str) -> str:
    v = str(value).strip().lower()
    if v in LEVELS:
        return v
    raise ValueError(f"unknown level {value!r} (expected 'high' or 'low')")


def opposite(level: str) -> str:
    return "low" if normalize_level(level) == "high" else "high"


def normalize_corpus_level(value: object) -> str:
    """A corpus label: 'high' / 'median' / 'low' (any case) or PsychGenerator's 0 / 1 / 2 -> 'low' / 'median' / 'high'."""
    v = str(value).strip().lower()
    if v in CORPUS_LEVELS:
        return v
    if v in ("0", "1", "2", "0.0", "1.0", "2.0"):
        return CORPUS_LEVELS[int(float(v))]
    raise ValueError(f"unknown level {value!r} (expected high, median or low, or 0/1/2 = low/median/high; empty = unlabelled)")
