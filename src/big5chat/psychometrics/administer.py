"""Administering the questionnaires to one model under many conditions, in log-prob or generation mode.

Both modes return one row per (condition, questionnaire, run, item) with the raw answer and, after keying,
the score: log-prob mode one deterministic "run" with the option probabilities, the expected answer and
the most likely one; generation mode ``runs`` sampled replies per item (the study: 5 at temperature 0.6),
the leading integer parsed, unparseable replies kept as missing and counted. Generation mode samples through a
backend (``sampler_for``): hf on the loaded model (default), or vllm on GPU machines with vllm installed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from big5chat.generation import backends
from big5chat.generation.chat import generate_chat, render
from big5chat.psychometrics.conditions import Condition, ItemRendering, messages
from big5chat.psychometrics.logprob import option_probs, option_token_ids
from big5chat.psychometrics.parsing import parse_score
from big5chat.psychometrics.scoring import keyed


def item_frame(instrument: dict[str, Any]) -> pd.DataFrame:
    rows = instrument["items"].rows
    return pd.DataFrame({
        "item": [r["item"] for r in rows], "text": [r["text"] for r in rows], "domain": [r["domain"] for r in rows],
        "facet": [r.get("facet_code") or "" for r in rows], "reverse": [bool(r["reverse"]) for r in rows],
    })  # fmt: skip


Conversation = list[dict[str, str]]
# Generation mode's sampler: (conversations, seed) groups -> one list of replies per group, in order (hf: every group in one
# generate_chat, batched across groups; vllm: one engine per sampler call).
Sampler = Callable[[list[tuple[list[Conversation], int]]], Iterable[list[str]]]


def hf_sampler(model: Any, tok: Any, *, temperature: float, max_new_tokens: int, batch_size: int) -> Sampler:
    """All groups' chats through one ``generate_chat`` on the loaded (adapter-selected) model, in batches of
    ``batch_size`` across groups (a group, one condition x questionnaire x run, is often a handful of items: batched
    one by one, decoding steps dominated), torch seeded once from the groups' seeds; the replies split back per group."""

    def sample(groups: list[tuple[list[Conversation], int]]) -> list[list[str]]:
        convs = [c for cs, _ in groups for c in cs]
        if not convs:
            return [[] for _ in groups]
        seed = _derived_seed("|".join(str(s) for _, s in groups))
        flat = generate_chat(model, tok, convs, max_new_tokens=max_new_tokens, batch_size=batch_size, do_sample=True,
                             temperature=temperature, seed=seed)  # fmt: skip
        out, k = [], 0
        for cs, _ in groups:
            out.append(flat[k : k + len(cs)])
            k += len(cs)
        return out

    return sample


def vllm_sampler(tok: Any, model_dir: str | Path, adapter_dir: str | Path | None, *, temperature: float, max_new_tokens: int) -> Sampler:
    """Every group in one ``backends.vllm_sample`` call: prompts rendered with ``tok``'s chat template, the LoRA
    adapter (SFT/DPO) served by vLLM, one seed per prompt derived from its group's seed."""

    def sample(groups: list[tuple[list[Conversation], int]]) -> list[list[str]]:
        prompts = [render(tok, c) for convs, _ in groups for c in convs]
        seeds = [_derived_seed(f"{seed}|{i}") for convs, seed in groups for i in range(len(convs))]
        flat = backends.vllm_sample(str(model_dir), prompts, temperature=temperature, max_new_tokens=max_new_tokens, seed=seeds,
                                    adapter_dir=None if adapter_dir is None else str(adapter_dir))  # fmt: skip
        out, k = [], 0
        for convs, _ in groups:
            out.append([r.strip() for r in flat[k : k + len(convs)]])
            k += len(convs)
        return out

    return sample


def sampler_for(
    backend: backends.Backend,
    *,
    model: Any,
    tok: Any,
    model_dir: str | Path | None = None,
    adapter_dir: str | Path | None = None,
    temperature: float,
    max_new_tokens: int,
    batch_size: int,
) -> Sampler:
    """Generation mode's sampler for a backend: hf samples ``model`` as loaded; vllm loads ``model_dir`` (the base
    model folder) with ``adapter_dir`` (the method's LoRA adapter, None for the base) itself."""
    backends.require(backend)
    if backend == "vllm":
        if model_dir is None:
            raise ValueError("the vllm backend needs model_dir (the base model folder)")
        return vllm_sampler(tok, model_dir, adapter_dir, temperature=temperature, max_new_tokens=max_new_tokens)
    return hf_sampler(model, tok, temperature=temperature, max_new_tokens=max_new_tokens, batch_size=batch_size)


def _derived_seed(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def administer(
    model: Any,
    tok: Any,
    conds: list[Condition],
    instruments: dict[str, dict[str, Any]],
    *,
    mode: Literal["logprob", "generate"],
    demos: dict[tuple[str, str], list[str]] | None = None,
    placement: Literal["user", "system"] = "user",
    rendering: ItemRendering = "study",
    only_items: dict[str, list[int]] | None = None,
    variant: str = "study",
    runs: int = 5,
    temperature: float = 0.6,
    max_new_tokens: int = 16,
    batch_size: int = 32,
    seed: int = 42,
    sampler: Sampler | None = None,
    progress: Any = None,
) -> pd.DataFrame:
    """``sampler`` draws generation mode's replies (default: ``hf_sampler`` on ``model``; see ``sampler_for``);
    ``rendering`` how each item reads (``conditions.rendered_item``: the study's fork by default); ``only_items``
    the item numbers to administer per questionnaire (default: all); ``variant`` the wording of the turn
    (``variants.VARIANTS``: the study's by default), recorded in a ``variant`` column."""
    blocks = []  # one per condition x questionnaire: (condition, questionnaire, its items with the condition, chats)
    for cond in conds:
        for qname, inst in instruments.items():
            items = item_frame(inst)
            if only_items is not None:
                items = items[items["item"].isin(only_items[qname])].reset_index(drop=True)
            convs = [messages(cond, inst["prompt"], t, demos=demos, placement=placement, rendering=rendering, variant=variant) for t in items["text"]]
            base = items.assign(method=cond.method, trait=cond.trait, level=cond.level, condition=cond.name, code=cond.code, questionnaire=qname,
                                variant=variant)  # fmt: skip
            blocks.append((cond, qname, base, convs))
    frames = []
    if mode == "logprob":
        for _, qname, base, convs in blocks:
            lo, hi = int(instruments[qname]["scale_min"]), int(instruments[qname]["scale_max"])
            probs, mass = option_probs(model, tok, [render(tok, c) for c in convs], option_token_ids(tok, lo, hi), batch_size)
            options = np.arange(lo, hi + 1)
            f = base.assign(run=0, raw=probs @ options, argmax=options[probs.argmax(1)], option_mass=mass, parsed=True, reply="")
            for k, o in enumerate(options):
                f[f"p{o}"] = probs[:, k]
            frames.append(f)
            if progress is not None:
                progress.update(1)
    else:
        sample = sampler or hf_sampler(model, tok, temperature=temperature, max_new_tokens=max_new_tokens, batch_size=batch_size)
        groups = [(convs, _derived_seed(f"{seed}|{cond.name}|{qname}|{run}")) for cond, qname, _, convs in blocks for run in range(runs)]
        replies_per_group = iter(sample(groups))
        for _, qname, base, _ in blocks:
            lo, hi = int(instruments[qname]["scale_min"]), int(instruments[qname]["scale_max"])
            for run in range(runs):
                replies = next(replies_per_group)
                parsed = [parse_score(r, lo, hi) for r in replies]
                frames.append(base.assign(run=run, raw=[np.nan if p is None else p for p in parsed],
                                          parsed=[p is not None for p in parsed], reply=replies))  # fmt: skip
            if progress is not None:
                progress.update(1)
    return score_answers(pd.concat(frames, ignore_index=True), instruments)


def score_answers(answers: pd.DataFrame, instruments: dict[str, dict[str, Any]], column: str = "raw") -> pd.DataFrame:
    """``answers`` with ``score`` = ``column`` (the answer: ``raw``, or ``argmax`` for log-prob answers scored by their
    most likely option) after reverse keying on each questionnaire's own scale."""
    out = answers.copy()
    out["score"] = np.nan
    for q, inst in instruments.items():
        rows = out["questionnaire"] == q
        out.loc[rows, "score"] = keyed(out.loc[rows, column], out.loc[rows, "reverse"], int(inst["scale_min"]), int(inst["scale_max"]))
    return out
