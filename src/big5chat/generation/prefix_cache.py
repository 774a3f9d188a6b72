"""Shared-prefix reuse for batched generation: a prompt prefix that many rows share is prefilled once.

In the dialogue dataset the ten turn-1 arms of a scenario (5 traits x high/low) share their prompt up to the
personality description, the turn-0 prompts share the template's opening, and every row of an expert batch has the
same expert instruction. Prefilling each row's full prompt repeats that work for every row.

Here each row's token ids are split into a shared prefix and its own suffix. Each distinct prefix (per adapter, for
mixed-adapter batches) is run once, in one left-padded forward with the other missing prefixes, and its keys and
values are kept in a :class:`PrefixStore` so later batches reuse them. A batch's cache is then laid out as

    [left padding | prefix] [left padding | suffix]   (P + S columns, padding masked out)

and only the suffixes are run, with position ids that continue each row's own prefix. Attention never sees a padded
column, so the logits equal those of the full prompt's prefill up to floating-point rounding (the kernels see
different shapes): greedy outputs are the same tokens except where two candidates tie within rounding.

Only plain full-attention caches are reused (``DynamicLayer``); a model with sliding-window or other cache layers
is prefilled the ordinary way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

KV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys and values [heads, length, head_dim]


def common_prefix_len(rows: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix every row shares."""
    if not rows:
        return 0
    n = min(len(r) for r in rows)
    first = rows[0]
    for i in range(n):
        t = first[i]
        if any(r[i] != t for r in rows):
            return i
    return n


def group_prefix_lens(rows: Sequence[Sequence[int]], groups: Sequence[Any]) -> list[int]:
    """Per row, the prefix it shares with every row of its group (e.g. a scenario's arms)."""
    members: dict[Any, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    lens = [0] * len(rows)
    for idx in members.values():
        n = common_prefix_len([rows[i] for i in idx])
        for i in idx:
            lens[i] = n
    return lens


def split_points(rows: Sequence[Sequence[int]], prefix_lens: Sequence[int] | None = None) -> list[int]:
    """Per row, how many leading tokens are taken from the prefix store: ``prefix_lens`` when given (the caller
    knows which rows of other batches share them), else the prefix all ``rows`` share; always leaving at least one
    token of the row's own to run (its logits start the generation)."""
    lens = list(prefix_lens) if prefix_lens is not None else [common_prefix_len(rows)] * len(rows)
    if len(lens) != len(rows):
        raise ValueError(f"{len(lens)} prefix lengths for {len(rows)} rows")
    return [max(0, min(p, len(r) - 1)) for p, r in zip(lens, rows)]


@dataclass
class PrefixStore:
    """Keys and values of prompt prefixes for one model, kept across batches up to ``max_bytes``.

    Beyond the budget new prefixes are still computed once per batch, just not kept (``skipped`` counts them).
    """

    model: Any
    max_bytes: int = 2 * 1024**3
    entries: dict[tuple[str, tuple[int, ...]], KV] = field(default_factory=dict)
    nbytes: int = 0
    hits: int = 0
    misses: int = 0
    skipped: int = 0
    reused_tokens: int = 0  # prefix tokens that rows did not have to prefill

    def put(self, key: tuple[str, tuple[int, ...]], kv: KV) -> None:
        size = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in kv)
        if self.nbytes + size > self.max_bytes:
            self.skipped += 1
            return
        self.entries[key] = kv
        self.nbytes += size

    def stats(self) -> dict[str, int]:
        return {"prefixes": len(self.entries), "hits": self.hits, "misses": self.misses, "not_kept": self.skipped,
                "reused_tokens": self.reused_tokens, "mb": round(self.nbytes / 1024**2)}  # fmt: skip


def left_pad(rows: Sequence[Sequence[int]], pad_id: int, width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    width = max((len(r) for r in rows), default=0) if width is None else width
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
            mask[i, width - len(r) :] = 1
    return ids, mask


def _plain_layers(cache: Any) -> bool:
    from transformers.cache_utils import DynamicLayer

    return all(type(layer) is DynamicLayer for layer in getattr(cache, "layers", [None]))


def run_prefixes(model: Any, prefixes: list[tuple[str, tuple[int, ...]]], pad_id: int, device: torch.device, mixed: bool) -> list[KV] | None:
    """Each (adapter, prefix)'s keys and values from one left-padded forward; None when the model's cache is not a
    plain full-attention cache (then nothing is reused)."""
    ids, mask = left_pad([p for _, p in prefixes], pad_id)
    ids, mask = ids.to(device), mask.to(device)
    kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "position_ids": (mask.cumsum(-1) - 1).clamp(min=0),
                              "use_cache": True, "logits_to_keep": 1}  # fmt: skip
    if mixed:
        kwargs["adapter_names"] = [a for a, _ in prefixes]
    cache = model(**kwargs).cache
    if not _plain_layers(cache):
        return None
    return [
        [(layer.keys[i, :, -len(p) :].clone(), layer.values[i, :, -len(p) :].clone()) for layer in cache.layers] for i, (_, p) in enumerate(prefixes)
    ]


def prefilled_cache(model: Any, kvs: list[KV], width: int) -> Any:
    """A DynamicCache of ``width`` columns holding each row's prefix right-aligned (zeros where padded)."""
    from transformers.cache_utils import DynamicCache

    cache = DynamicCache(config=getattr(model, "config", None))
    n_layers = len(kvs[0])
    for layer in range(n_layers):
        k0, v0 = kvs[0][layer]
        keys = k0.new_zeros((len(kvs), k0.shape[0], width, k0.shape[-1]))
        values = v0.new_zeros((len(kvs), v0.shape[0], width, v0.shape[-1]))
        for row, kv in enumerate(kvs):
            k, v = kv[layer]
            if k.shape[1]:
                keys[row, :, width - k.shape[1] :] = k
                values[row, :, width - v.shape[1] :] = v
        cache.update(keys, values, layer)
    return cache


@dataclass
class PrefilledBatch:
    """What a stream starts from: the cache of the prefixes and the suffixes still to run."""

    cache: Any
    suffix_ids: torch.Tensor
    mask: torch.Tensor  # prefix columns then suffix columns
    positions: torch.Tensor  # of the suffix columns


def prefill_with_store(
    model: Any,
    rows: Sequence[Sequence[int]],
    cut: Sequence[int],
    *,
    adapter_names: Sequence[str] | None,
    store: PrefixStore,
    pad_id: int,
    device: torch.device,
) -> PrefilledBatch | None:
    """The batch's prefix cache (missing prefixes run once, then kept in ``store``) and its suffixes; None when the
    model's cache cannot be reused this way."""
    adapters = list(adapter_names) if adapter_names is not None else [""] * len(rows)
    keys = [(a, tuple(r[:c])) for a, r, c in zip(adapters, rows, cut)]
    missing = list(dict.fromkeys(k for k in keys if k not in store.entries and k[1]))
    fresh: dict[tuple[str, tuple[int, ...]], KV] = {}
    if missing:
        kvs = run_prefixes(model, missing, pad_id, device, mixed=adapter_names is not None)
        if kvs is None:
            return None
        for key, kv in zip(missing, kvs):
            fresh[key] = kv
            store.put(key, kv)
        store.misses += len(missing)
    store.hits += sum(1 for k in dict.fromkeys(keys) if k[1] and k not in fresh)
    store.reused_tokens += sum(cut) - sum(len(k[1]) for k in missing)
    empty: KV | None = None
    row_kvs = []
    for k in keys:
        if k[1]:
            row_kvs.append(fresh.get(k) or store.entries[k])
        else:
            if empty is None:
                ref = next(iter(fresh.values()), None) or next(iter(store.entries.values()), None)
                if ref is None:
                    return None  # no prefix anywhere: nothing to reuse
                empty = [(k_[:, :0], v_[:, :0]) for k_, v_ in ref]
            row_kvs.append(empty)
    width = max(cut)
    cache = prefilled_cache(model, row_kvs, width)
    suffix_ids, suffix_mask = left_pad([r[c:] for r, c in zip(rows, cut)], pad_id)
    _, prefix_mask = left_pad([[0] * c for c in cut], pad_id, width)
    starts = torch.tensor(cut, dtype=torch.long).unsqueeze(-1)
    positions = starts + (suffix_mask.cumsum(-1) - 1).clamp(min=0)
    mask = torch.cat([prefix_mask, suffix_mask], dim=-1)
    return PrefilledBatch(cache, suffix_ids.to(device), mask.to(device), positions.to(device))
