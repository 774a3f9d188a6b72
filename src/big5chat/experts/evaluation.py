"""Pure pieces of the expert-vs-prompting check: the completion jobs and the accuracy table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from big5chat.evaluation.paired_tests import compare_methods
from big5chat.evaluation.text_metrics import level_hits
from big5chat.prompts import alpaca_query, expert_instruction


def choose_prefixes(posts: pd.DataFrame, trait: str, n: int, seed: int, split: str = "test") -> dict[str, str]:
    """First-5-word prefixes of ``n`` posts of ``split`` labelled for ``trait``, half high and half low (seeded),
    so that the prefixes together lean to neither level: {prefix: the level of the post it comes from}."""
    from big5chat.experts.data import split_post

    rows = posts[(posts["split"] == split) & posts["message"].map(lambda m: split_post(m) is not None)]
    out: dict[str, str] = {}
    for k, level in enumerate(("high", "low")):
        pool = rows[rows[f"{trait}_level"] == level]
        want = (n + 1) // 2 if k == 0 else n // 2
        picked = pool.sample(n=min(want, len(pool)), random_state=seed)
        out |= {split_post(m)[0]: level for m in picked["message"]}  # type: ignore[index]
    return out


def completion_jobs(prefixes: list[str] | dict[str, list[str] | dict[str, str]], traits: list[str]) -> pd.DataFrame:
    """One row per (trait, level, prefix), with the chat the expert and the baseline both receive.

    ``prefixes`` is one list for every trait, or {trait: its own prefixes} (posts labelled for that trait), each a
    list or {prefix: the level of the post it comes from} (``choose_prefixes``); that level is the ``prefix_level``
    column ("" when not known).
    """
    rows = []
    for t in traits:
        mine = prefixes[t] if isinstance(prefixes, dict) else prefixes
        origin = mine if isinstance(mine, dict) else {}
        for level in ("high", "low"):
            for p in mine:
                rows.append({"trait": t, "level": level, "prefix": p, "prefix_level": origin.get(p, ""),
                             "conversation": [{"role": "user", "content": alpaca_query(expert_instruction(t, level), p)}]})  # fmt: skip
    return pd.DataFrame(rows)


def accuracy_table(jobs: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """Share of target levels hit per trait and method, plus an 'overall' row (over all completions)."""
    hits = pd.DataFrame({m: level_hits(jobs[f"{m}_score"], jobs["level"]) for m in methods})
    hits["trait"] = jobs["trait"].to_numpy()
    table = hits.groupby("trait", sort=False)[methods].mean().reset_index()
    overall = {"trait": "overall", **{m: float(hits[m].mean()) for m in methods}}
    return pd.concat([table, pd.DataFrame([overall])], ignore_index=True)


def paired_separation(jobs: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """Per trait and method: the mean score difference between the high and the low completion of the same
    prefix, and the share of prefixes where high scores above low (ties count half; chance is 0.5).

    A threshold-free view that still shows steering when the classifier's scores sit on one side of 0.5.
    """
    rows = []
    for trait, group in jobs.groupby("trait", sort=False):
        hi = group[group["level"] == "high"].set_index("prefix")
        lo = group[group["level"] == "low"].set_index("prefix")
        common = hi.index.intersection(lo.index)
        row: dict[str, object] = {"trait": trait, "n_pairs": len(common)}
        for m in methods:
            d = hi.loc[common, f"{m}_score"].to_numpy(float) - lo.loc[common, f"{m}_score"].to_numpy(float)
            row[f"{m}_diff"] = float(d.mean()) if len(d) else float("nan")
            row[f"{m}_paired"] = float(((d > 0) + 0.5 * (d == 0)).mean()) if len(d) else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


# The two sides of the comparison by the prefix's own level; the labels name them in the table and the figure.
PREFIX_LEANS = {"target_level": "prefix from a post of the target level", "other_level": "prefix from a post of the other level"}


def by_prefix_lean(jobs: pd.DataFrame, hits: dict[str, np.ndarray]) -> dict[str, dict]:
    """``compare_methods`` of the two methods of ``hits`` (each a hit per row of ``jobs``, ``level_hits``) on each
    side of ``PREFIX_LEANS``: the completions whose prefix comes from a post of the level they are asked for (the
    study's expert-vs-baseline check: its prefixes lean towards the target) and those whose prefix comes from the
    other level, where a method must turn the text around. Rows without ``prefix_level`` count in neither."""
    (a, hits_a), (b, hits_b) = hits.items()
    same = (jobs["prefix_level"] == jobs["level"]).to_numpy()
    other = ((jobs["prefix_level"] != "") & ~same).to_numpy()
    return {lean: compare_methods(a, hits_a[mask], b, hits_b[mask]) for lean, mask in (("target_level", same), ("other_level", other))}
