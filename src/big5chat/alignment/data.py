"""SFT records and DPO pairs from the BIG5-CHAT dialogues (pure functions; docs/paper.md §2.6-2.7).

SFT: the trait instruction ``You are a helpful assistant with the following Big Five personality traits:
{Trait} - {level}`` in the user turn (the study's Alpaca records: instruction, newline, turn 0) or as the system
turn, turn 0 as the user message, the reply as the assistant turn; text in ``*...*`` or ``(...)`` stripped.
DPO: for each scenario and trait, one pair per target level: chosen = that level's reply, rejected = the
opposite level's reply, same prompt as SFT. A group whose high and low replies are the same words (identical, or
differing only in whitespace and punctuation) teaches nothing and is dropped before any subsampling. Rows that
cannot be used are counted, never silently dropped.
The train/eval split keeps each scenario on one side (seeded), so a scenario's other replies never leak.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from big5chat.prompts import trait_system_prompt
from big5chat.traits import opposite

Placement = Literal["user", "system"]
_ACTIONS = re.compile(r"\*[^*\n]*\*|\([^()\n]*\)")
_SPACES = re.compile(r"[ \t]{2,}")
_NOT_WORD = re.compile(r"[\W_]+")


def same_words(a: str, b: str) -> bool:
    """Whether two replies differ at most in whitespace and punctuation."""
    return _NOT_WORD.sub("", a) == _NOT_WORD.sub("", b)


def strip_actions(text: str) -> tuple[str, int]:
    """Remove ``*stage directions*`` and ``(asides)``; returns the text and how many spans went."""
    out, n = _ACTIONS.subn("", str(text))
    out = _SPACES.sub(" ", out).strip()
    out = re.sub(r"\s+([,.!?;:])", r"\1", out)
    return out, n


def prompt_messages(instruction: str, turn0: str, placement: Placement) -> list[dict[str, str]]:
    if placement == "system":
        return [{"role": "system", "content": instruction}, {"role": "user", "content": turn0}]
    return [{"role": "user", "content": f"{instruction}\n{turn0}"}]


def split_scenarios(ids: pd.Series, val_size: float, seed: int) -> np.ndarray:
    """True where the row's scenario is in the eval split (a seeded draw of whole scenarios)."""
    unique = np.array(sorted(ids.unique()))
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(val_size * len(unique)))) if len(unique) > 1 else 0
    val = set(rng.permutation(unique)[:n_val].tolist())
    return ids.isin(val).to_numpy()


@dataclass
class Built:
    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]
    counts: dict[str, int] = field(default_factory=dict)


def sft_records(dialogues: pd.DataFrame, *, placement: Placement = "user", val_size: float = 0.1, seed: int = 42) -> Built:
    counts = {"rows": len(dialogues), "actions_stripped_rows": 0, "actions_stripped_spans": 0, "empty_reply": 0}
    is_val = split_scenarios(dialogues["original_index"], val_size, seed)
    train, val = [], []
    for row, in_val in zip(dialogues.itertuples(index=False), is_val):
        reply, n = strip_actions(row.train_output)
        counts["actions_stripped_spans"] += n
        counts["actions_stripped_rows"] += int(n > 0)
        if not reply:
            counts["empty_reply"] += 1
            continue
        instruction = trait_system_prompt(row.trait, row.level)
        rec = {"prompt": prompt_messages(instruction, row.train_input, placement), "completion": [{"role": "assistant", "content": reply}],
               "trait": row.trait, "level": row.level, "original_index": int(row.original_index)}  # fmt: skip
        (val if in_val else train).append(rec)
    counts.update({"train": len(train), "eval": len(val)})
    return Built(train, val, counts)


def dpo_pairs(dialogues: pd.DataFrame, *, placement: Placement = "user", val_size: float = 0.1, seed: int = 42) -> Built:
    counts = {"groups": 0, "missing_level": 0, "duplicate_replies": 0, "empty_reply": 0, "actions_stripped_spans": 0}
    is_val = dict(zip(dialogues["original_index"], split_scenarios(dialogues["original_index"], val_size, seed)))
    train, val = [], []
    for (idx, trait), group in dialogues.groupby(["original_index", "trait"], sort=False):
        counts["groups"] += 1
        replies: dict[str, str] = {}
        turn0: dict[str, str] = {}
        for row in group.itertuples(index=False):
            text, n = strip_actions(row.train_output)
            counts["actions_stripped_spans"] += n
            replies[row.level] = text
            turn0[row.level] = row.train_input
        if set(replies) != {"high", "low"}:
            counts["missing_level"] += 1
            continue
        if not replies["high"] or not replies["low"]:
            counts["empty_reply"] += 1
            continue
        if same_words(replies["high"], replies["low"]):
            counts["duplicate_replies"] += 1
            continue
        for level in ("high", "low"):
            rec = {
                "prompt": prompt_messages(trait_system_prompt(trait, level), turn0[level], placement),
                "chosen": [{"role": "assistant", "content": replies[level]}],
                "rejected": [{"role": "assistant", "content": replies[opposite(level)]}],
                "trait": trait, "level": level, "original_index": int(idx),
            }  # fmt: skip
            (val if is_val[idx] else train).append(rec)
    counts.update({"train": len(train), "eval": len(val)})
    return Built(train, val, counts)


def subsample(records: list[dict[str, Any]], n: int | None, seed: int) -> list[dict[str, Any]]:
    """A seeded subset of n records, balanced over trait x level as far as the data allow (order kept)."""
    if n is None or n >= len(records):
        return records
    from big5chat.data.sampling import per_group

    frame = pd.DataFrame({"i": range(len(records)), "arm": [f"{r['trait']}|{r['level']}" for r in records]})
    keep = per_group(frame, "arm", max(1, n // frame["arm"].nunique()), seed)["i"]
    return [records[i] for i in keep.tolist()]
