"""DExperts decoding: base-model logits steered by trait experts (docs/paper.md §2.5).

Two combination rules:

- ``study`` (BIG5-CHAT): ``base + alpha * expert``, the expert applied once ``warmup`` new tokens exist
  (k = 5 in the paper; before that the base model decodes alone);
- ``dexperts`` (Liu et al. 2021): ``base + alpha * (expert - anti_expert)``.

Every model sees its own prompt followed by the tokens generated so far. Each model keeps one KV cache over a
left-padded batch with explicit position ids, so a step costs one forward of one new token per row. When the
experts are LoRA adapters of the base model (the default), base, expert and anti-expert rows can run as one
batched forward of a PEFT model with mixed adapters (``adapter_names``) and one KV cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from big5chat.generation.growing_cache import reserve
from big5chat.generation.prefix_cache import PrefilledBatch, PrefixStore, left_pad, prefill_with_store, split_points
from big5chat.models.loading import model_device

BASE = "__base__"  # PEFT's name for "no adapter" in mixed-adapter batches


@dataclass(frozen=True)
class Steering:
    rule: Literal["study", "dexperts"] = "study"
    alpha: float = 0.5
    warmup: int = 5  # new tokens decoded by the base alone before the expert is applied


@dataclass(frozen=True)
class Sampling:
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0


def combine_logits(base: torch.Tensor, expert: torch.Tensor | None, anti: torch.Tensor | None, steering: Steering, step: int) -> torch.Tensor:
    """The steered next-token logits at decoding step ``step`` (0 = the first new token)."""
    if expert is None or steering.alpha == 0 or step < steering.warmup:
        return base
    if steering.rule == "study":
        return base + steering.alpha * expert
    if anti is None:
        raise ValueError("the dexperts rule needs an anti-expert")
    return base + steering.alpha * (expert - anti)


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of tokens whose probability mass reaches top_p (the rest set to -inf)."""
    if top_p >= 1.0:
        return logits
    sorted_logits, idx = torch.sort(logits, descending=True, dim=-1)
    cum = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
    remove = cum - torch.softmax(sorted_logits, dim=-1) >= top_p  # keep the token that crosses top_p
    sorted_logits = sorted_logits.masked_fill(remove, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(-1, idx, sorted_logits)


def next_tokens(logits: torch.Tensor, sampling: Sampling, generator: torch.Generator | None) -> torch.Tensor:
    if not sampling.do_sample:
        return logits.argmax(dim=-1)
    scaled = top_p_filter(logits.float() / max(sampling.temperature, 1e-6), sampling.top_p)
    probs = torch.softmax(scaled, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


class Stream:
    """One model's view of a batch: its prompts, attention mask, KV cache and next positions.

    ``model`` is called with ``adapter_names`` when given (PEFT mixed-adapter batches).
    """

    def __init__(self, model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, adapter_names: list[str] | None = None,
                 prefilled: PrefilledBatch | None = None):  # fmt: skip
        self.model = model
        self.device = model_device(model)  # inputs go where the model (its first shard) is
        self.adapter_names = adapter_names
        self.cache: Any = None
        if prefilled is not None:  # shared prefixes already in the cache: run the suffixes only
            self.cache, self.mask, positions = prefilled.cache, prefilled.mask, prefilled.positions
            input_ids = prefilled.suffix_ids
        else:
            input_ids, self.mask = input_ids.to(self.device), attention_mask.to(self.device)
            positions = (self.mask.long().cumsum(-1) - 1).clamp(min=0)
        self.next_pos = positions[:, -1:] + 1
        self.logits = self._forward(input_ids, positions)

    @classmethod
    def reusing_prefixes(cls, model: Any, rows: list[list[int]], cut: list[int], *, pad_id: int, store: PrefixStore | None,
                         adapter_names: list[str] | None = None) -> Stream:  # fmt: skip
        """A stream whose rows take their first ``cut[i]`` tokens from ``store`` (each distinct prefix computed once,
        then kept for later batches) and prefill only the rest (``prefix_cache``)."""
        store = store if store is not None and store.model is model else PrefixStore(model)
        batch = None
        if max(cut, default=0) > 0:
            batch = prefill_with_store(model, rows, cut, adapter_names=adapter_names, store=store, pad_id=pad_id, device=model_device(model))
        if batch is None:
            return cls(model, *left_pad(rows, pad_id), adapter_names=adapter_names)
        return cls(model, batch.suffix_ids, batch.mask, adapter_names=adapter_names, prefilled=batch)

    def _forward(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        mask = self._decode_mask() if ids.shape[1] == 1 and self.device.type == "cpu" else self.mask
        kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "position_ids": positions,
                                  "cache": self.cache, "use_cache": True, "logits_to_keep": 1}  # fmt: skip
        if self.adapter_names is not None:
            kwargs["adapter_names"] = self.adapter_names
        out = self.model(**kwargs)
        self.cache = out.cache
        return out.logits[:, -1, :].float()

    def _decode_mask(self) -> torch.Tensor:
        """The padding mask of a one-token step as a 4D additive mask. Given a 2D mask without padding (every expert
        row has the same prompt), transformers passes SDPA no mask, and torch's CPU flash kernel then runs a one-token
        query about 1.5x slower per bf16 step than with an explicit mask. Same attention; on GPUs the 2D mask stays."""
        dtype = self.cache.layers[0].keys.dtype if self.cache is not None and self.cache.layers else torch.float32
        blocked = (self.mask == 0)[:, None, None, :]
        return torch.zeros(blocked.shape, dtype=dtype, device=self.mask.device).masked_fill(blocked, torch.finfo(dtype).min)

    def keep(self, rows: torch.Tensor) -> None:
        """Drop finished rows: the cache, mask, positions and logits keep only ``rows`` (in that order)."""
        rows = rows.to(self.device)
        self.cache.batch_select_indices(rows)
        self.mask = self.mask[rows]
        self.next_pos = self.next_pos[rows]
        self.logits = self.logits[rows]
        if self.adapter_names is not None:
            self.adapter_names = [self.adapter_names[i] for i in rows.tolist()]

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Feed one token per row; returns the next logits."""
        tokens = tokens.to(self.device)
        self.mask = torch.cat([self.mask, self.mask.new_ones((self.mask.shape[0], 1))], dim=-1)
        positions = self.next_pos
        self.next_pos = self.next_pos + 1
        self.logits = self._forward(tokens.unsqueeze(-1), positions)
        return self.logits


def encode_left(tok: Any, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    side = tok.padding_side
    tok.padding_side = "left"
    try:
        enc = tok(list(texts), return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tok.padding_side = side
    return enc["input_ids"], enc["attention_mask"]


@torch.no_grad()
def generate(
    tok: Any,
    base: tuple[Any, Sequence[str]],
    expert: tuple[Any, Sequence[str]] | None = None,
    anti: tuple[Any, Sequence[str]] | None = None,
    *,
    steering: Steering = Steering(),
    sampling: Sampling = Sampling(),
    max_new_tokens: int = 64,
    seed: int | None = None,
    eos_token_ids: Sequence[int] | None = None,
    adapters: tuple[str | None, str | None] | None = None,
    reuse_prefixes: bool = False,
    base_prefix_lens: Sequence[int] | None = None,
    prefix_store: PrefixStore | None = None,
) -> list[list[int]]:
    """Steered generation for a batch. Each of base/expert/anti is (model, rendered prompts).

    With ``adapters=(expert_adapter, anti_adapter)`` and one PEFT model (passed as the base model), all rows
    run as a single mixed-adapter forward and one KV cache; otherwise each model keeps its own cache.
    Returns the generated token ids per row, without the EOS token, stopped at EOS or ``max_new_tokens``.
    Rows that reach EOS leave the batch (their cache rows are dropped), so a batch costs what its rows need.

    With ``reuse_prefixes`` a prompt prefix shared by several rows is prefilled once (``prefix_cache``): for the
    base rows the first ``base_prefix_lens[i]`` tokens (default: the prefix all base rows share), for expert and
    anti-expert rows the prefix their prompts share. ``prefix_store`` (of the base model, or of the PEFT model with
    ``adapters``) keeps prefixes for later batches; the experts' prefixes live for this call only.
    """
    model_b, prompts_b = base
    n = len(prompts_b)
    eos = torch.tensor(sorted(set(eos_token_ids or [tok.eos_token_id])))
    if n == 0:
        return []
    parts = [(model_b, list(prompts_b), BASE)]
    if expert is not None:
        parts.append((expert[0], list(expert[1]), adapters[0] if adapters else None))
    if anti is not None:
        parts.append((anti[0], list(anti[1]), adapters[1] if adapters else None))
    for _, p, _ in parts:
        if len(p) != n:
            raise ValueError("base, expert and anti-expert need one prompt per row")

    names = [name or BASE for _, p, name in parts for _ in p] if adapters is not None else None
    if reuse_prefixes:  # shared prompt prefixes prefilled once (base rows: per base_prefix_lens; others: what they share)
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        rows = [[tok(t, add_special_tokens=False)["input_ids"] for t in p] for _, p, _ in parts]
        cuts = [split_points(r, base_prefix_lens if i == 0 else None) for i, r in enumerate(rows)]
        if adapters is not None:
            streams = [Stream.reusing_prefixes(model_b, sum(rows, []), sum(cuts, []), pad_id=pad_id, store=prefix_store, adapter_names=names)]
        else:
            streams = [Stream.reusing_prefixes(m, r, c, pad_id=pad_id, store=prefix_store) for (m, _, _), r, c in zip(parts, rows, cuts)]
    elif adapters is not None:  # one mixed-adapter forward over all rows
        ids, mask = encode_left(tok, [t for _, p, _ in parts for t in p])
        streams = [Stream(model_b, ids, mask, adapter_names=names)]
    else:
        streams = [Stream(m, *encode_left(tok, p)) for m, p, _ in parts]

    for s in streams:  # decoding steps write into reserved columns instead of copying the cache (same numbers)
        reserve(s.cache, max_new_tokens)
    n_parts = len(parts)

    device = streams[0].device  # logits are combined (and sampled) where the base model is
    eos = eos.to(device)
    generator = torch.Generator(device=device).manual_seed(seed) if seed is not None else None

    def split_logits(n_active: int) -> list[torch.Tensor]:
        if adapters is not None:
            return list(streams[0].logits.split(n_active, dim=0))
        return [s.logits.to(device) for s in streams]

    out: list[list[int]] = [[] for _ in range(n)]
    active = torch.arange(n)  # original row of each row still decoding
    for step in range(max_new_tokens):
        logits = split_logits(len(active))
        combined = combine_logits(logits[0], logits[1] if len(logits) > 1 else None, logits[2] if len(logits) > 2 else None, steering, step)
        token = next_tokens(combined, sampling, generator)
        finished = torch.isin(token, eos)
        for j in torch.nonzero(~finished).flatten().tolist():
            out[int(active[j])].append(int(token[j]))
        if bool(finished.all()) or step == max_new_tokens - 1:
            break
        if bool(finished.any()):  # finished rows leave the batch: no more compute on them
            keep = torch.nonzero(~finished).flatten()
            active, token = active[keep.cpu()], token[keep]
            if adapters is not None:
                n_active = len(finished)
                streams[0].keep(torch.cat([keep + k * n_active for k in range(n_parts)]))
            else:
                for s in streams:
                    s.keep(keep)
        if adapters is not None:
            streams[0].step(token.repeat(n_parts))
        else:
            for s in streams:
                s.step(token)
    return out
