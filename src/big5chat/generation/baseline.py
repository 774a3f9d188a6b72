"""The prompting-only baseline of eval_dialogues: the base model alone (alpha = 0) on the dataset's own turn-1 prompts.

Each row of the dataset (a scenario, its turn 0, a trait and a level) is answered from the prompt DExperts' base
model saw, the trait description included, with no expert: what the prompt alone achieves. Replies are cleaned as
the dataset's are (``dialogue_prompts.postprocess``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from big5chat.generation import dialogues as dlg


def baseline_prompts(tok: Any, rows: pd.DataFrame, scenarios: dict[int, dict[str, Any]]) -> list[str]:
    """Per row (``original_index``, ``trait``, ``level``, ``train_input`` = turn 0), the rendered prompt of its
    DExperts base model: the study's turn-1 prompt with the trait description."""
    from big5chat.generation.chat import render

    return [render(tok, [{"role": "user", "content": dlg.base_prompt(dlg.Job(r.original_index, r.trait, r.level),
                                                                     dlg.scenario_of(scenarios[r.original_index]), r.train_input)}])
            for r in rows.itertuples()]  # fmt: skip


def prompting_replies(base: Any, tok: Any, prompts: list[str], groups: list[Any], *, sampling: Any, max_new_tokens: int, batch_size: int,
                      seed: int, prefix_reuse: bool) -> list[str]:  # fmt: skip
    """The base model's cleaned replies to ``prompts``, in batches of ``batch_size`` (each batch's sampling seeded
    with ``seed``). With ``prefix_reuse`` the prefix that the prompts of one group (``groups[i]``: a scenario, whose
    arms share their prompt up to the personality description) share is prefilled once (``prefix_cache``)."""
    from big5chat.generation.dexperts import Steering, generate
    from big5chat.generation.prefix_cache import PrefixStore, group_prefix_lens

    lens = group_prefix_lens([tok(p, add_special_tokens=False)["input_ids"] for p in prompts], groups)
    store = PrefixStore(base) if prefix_reuse else None
    replies: list[str] = []
    for start in range(0, len(prompts), batch_size):
        rows = generate(tok, (base, prompts[start : start + batch_size]), steering=Steering(alpha=0.0), sampling=sampling,
                        max_new_tokens=max_new_tokens, seed=seed, reuse_prefixes=prefix_reuse,
                        base_prefix_lens=lens[start : start + batch_size], prefix_store=store)  # fmt: skip
        replies += [dlg.postprocess(tok.decode(r, skip_special_tokens=True))[0] for r in rows]
    return replies
