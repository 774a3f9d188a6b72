"""The study's reasoning domains (docs/paper.md §2.10) and the table layout of its reasoning results."""

from __future__ import annotations

import numpy as np
import pandas as pd

from big5chat.methods import REFERENCE

DOMAINS: dict[str, tuple[str, ...]] = {
    "Social": ("social_iqa",),
    "Math": ("gsm8k", "mathqa"),
    "Hallucination": ("truthfulqa_mc",),
    "Commonsense": ("commonsense_qa", "piqa"),
    "General": ("mmlu", "gpqa"),
}


def aggregate(scores: dict[str, float]) -> dict[str, float]:
    """Domain = mean of its tasks' scores; a domain with a missing task is NaN (never a partial mean)."""
    out = {}
    for d, tasks in DOMAINS.items():
        vals = [scores.get(t) for t in tasks]
        out[d] = float(np.mean(vals)) if all(v is not None and not np.isnan(v) for v in vals) else float("nan")
    return out


def reasoning_table(results: pd.DataFrame) -> pd.DataFrame:
    """Rows benchmark x method, columns Direct, the trait x level conditions, Avg+ and Avg- (the study's layout).

    ``results``: one row per (method, trait, level, task, score); Direct rows have method 'direct' and no trait.
    """
    direct = results[results["method"] == REFERENCE].set_index("task")["score"]
    rows = []
    for (task, method), g in results[results["method"] != REFERENCE].groupby(["task", "method"], sort=False):
        row = {"benchmark": task, "method": method, "Direct": direct.get(task, np.nan)}
        for r in g.itertuples():
            row[f"{r.trait[:1].upper()}{'+' if r.level == 'high' else '-'}"] = r.score
        row["Avg+"] = g.loc[g["level"] == "high", "score"].mean()
        row["Avg-"] = g.loc[g["level"] == "low", "score"].mean()
        rows.append(row)
    return pd.DataFrame(rows)
