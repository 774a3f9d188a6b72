"""Behavioural validity: held-out scenarios, replies per model state, the judge's accuracy and the questionnaire-vs-judge
correlation on hand-made cases, and the figure."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from big5chat.psychometrics import behaviour as bv
from big5chat.psychometrics.conditions import Condition, conditions
from big5chat.reporting import figures as fg
from big5chat.traits import LETTER, TRAITS

SCENARIOS = [
    {"original_index": i, "narrative": f"Story {i}.", "PersonX": "Ann", "PersonY": "Bo", "dialogue": [f"Hello {i}!", "Hi."]} for i in range(5)
]


def test_held_out_scenarios_skip_used_ones_and_say_how_many_there_are() -> None:
    assert [s["original_index"] for s in bv.held_out_scenarios(SCENARIOS, {0, 2}, 2)] == [1, 3]
    with pytest.raises(ValueError, match="only 3 scenarios are held out"):
        bv.held_out_scenarios(SCENARIOS, {0, 2}, 4)


def test_reply_jobs_and_free_replies_group_by_model_state() -> None:
    conds = conditions(["direct", "prompt_inst", "sft"], ["openness"])
    jobs = bv.reply_jobs(conds, SCENARIOS[:2])
    assert len(jobs) == (1 + 2 + 3) * 2  # direct once; prompt_inst at 2 conditions; sft unconditioned + 2
    assert "Hello 0!" in jobs.at[0, "prompt"] and "personality" not in jobs.at[0, "prompt"].lower()
    states: list[str] = []
    seen: list[tuple[str, str]] = []

    @contextmanager
    def model_for(c: Condition) -> Any:
        states.append(c.method)
        yield None

    def generate(chats: list[list[dict[str, str]]], cs: list[Condition]) -> list[str]:
        seen.extend((c.name, chat[-1]["content"]) for c, chat in zip(cs, chats))
        return [f"reply to {c.name}" for c in cs]

    out = bv.free_replies(conds, jobs, generate=generate, model_for=model_for, placement={"sft": "system"})
    assert states == ["direct", "prompt_inst", "sft"]  # one model state per method
    assert out == [f"reply to {n}" for n in jobs["condition"]]  # in the order of the jobs
    pi = next(text for name, text in seen if name == "prompt_inst:openness:high")
    assert pi.startswith("You are a person with high openness.\n")


def _frame() -> pd.DataFrame:
    rows = []
    for t in ("openness", "extraversion"):
        for lvl in ("high", "low"):
            rows.append({"method": "sft", "trait": t, "level": lvl, "condition": f"sft:{t}:{lvl}", "scenario": 1, "reply": "x"})
    rows.append({"method": "direct", "trait": "", "level": "", "condition": "direct:none:none", "scenario": 1, "reply": "y"})
    return pd.DataFrame(rows)


def test_judged_accuracy_with_wilson_intervals() -> None:
    frame = _frame()
    scores = pd.DataFrame({"openness": [0.8, 0.6, 0.5, 0.5, 0.5], "extraversion": [0.5, 0.5, 0.9, 0.2, 0.5]})
    j = bv.judged(frame, scores)
    assert list(j["target_score"][:4]) == [0.8, 0.6, 0.9, 0.2] and np.isnan(j.at[4, "target_score"])
    assert list(j["on_target"][:4]) == [1.0, 0.0, 1.0, 1.0]
    acc = bv.accuracy_table(j).set_index("level")
    assert acc.loc["all", "accuracy"] == 0.75 and acc.loc["high", "accuracy"] == 1.0 and acc.loc["low", "n"] == 2
    sep = bv.separation_table(j).set_index("method")  # pairs: openness 0.8 - 0.6, extraversion 0.9 - 0.2
    assert sep.loc["sft", "diff"] == pytest.approx(0.45) and sep.loc["sft", "n"] == 2
    assert sep.loc["sft", "lo"] < 0.45 < sep.loc["sft", "hi"]
    lo, hi = acc.loc["all", ["lo", "hi"]]  # Wilson's interval of 3 of 4, the textbook value: 0.301 .. 0.954
    assert lo == pytest.approx(0.3006, abs=1e-3) and hi == pytest.approx(0.9544, abs=1e-3)
    assert sep.loc["sft", ["lo", "hi"]].tolist() == pytest.approx(list(stats.t.interval(0.95, 1, loc=0.45, scale=stats.sem([0.2, 0.7]))))


def test_validity_is_pearson_with_its_fisher_z_interval() -> None:
    rng = np.random.default_rng(0)
    conds = [c for c in conditions(["prompt_inst"], ["openness", "extraversion"]) if c.trait]
    x, y = rng.normal(size=len(conds)), rng.normal(size=len(conds))
    domains = pd.DataFrame([{"method": c.method, "condition": c.name, "trait": c.trait, "level": c.level, "questionnaire": "BFI", "domain": "O",
                             "mean": v} for c, v in zip(conds, x)])  # fmt: skip
    replies = pd.DataFrame([{"method": c.method, "trait": c.trait, "level": c.level, "condition": c.name, "scenario": 1, "judge_openness": v}
                            for c, v in zip(conds, y)])  # fmt: skip
    row = bv.validity_table(replies, domains, ["openness"]).set_index("method").loc["prompt_inst"]
    ref = stats.pearsonr(x, y)
    ci = ref.confidence_interval(0.95)  # scipy's interval is the Fisher z transform
    assert (row["r"], row["n"]) == (pytest.approx(ref.statistic), 4) and (row["lo"], row["hi"]) == (pytest.approx(ci.low), pytest.approx(ci.high))
    short = bv.validity_table(replies.iloc[:2], domains, ["openness"]).set_index("method").loc["prompt_inst"]
    assert np.isnan(short["r"]) and short["n"] == 2  # no r below 3 conditions


def test_validity_is_one_when_the_judge_follows_the_questionnaire(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    conds = [c for c in conditions(["prompt_inst", "steer"], list(TRAITS)) if c.trait]
    domain_rows, reply_rows = [], []
    for c in conds:
        dom = {d: rng.uniform(1, 5) for d in "OCEAN"}
        domain_rows += [{"method": c.method, "condition": c.name, "trait": c.trait, "level": c.level, "questionnaire": "BFI", "domain": d, "mean": v}
                        for d, v in dom.items()]  # fmt: skip
        reply_rows.append({"method": c.method, "trait": c.trait, "level": c.level, "condition": c.name, "scenario": 1, "reply": "z",
                           **{f"judge_{t}": dom[LETTER[t]] / 5 for t in TRAITS}})  # fmt: skip
    v = bv.validity_table(pd.DataFrame(reply_rows), pd.DataFrame(domain_rows), list(TRAITS))
    assert set(v["method"]) == {"prompt_inst", "steer", "all"} and (v["r"] > 0.999).all()
    assert v.set_index(["method", "trait"]).loc[("all", "openness"), "n"] == 20
    acc = pd.DataFrame([{"method": m, "level": lvl, "accuracy": 1.0, "lo": 0.7, "hi": 1.0 - 1e-16, "n": 10, "target_score": 0.5}
                        for m in ("prompt_inst", "steer") for lvl in ("high", "low", "all")])  # fmt: skip
    sep = pd.DataFrame([{"method": m, "diff": 0.2, "lo": -0.1, "hi": 0.5, "n": 10} for m in ("prompt_inst", "steer")])
    m = bv.metrics(acc, sep, v, 2, {})
    assert m["validity"]["BFI"]["all"]["openness"]["n"] == 20 and m["accuracy"]["steer"]["low"]["accuracy"] == 1.0
    assert m["separation"]["steer"] == {"diff": 0.2, "lo": -0.1, "hi": 0.5, "n": 10}
    fig = fg.plot_behaviour(acc, sep, v, "BFI")
    fig.savefig(tmp_path / "b.png")
    assert (tmp_path / "b.png").stat().st_size > 10_000
