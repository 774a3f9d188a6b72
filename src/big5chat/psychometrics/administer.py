"""Administering the questionnaires to one model under many conditions, in log-prob or generation mode.

Both modes return one row per (condition, questionnaire, run, item) with the raw answer and, after keying,
the score: log-prob mode one deterministic "run" with the option probabilities, the expected answer and
the most likely one; generation mode ``runs`` sampled replies per item (the study: 5 at temperature 0.6),
the leading integer parsed, unparseable replies kept as missing and counted.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import numpy as np
import pandas as pd

from big5chat.generation.chat import generate_chat, render
from big5chat.psychometrics.conditions import Condition, messages
from big5chat.psychometrics.logprob import option_probs, option_token_ids
from big5chat.psychometrics.parsing import parse_score
from big5chat.psychometrics.scoring import keyed


def item_frame(instrument: dict[str, Any]) -> pd.DataFrame:
    rows = instrument["items"].rows
    return pd.DataFrame({
        "item": [r["item"] for r in rows], "text": [r["text"] for r in rows], "domain": [r["domain"] for r in rows],
        "facet": [r.get("facet_code") or "" for r in rows], "reverse": [bool(r["reverse"]) for r in rows],
    })  # fmt: skip


def administer(
    model: Any,
    tok: Any,
    conds: list[Condition],
    instruments: dict[str, dict[str, Any]],
    *,
    mode: Literal["logprob", "generate"],
    demos: dict[tuple[str, str], list[str]] | None = None,
    placement: Literal["user", "system"] = "user",
    runs: int = 5,
    temperature: float = 0.6,
    max_new_tokens: int = 16,
    batch_size: int = 32,
    seed: int = 42,
    progress: Any = None,
) -> pd.DataFrame:
    frames = []
    for cond in conds:
        for qname, inst in instruments.items():
            items = item_frame(inst)
            lo, hi = int(inst["scale_min"]), int(inst["scale_max"])
            convs = [messages(cond, inst["prompt"], t, demos=demos, placement=placement) for t in items["text"]]
            base = items.assign(method=cond.method, trait=cond.trait, level=cond.level, condition=cond.name, code=cond.code, questionnaire=qname)
            if mode == "logprob":
                probs, mass = option_probs(model, tok, [render(tok, c) for c in convs], option_token_ids(tok, lo, hi), batch_size)
                options = np.arange(lo, hi + 1)
                f = base.assign(run=0, raw=probs @ options, argmax=options[probs.argmax(1)], option_mass=mass, parsed=True, reply="")
                for k, o in enumerate(options):
                    f[f"p{o}"] = probs[:, k]
                frames.append(f)
            else:
                for run in range(runs):
                    run_seed = int(hashlib.sha256(f"{seed}|{cond.name}|{qname}|{run}".encode()).hexdigest()[:8], 16)
                    replies = generate_chat(model, tok, convs, max_new_tokens=max_new_tokens, batch_size=batch_size, do_sample=True,
                                            temperature=temperature, seed=run_seed)  # fmt: skip
                    parsed = [parse_score(r, lo, hi) for r in replies]
                    frames.append(base.assign(run=run, raw=[np.nan if p is None else p for p in parsed],
                                              parsed=[p is not None for p in parsed], reply=replies))  # fmt: skip
            if progress is not None:
                progress.update(1)
    out = pd.concat(frames, ignore_index=True)
    out["score"] = np.nan
    for q, inst in instruments.items():
        rows = out["questionnaire"] == q
        out.loc[rows, "score"] = keyed(out.loc[rows, "raw"], out.loc[rows, "reverse"], int(inst["scale_min"]), int(inst["scale_max"]))
    return out
