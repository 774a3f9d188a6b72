"""Prompt variation: the same items under other wordings of the questionnaire turn.

A variant is a template of the user turn's body (after the condition's prefix) with ``{prompt}`` (the instrument's
instruction, with its scale anchors), ``{item}`` (the item as ``item_rendering`` renders it) and ``{text}`` (the item
text without its final period). ``study`` is the study's own turn (``prompt + "\\n" + item``). The others are the
project's own wordings of the kinds PsyBORGS (Serapio-Garcia et al. 2023) varies: the plain item, an answer cue after
the item, the statement before the instruction. Item order is not a factor here: every item is its own chat, so no
item sees another (the study administers them so too).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from big5chat.formatting import rounded
from big5chat.psychometrics.scoring import cronbach_alpha
from big5chat.traits import LETTER

VARIANTS: dict[str, str] = {
    "study": "{prompt}\n{item}",
    "plain_item": "{prompt}\n{text}.",
    "answer_cue": "{prompt}\n{item}\nYour score:",
    "statement_first": 'Statement: "{text}."\n{prompt}',
}


def body(variant: str, prompt: str, item: str, text: str) -> str:
    """The questionnaire turn's text under ``variant`` (``VARIANTS``)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown prompt variant {variant!r} (known: {', '.join(VARIANTS)})")
    return VARIANTS[variant].format(prompt=prompt, item=item, text=text.rstrip("."))


def variant_table(scores: pd.DataFrame, traits: list[str]) -> pd.DataFrame:
    """Per variant, method and questionnaire: the induced trait's domain score at high and at low (mean over traits),
    their gap, the mean domain score over every condition, and Cronbach's alpha per domain averaged (respondents: the
    conditions; items: those administered)."""
    rows = []
    for (v, m, q), g in scores.groupby(["variant", "method", "questionnaire"], sort=False):
        t = g[g["trait"].isin(traits) & (g["domain"] == g["trait"].map(LETTER))]
        hi = t[t["level"] == "high"].groupby("trait")["score"].mean()
        lo = t[t["level"] == "low"].groupby("trait")["score"].mean()
        alphas: list[float] = []
        for _, d in g.groupby("domain"):
            wide = d.pivot_table(index=["condition", "run"], columns="item", values="score", aggfunc="mean")
            if wide.shape[1] >= 2:
                alpha = cronbach_alpha(wide.to_numpy())
                if np.isfinite(alpha):  # NaN where every respondent answered alike
                    alphas.append(alpha)
        rows.append({"variant": v, "method": m, "questionnaire": q, "avg_high": float(hi.mean()) if len(hi) else np.nan,
                     "avg_low": float(lo.mean()) if len(lo) else np.nan, "gap": float((hi - lo).mean()) if len(hi) and len(lo) else np.nan,
                     "mean_score": float(g["score"].mean()), "alpha": float(np.mean(alphas)) if alphas else np.nan})  # fmt: skip
    return pd.DataFrame(rows)


def spread_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per method and questionnaire: the range and SD over variants of the gap, the mean score and alpha."""
    rows = []
    for (m, q), g in table.groupby(["method", "questionnaire"], sort=False):
        row: dict[str, Any] = {"method": m, "questionnaire": q, "variants": len(g)}
        for col in ("gap", "mean_score", "alpha"):
            vals = g[col].dropna()
            row[f"{col}_range"] = float(vals.max() - vals.min()) if len(vals) else np.nan
            row[f"{col}_sd"] = float(vals.std(ddof=1)) if len(vals) > 1 else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def metrics(table: pd.DataFrame, spread: pd.DataFrame, items: dict[str, list[int]]) -> dict[str, Any]:
    out: dict[str, Any] = {"items": {q: len(v) for q, v in items.items()}, "variants": {}, "spread": {}}
    for row in table.to_dict("records"):
        out["variants"].setdefault(row["variant"], {}).setdefault(row["method"], {})[row["questionnaire"]] = {
            k: rounded(row[k]) for k in ("avg_high", "avg_low", "gap", "mean_score", "alpha")
        }
    for row in spread.to_dict("records"):
        out["spread"].setdefault(row["method"], {})[row["questionnaire"]] = {
            k: rounded(v) for k, v in row.items() if k not in ("method", "questionnaire")
        }
    return out
