"""Pure metrics of generated replies: target-level accuracy, length, distinct-n, refusals."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from big5chat.generation.dialogue_prompts import is_refusal

_TOKEN = re.compile(r"\w+(?:'\w+)?|[^\w\s]")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(str(text).lower())


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams over all n-grams of the texts (Li et al. 2016); NaN when there is none."""
    grams: list[tuple[str, ...]] = []
    for t in texts:
        toks = tokens(t)
        grams += [tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)]
    return len(set(grams)) / len(grams) if grams else float("nan")


def is_degenerate(text: str, min_distinct: float = 0.5, min_grams: int = 4) -> bool:
    """A reply with no words, or one that loops: of its word trigrams (when it has at least ``min_grams``), fewer
    than ``min_distinct`` are distinct ("I'm sure I'm sure I'm sure ...")."""
    toks = tokens(text)
    if not any(t[0].isalnum() for t in toks):
        return True
    grams = [tuple(toks[i : i + 3]) for i in range(len(toks) - 2)]
    return len(grams) >= min_grams and len(set(grams)) / len(grams) < min_distinct


def reply_stats(texts: Sequence[str]) -> dict[str, float]:
    words = np.array([len(str(t).split()) for t in texts], dtype=float)
    return {
        "n": len(texts),
        "words_mean": round(float(words.mean()), 2) if len(words) else float("nan"),
        "empty_rate": round(float(np.mean(words == 0)), 4) if len(words) else float("nan"),
        "distinct_1": round(distinct_n(texts, 1), 4),
        "distinct_2": round(distinct_n(texts, 2), 4),
        "refusal_rate": round(float(np.mean([is_refusal(t) for t in texts])), 4) if len(texts) else float("nan"),
        "degenerate_rate": round(float(np.mean([is_degenerate(t) for t in texts])), 4) if len(texts) else float("nan"),
    }


def level_hits(scores: Sequence[float], levels: Sequence[str], threshold: float = 0.5) -> np.ndarray:
    """Per text, whether its classifier score puts it on the side of its target level (above the threshold = high)."""
    return (np.asarray(scores, float) > threshold) == (np.asarray(levels) == "high")


def level_accuracy(scores: Sequence[float], levels: Sequence[str], threshold: float = 0.5) -> float:
    """Share of replies whose classifier score puts them on the side of their target level."""
    hits = level_hits(scores, levels, threshold)
    return float(hits.mean()) if len(hits) else float("nan")


def per_trait_accuracy(frame: Any, score_col: str = "score") -> dict[str, float]:
    """{trait: accuracy} plus 'overall' from a frame with trait, level and a score column."""
    out = {t: round(level_accuracy(g[score_col], g["level"]), 4) for t, g in frame.groupby("trait", sort=False)}
    out["overall"] = round(level_accuracy(frame[score_col], frame["level"]), 4)
    return out


def target_scores(scorer: Any, frame: Any, text_col: str) -> Any:
    """Each row's classifier score for its own trait (``frame["trait"]``), of its text in ``text_col``: a Series on
    ``frame``'s index. ``scorer(texts)`` returns one column per trait (``classifier.scoring.TraitScorer``)."""
    import pandas as pd

    scores = scorer(frame[text_col].tolist())
    return pd.Series([scores.at[i, t] for i, t in enumerate(frame["trait"])], index=frame.index)
