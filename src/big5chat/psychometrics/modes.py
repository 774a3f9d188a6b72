"""Which administration to believe: the same items scored both ways, option probabilities (log-prob mode) and the
study's sampled, parsed replies (generation mode), per method x condition.

Per item: does the parsed reply equal the most likely option (``agree``), or lie within one point (``within_1``)?
Unparsed replies and refusals are counted, never imputed: agreement is reported among parsed replies and over all
replies (an unparsed reply counting as a disagreement). Per condition and domain: the generated domain score minus the
log-prob one on the same items (the items whose reply parsed).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from big5chat.formatting import rounded
from big5chat.generation.dialogue_prompts import is_refusal

KEYS = ["method", "condition", "trait", "level", "questionnaire", "item", "domain"]


def first_items(instruments: dict[str, dict[str, Any]], n: int) -> dict[str, list[int]]:
    """The first ``n`` item numbers of each questionnaire: both instruments cycle through the five domains from item 1
    (BFI: E, A, C, N, O; IPIP-NEO: N, E, O, A, C), so any n >= 5 covers every domain."""
    return {q: [int(r["item"]) for r in inst["items"].rows[:n]] for q, inst in instruments.items()}


def paired_answers(logprob: pd.DataFrame, generated: pd.DataFrame) -> pd.DataFrame:
    """One row per generated answer with the log-prob reading of the same item under the same condition: ``raw``
    (parsed reply, NaN when unparsed), ``argmax`` and ``expected`` (log-prob), ``gen_score`` and ``lp_score`` (keyed),
    ``refusal``, ``agree`` and ``within_1``."""
    lp = logprob[[*KEYS, "argmax", "raw", "score"]].rename(columns={"raw": "expected", "score": "lp_score"})
    gen = generated[[*KEYS, "run", "raw", "parsed", "reply", "score"]].rename(columns={"score": "gen_score"})
    out = gen.merge(lp, on=KEYS, how="inner", validate="many_to_one")
    out["refusal"] = [is_refusal(str(r)) for r in out["reply"]]
    out["agree"] = out["parsed"] & (out["raw"] == out["argmax"])
    out["within_1"] = out["parsed"] & ((out["raw"] - out["argmax"]).abs() <= 1)
    return out


def agreement_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per method and questionnaire: answers, parsed share, refusals, agreement among parsed and over all replies,
    within-one-point agreement among parsed, and the mean absolute domain-score difference (generated minus log-prob,
    same items) across conditions and domains."""
    dom = domain_differences(pairs)
    rows = []
    for (m, q), g in pairs.groupby(["method", "questionnaire"], sort=False):
        parsed = g[g["parsed"]]
        d = dom[(dom["method"] == m) & (dom["questionnaire"] == q)]["diff"]
        rows.append({"method": m, "questionnaire": q, "answers": len(g), "parsed": float(g["parsed"].mean()), "unparsed": int((~g["parsed"]).sum()),
                     "refusals": int(g["refusal"].sum()), "agreement": float(parsed["agree"].mean()) if len(parsed) else float("nan"),
                     "agreement_all": float(g["agree"].mean()), "within_1": float(parsed["within_1"].mean()) if len(parsed) else float("nan"),
                     "domain_abs_diff": float(d.abs().mean()) if len(d) else float("nan"), "domain_diff": float(d.mean()) if len(d) else float("nan")})  # fmt: skip
    return pd.DataFrame(rows)


def domain_differences(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per method, condition, questionnaire and domain: mean keyed score of the parsed generated answers and the
    log-prob score of the same items, and their difference."""
    parsed = pairs[pairs["parsed"]]
    g = parsed.groupby(["method", "condition", "questionnaire", "domain"], sort=False)
    out = g.agg(gen=("gen_score", "mean"), logprob=("lp_score", "mean"), answers=("gen_score", "size")).reset_index()
    out["diff"] = out["gen"] - out["logprob"]
    return out


def metrics(table: pd.DataFrame, n_items: dict[str, list[int]]) -> dict[str, Any]:
    out: dict[str, Any] = {"items": {q: len(v) for q, v in n_items.items()}, "by_method": {}}
    for row in table.to_dict("records"):
        out["by_method"].setdefault(row["method"], {})[row["questionnaire"]] = {
            k: (int(row[k]) if k in ("answers", "unparsed", "refusals") else rounded(row[k]))
            for k in ("answers", "parsed", "unparsed", "refusals", "agreement", "agreement_all", "within_1", "domain_abs_diff", "domain_diff")
        }
    return out
