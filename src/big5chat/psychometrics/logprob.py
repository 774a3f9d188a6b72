"""Log-prob administration: the probability of each answer option after the prompt, in one forward per item.

All items of one condition and questionnaire share their first tokens (chat template, condition prefix,
questionnaire prompt). That common token prefix is computed once; its KV cache is repeated over a batch of
items, and only each item's own tokens run through the model, left-padded so that every row's answer position
is the last column (only that column's logits are computed). The option probabilities are read at the
first assistant token and normalised over the options ("1".."5"); the mass they had before normalising is
kept as a measure of how much the model wanted to answer with a number at all.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from big5chat.generation.prefix_cache import common_prefix_len
from big5chat.models.loading import model_device


def option_token_ids(tok: Any, lo: int = 1, hi: int = 5) -> list[int]:
    ids = []
    for k in range(lo, hi + 1):
        enc = tok.encode(str(k), add_special_tokens=False)
        if len(enc) != 1:
            raise ValueError(f"option {k!r} is {len(enc)} tokens for this tokenizer; log-prob mode needs one token per option")
        ids.append(enc[0])
    return ids


def _option_probs(last_logits: torch.Tensor, option_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    full = torch.softmax(last_logits.float(), dim=-1)[:, option_ids].double()  # normalised in float64: rows sum to 1
    mass = full.sum(-1, keepdim=True)
    return (full / mass).cpu().numpy(), mass.squeeze(-1).cpu().numpy()


@torch.no_grad()
def option_probs(model: Any, tok: Any, prompts: list[str], option_ids: list[int], batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities over the options, shape (n, n_options), rows summing to 1; raw option mass, shape (n,)).

    ``prompts`` are fully rendered chat prompts ending where the answer starts.
    """
    seqs = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    p_len = min(common_prefix_len(seqs), min(len(s) for s in seqs) - 1)  # every item keeps at least one token
    probs = np.zeros((len(seqs), len(option_ids)), dtype=np.float64)
    mass = np.zeros(len(seqs), dtype=np.float64)
    prefix_cache = None
    device = model_device(model)
    if p_len > 0:
        prefix_cache = model(input_ids=torch.tensor([seqs[0][:p_len]], device=device), use_cache=True).cache
    pad = tok.pad_token_id
    for start in range(0, len(seqs), batch_size):
        rows = seqs[start : start + batch_size]
        suffixes = [s[p_len:] for s in rows]
        width = max(len(s) for s in suffixes)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), p_len + width), dtype=torch.long)
        mask[:, :p_len] = 1
        positions = torch.full((len(rows), width), p_len, dtype=torch.long)
        for i, s in enumerate(suffixes):  # left-padded suffixes: every row ends at the last column
            ids[i, width - len(s) :] = torch.tensor(s)
            mask[i, p_len + width - len(s) :] = 1
            positions[i, width - len(s) :] = p_len + torch.arange(len(s))
        cache = None
        if prefix_cache is not None:
            cache = copy.deepcopy(prefix_cache)
            cache.batch_repeat_interleave(len(rows))
        ids, mask, positions = ids.to(device), mask.to(device), positions.to(device)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=cache is not None, logits_to_keep=1).logits
        p, m = _option_probs(logits[:, -1], option_ids)
        probs[start : start + len(rows)], mass[start : start + len(rows)] = p, m
    return probs, mass


@torch.no_grad()
def option_probs_unbatched(model: Any, tok: Any, prompts: list[str], option_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The reference: each prompt alone, whole, no cache."""
    out_p, out_m = [], []
    device = model_device(model)
    for p in prompts:
        ids = tok(p, add_special_tokens=False, return_tensors="pt")["input_ids"].to(device)
        probs, mass = _option_probs(model(input_ids=ids).logits[:, -1], option_ids)
        out_p.append(probs[0])
        out_m.append(mass[0])
    return np.array(out_p), np.array(out_m)
