"""Batched generation from chat prompts (left padding, sorted by length, order preserved)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

from big5chat.generation.growing_cache import growing_cache


def render(tok: Any, messages: list[dict[str, str]], assistant_prefix: str = "") -> str:
    """The chat template with the generation prompt, plus text the assistant turn starts with."""
    return tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) + assistant_prefix


@torch.no_grad()
def generate_chat(
    model: Any,
    tok: Any,
    conversations: list[list[dict[str, str]]],
    *,
    max_new_tokens: int,
    batch_size: int = 16,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int | None = None,
    assistant_prefixes: list[str] | None = None,
    progress_desc: str | None = None,
    batch_context: Callable[[list[int]], AbstractContextManager[Any]] | None = None,
) -> list[str]:
    """The assistant replies to ``conversations`` (decoded without special tokens). ``batch_context``, given the
    indices (into ``conversations``) of a batch's rows in batch order, returns a context that each batch's
    generation runs inside (e.g. per-row steering vectors, ``steering.replies``)."""
    from big5chat.progress import progress

    prefixes = assistant_prefixes or [""] * len(conversations)
    texts = [render(tok, c, p) for c, p in zip(conversations, prefixes)]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    replies: list[str] = [""] * len(texts)
    side = tok.padding_side
    tok.padding_side = "left"
    if seed is not None:
        torch.manual_seed(seed)
    bar = progress(total=len(texts), desc=progress_desc) if progress_desc else None
    try:
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = tok([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
            kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": do_sample, "pad_token_id": tok.pad_token_id}
            if do_sample:
                kwargs.update(temperature=temperature, top_p=top_p)
            else:
                kwargs.update(temperature=None, top_p=None, top_k=None)
            cache = growing_cache(model, max_new_tokens)  # decoding writes into reserved columns (same tokens)
            if cache is not None:
                kwargs["cache"] = cache
            with batch_context(idx) if batch_context else nullcontext():
                out = model.generate(**enc.to(model.device), **kwargs)
            new = out[:, enc["input_ids"].shape[1] :]
            for i, row in zip(idx, new):
                replies[i] = tok.decode(row, skip_special_tokens=True).strip()
            if bar:
                bar.update(len(idx))
    finally:
        tok.padding_side = side
        if bar:
            bar.close()
    return replies
