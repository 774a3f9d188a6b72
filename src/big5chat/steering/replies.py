"""Free replies of a steered model: each row its own trait vector, signed by its level, in shared batches."""

from __future__ import annotations

from typing import Any

from big5chat.generation.chat import generate_chat
from big5chat.steering.hooks import steered
from big5chat.steering.vectors import TraitVectors


def steered_replies(model: Any, tok: Any, conversations: list[list[dict[str, str]]], arms: list[tuple[str, str]], vectors: TraitVectors,
                    multiplier: float, *, max_new_tokens: int, batch_size: int = 16, do_sample: bool = False, temperature: float = 1.0,
                    top_p: float = 1.0, seed: int | None = None, progress_desc: str | None = None) -> list[str]:  # fmt: skip
    """``generate_chat`` with row ``i`` steered toward ``arms[i]`` = (trait, level); multiplier 0 gives the plain
    model's replies. The hooks are removed after each batch."""
    if len(arms) != len(conversations):
        raise ValueError(f"{len(conversations)} conversations but {len(arms)} (trait, level) arms")

    def batch_context(idx: list[int]) -> Any:
        return steered(model, vectors.row_deltas([arms[i] for i in idx], multiplier))

    return generate_chat(model, tok, conversations, max_new_tokens=max_new_tokens, batch_size=batch_size, do_sample=do_sample,
                         temperature=temperature, top_p=top_p, seed=seed, progress_desc=progress_desc, batch_context=batch_context)  # fmt: skip
