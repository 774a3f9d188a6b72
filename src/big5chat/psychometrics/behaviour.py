"""Behavioural validity: does the questionnaire-taking model act as it answers?

For each method x condition the model that took the questionnaires (the same adapter, prompt or steering vector)
writes free replies to a few held-out SODA scenarios (scenarios no dialogue of the dataset, and so no SFT/DPO
example, came from); the trait classifier judges them. Two readings:

- **separation**: the judge's score of the induced trait at high minus at low, paired by trait and scenario, the
  text-side counterpart of the questionnaire's high-vs-low gap (and, at 135M, where induction can show at all: the
  Likert answers move alike on every item);
- **judged accuracy**: the share of a method's replies at a high (low) condition that the judge puts on the high (low)
  side of the target trait (moved in opposite directions at high and low by the judge's own base rate);
- **validity**: per trait, the correlation across conditions between the questionnaire's domain score and the
  judge's score of the replies for that trait (Fisher-z 95% intervals): a model that says "I am talkative" more
  should also talk more like an extravert.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Literal

import numpy as np
import pandas as pd

from big5chat.formatting import rounded
from big5chat.generation.dialogue_prompts import Scenario, turn1_prompt
from big5chat.psychometrics.conditions import Condition, condition_chat
from big5chat.statistics import mean_interval, pearson, wilson_interval
from big5chat.traits import LETTER


def held_out_scenarios(scenarios: list[dict[str, Any]], used: set[int], n: int) -> list[dict[str, Any]]:
    """The first ``n`` scenarios (file order) that no generated dialogue used and that open with a PersonX line."""
    free = [s for s in scenarios if int(s["original_index"]) not in used and s.get("dialogue")]
    if len(free) < n:
        raise ValueError(f"behavioural_validity.scenarios is {n}, but only {len(free)} scenarios are held out from the dialogue "
                         f"dataset (of {len(scenarios)}; {len(used)} used by generate_dialogues)")  # fmt: skip
    return free[:n]


def reply_jobs(conds: list[Condition], scenarios: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per condition x scenario: the scenario's prompt for PersonY's reply to PersonX's opening line, without
    the personality description (the condition's instruction, adapter or vector carries the trait)."""
    rows = []
    for c in conds:
        for s in scenarios:
            rows.append({"method": c.method, "trait": c.trait, "level": c.level, "condition": c.name, "scenario": int(s["original_index"]),
                         "prompt": turn1_prompt(Scenario(s["narrative"], s["PersonX"], s["PersonY"]), s["dialogue"][0], None, None)})  # fmt: skip
    return pd.DataFrame(rows)


def free_replies(
    conds: list[Condition],
    jobs: pd.DataFrame,
    *,
    generate: Callable[[list[list[dict[str, str]]], list[Condition]], list[str]],
    model_for: Callable[[Condition], AbstractContextManager[Any]],
    demos: dict[tuple[str, str], list[str]] | None = None,
    placement: dict[str, Literal["user", "system"]] | None = None,
) -> list[str]:
    """The reply to each row of ``jobs`` (in order): rows grouped by the model state their condition needs
    (``model_for``: the adapter of SFT/DPO, none for the prompts; steer is one state, its vectors per row inside
    ``generate``), each group's chats built with ``condition_chat`` and passed to ``generate(chats, conditions)``."""
    by_name = {c.name: c for c in conds}
    replies: list[str | None] = [None] * len(jobs)
    for method, idx in jobs.groupby("method", sort=False).groups.items():
        rows = jobs.loc[idx]
        cs = [by_name[n] for n in rows["condition"]]
        chats = [condition_chat(c, p, demos=demos, placement=(placement or {}).get(method, "user")) for c, p in zip(cs, rows["prompt"])]
        with model_for(cs[0]):
            for i, r in zip(idx, generate(chats, cs)):
                replies[jobs.index.get_loc(i)] = r
    return [r or "" for r in replies]


def judged(replies: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """``replies`` with ``judge_<trait>`` (the classifier's score of each reply for every trait) and, for conditioned
    rows, ``target_score`` (the induced trait's) and ``on_target`` (that score on the side of the target level)."""
    out = replies.reset_index(drop=True).copy()
    for t in scores.columns:
        out[f"judge_{t}"] = scores[t].to_numpy()
    cond = out["trait"] != ""
    out["target_score"] = np.nan
    out.loc[cond, "target_score"] = [out.at[i, f"judge_{t}"] for i, t in zip(out.index[cond], out.loc[cond, "trait"])]
    out["on_target"] = np.where(cond, (out["target_score"] > 0.5) == (out["level"] == "high"), np.nan)
    return out


def accuracy_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per method and level (and ``all``): judged accuracy of the conditioned replies with its Wilson interval, and
    the mean judged target score."""
    rows = []
    d = frame[frame["trait"] != ""]
    for method, g in d.groupby("method", sort=False):
        for level, h in [*g.groupby("level", sort=False), ("all", g)]:
            k, n = float(h["on_target"].sum()), int(len(h))
            lo, hi = wilson_interval(int(k), n)
            rows.append(
                {"method": method, "level": level, "accuracy": k / n, "lo": lo, "hi": hi, "n": n, "target_score": float(h["target_score"].mean())}
            )
    return pd.DataFrame(rows)


def separation_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per method: the judged score of the induced trait at high minus at low, paired by trait and scenario (the
    text-side counterpart of the questionnaire's high-minus-low gap; free of the judge's base rate, which moves
    accuracy at high and at low in opposite directions), mean with a t 95% interval over the pairs."""
    rows = []
    d = frame[frame["trait"] != ""]
    for method, g in d.groupby("method", sort=False):
        wide = g.pivot_table(index=["trait", "scenario"], columns="level", values="target_score")
        diff = (wide.get("high") - wide.get("low")).dropna().to_numpy(float) if {"high", "low"} <= set(wide.columns) else np.array([])
        mean, lo, hi = mean_interval(diff)
        rows.append({"method": method, "diff": mean, "lo": lo, "hi": hi, "n": len(diff)})
    return pd.DataFrame(rows)


def validity_table(frame: pd.DataFrame, domains: pd.DataFrame, traits: list[str]) -> pd.DataFrame:
    """Per questionnaire, trait and method (and ``all`` conditioned methods pooled): the correlation across conditions
    between the questionnaire's domain score for the trait (``domains``: ``report.domain_table``) and the judge's mean
    score of the condition's replies for the trait."""
    judge = frame[frame["trait"] != ""].groupby(["method", "condition"], sort=False)[[f"judge_{t}" for t in traits]].mean().reset_index()
    rows = []
    for q, dq in domains.groupby("questionnaire", sort=False):
        wide = dq.pivot_table(index=["method", "condition"], columns="domain", values="mean").reset_index()
        merged = judge.merge(wide, on=["method", "condition"], how="inner")
        for t in traits:
            for method, g in [*merged.groupby("method", sort=False), ("all", merged)]:
                r, lo, hi, n = pearson(g[LETTER[t]].to_numpy(float), g[f"judge_{t}"].to_numpy(float), min_n=3)
                rows.append({"questionnaire": q, "trait": t, "method": method, "r": r, "lo": lo, "hi": hi, "n": n})
    return pd.DataFrame(rows)


def metrics(
    acc: pd.DataFrame, separation: pd.DataFrame, validity: pd.DataFrame, n_scenarios: int, stats: dict[str, dict[str, float]]
) -> dict[str, Any]:
    out: dict[str, Any] = {"scenarios": n_scenarios, "accuracy": {}, "validity": {}, "text": stats,
                           "separation": {row["method"]: {k: rounded(row[k]) for k in ("diff", "lo", "hi")} | {"n": row["n"]} for row in separation.to_dict("records")}}  # fmt: skip
    for row in acc.to_dict("records"):
        out["accuracy"].setdefault(row["method"], {})[row["level"]] = {k: rounded(row[k]) for k in ("accuracy", "lo", "hi", "target_score")} | {
            "n": row["n"]
        }
    for row in validity.to_dict("records"):
        out["validity"].setdefault(row["questionnaire"], {}).setdefault(row["method"], {})[row["trait"]] = {
            k: rounded(row[k]) for k in ("r", "lo", "hi")
        } | {"n": row["n"]}
    return out
