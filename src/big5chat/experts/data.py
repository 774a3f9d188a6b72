"""The expert generators' training records, in the study's format (docs/paper.md §2.2).

instruction ``Help me complete the sentence with certain Big Five Personality: {Trait} - {level}``, input = the
first 5 whitespace-separated words of the post, output = the rest. Posts of 5 words or fewer are dropped and
counted, as are posts without a level for the trait (unlabelled, or the tercile/median middle), posts below
``min_abs_z`` (z-labelled corpora only) and the ones a ``max_records`` subsample leaves out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from big5chat.prompts import alpaca_query, expert_instruction
from big5chat.traits import Z_COLUMN

PREFIX_WORDS = 5


@dataclass
class ExpertRecords:
    records: list[dict[str, Any]]
    counts: dict[str, int] = field(default_factory=dict)


def _abs_z(row: Any, trait: str) -> float:
    """|z| of a z-labelled post; infinity for a level-labelled corpus (no z to filter on)."""
    try:
        return abs(float(getattr(row, Z_COLUMN[trait])))
    except (AttributeError, TypeError, ValueError):
        return float("inf")


def split_post(message: str, n_words: int = PREFIX_WORDS) -> tuple[str, str] | None:
    """(first n words, the rest) or None when the post has n words or fewer."""
    words = str(message).split()
    if len(words) <= n_words:
        return None
    return " ".join(words[:n_words]), " ".join(words[n_words:])


def to_chat(record: dict[str, Any]) -> dict[str, Any]:
    """A prompt/completion pair in conversational form (TRL computes the loss on the completion only)."""
    return {
        "prompt": [{"role": "user", "content": alpaca_query(record["instruction"], record["input"])}],
        "completion": [{"role": "assistant", "content": record["output"]}],
    }


def build_expert_records(
    posts: pd.DataFrame,
    trait: str,
    *,
    split: str = "train",
    min_abs_z: float = 0.0,
    max_records: int | None = None,
    seed: int = 42,
) -> ExpertRecords:
    """Records for the ``trait`` expert from labelled posts (prepare_data's output: split, {trait}_level)."""
    level_col = f"{trait}_level"
    counts = {"posts": 0, "no_level": 0, "below_min_abs_z": 0, "too_short": 0, "subsampled_out": 0}
    rows = posts[posts["split"] == split] if "split" in posts else posts
    counts["posts"] = int(len(rows))
    by_level: dict[str, list[dict[str, Any]]] = {"high": [], "low": []}
    for row in rows.itertuples(index=False):
        level = getattr(row, level_col)
        if level not in ("high", "low"):
            counts["no_level"] += 1
            continue
        if min_abs_z > 0 and _abs_z(row, trait) < min_abs_z:
            counts["below_min_abs_z"] += 1
            continue
        parts = split_post(row.message)
        if parts is None:
            counts["too_short"] += 1
            continue
        by_level[level].append({
            "message_id": row.message_id,
            "level": level,
            "instruction": expert_instruction(trait, level),
            "input": parts[0],
            "output": parts[1],
        })  # fmt: skip
    if max_records is not None:
        half = max_records // 2
        for level, recs in by_level.items():
            if len(recs) > half:
                keep = pd.Series(range(len(recs))).sample(n=half, random_state=seed).sort_values().tolist()
                counts["subsampled_out"] += len(recs) - half
                by_level[level] = [recs[i] for i in keep]
    records = by_level["high"] + by_level["low"]
    counts.update({"records": len(records), "high": len(by_level["high"]), "low": len(by_level["low"])})
    return ExpertRecords(records, counts)
