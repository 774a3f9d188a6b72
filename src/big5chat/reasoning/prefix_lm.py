"""An lm-eval HF model that runs each shared context once across a request's answer choices (``hf_prefix``).

lm-eval scores a multiple-choice item as one log-likelihood request per choice, all with the same context. HFLM
runs ``(context + continuation)[:-1]`` through the model for every choice, and only shares work when the choices
differ in their last token only (its ``group_by="contexts"`` lookup: one-token choices such as MMLU's letters, which
after a chat template become a newline token plus the letter). ``PrefixReuseLM`` overrides ``_loglikelihood_tokens``
(generation, tokenization, chat templates, system instructions and ``peft=`` adapters stay HFLM's; generation only
decodes into a cache with reserved columns, ``growing_cache``):

* requests are grouped by their context tokens;
* a group whose continuations differ in their last token only runs ``context + continuation[:-1]`` once (batched
  with other such groups, left-padded), and the last positions' log-probs score every choice, as HFLM's lookup does
  but without the vocabulary projection and log-softmax of the context positions;
* any other group runs ``context[:-1]`` once (batched across groups, left-padded, with explicit ``attention_mask`` and
  ``position_ids``), its KV cache is expanded to one row per distinct ``continuation[:-1]``, and
  ``[context[-1]] + continuation[:-1]`` is run on top of it; its log-probs score the continuation tokens;
* requests whose context is under 2 tokens or that HFLM would truncate (``len(context + continuation) >
  max_length + 1``), and prompt-learning PEFT adapters (virtual tokens), go through HFLM's own path.

Why the results equal HFLM's: a causal LM's output at position ``t`` depends only on the tokens at positions ``<= t``
and their positions. Padding is masked out of attention and ``position_ids`` restart at 0 on each row's first real
token, so every scored position sees exactly the token sequence and positions it sees in HFLM's forward, and the
log-softmax, sums and ``is_greedy`` (per-token argmax equals the continuation) are computed as HFLM computes them
(same ``softmax_dtype`` and autocast). Only the order and grouping of floating-point operations differ (matrix shapes,
cached vs. recomputed keys and values), so the numbers agree up to rounding: about 1e-5 in float32.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from tqdm import tqdm

from big5chat.generation.growing_cache import growing_cache

Request = tuple[Any, list[int], list[int]]  # ((context, continuation) strings or None, context tokens, continuation tokens)
Group = tuple[tuple[int, ...], list[int]]  # (context tokens, indices of its requests)


@register_model("hf_prefix")
class PrefixReuseLM(HFLM):
    """HFLM whose log-likelihoods run each shared context once per group of requests (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.backend != "causal":
            raise NotImplementedError(f"PrefixReuseLM (hf_prefix) supports decoder-only causal LMs, not {self.backend!r} models; use 'hf'")
        config = getattr(self.model, "active_peft_config", None)
        self._reuse = not (config is not None and config.is_prompt_learning)  # virtual tokens shift positions: HFLM's path
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        self._logits_to_keep = "logits_to_keep" in _parameters(base.forward)

    def _loglikelihood_tokens(self, requests: list[Request], disable_tqdm: bool = False, override_bs: int | None = None) -> list[tuple[float, bool]]:
        res: list[tuple[float, bool] | None] = [None] * len(requests)
        own: dict[tuple[int, ...], list[int]] = {}  # context tokens -> request indices
        fallback: list[int] = []
        for i, (_, ctx, cont) in enumerate(requests):
            assert len(ctx) > 0 and 0 < len(cont) <= self.max_length
            if self._reuse and len(ctx) >= 2 and len(ctx) + len(cont) <= self.max_length + 1:
                own.setdefault(tuple(ctx), []).append(i)
            else:
                fallback.append(i)
        pbar = tqdm(total=len(requests), disable=disable_tqdm or self.rank != 0, desc="Running loglikelihood requests (prefix reuse)")
        if fallback:
            for i, r in zip(fallback, super()._loglikelihood_tokens([requests[i] for i in fallback], disable_tqdm=True, override_bs=override_bs)):
                res[i] = r
            pbar.update(len(fallback))
        # longest first, as HFLM: less padding per batch, and an out-of-memory error shows at once
        groups = sorted(own.items(), key=lambda g: -(len(g[0]) + max(len(requests[i][2]) for i in g[1])))
        stems = {ctx: {tuple(requests[i][2][:-1]) for i in members} for ctx, members in groups}
        batch_size = self._batch_size_for(requests, groups, override_bs)
        for chunk in _chunks([g for g in groups if len(stems[g[0]]) == 1], batch_size, lambda g: 1):
            self._score(requests, res, self._shared_stem_scores(chunk, requests), pbar)
        for chunk in _chunks([g for g in groups if len(stems[g[0]]) > 1], batch_size, lambda g: len(stems[g[0]])):
            self._score(requests, res, self._continuation_scores(chunk, requests), pbar)
        pbar.close()
        assert all(r is not None for r in res)
        return res  # type: ignore[return-value]

    def _model_generate(self, context: torch.Tensor, max_length: int, stop: list[str], **generation_kwargs: Any) -> torch.Tensor:
        """HFLM's generation, decoding into a KV cache with room reserved for the new tokens (``growing_cache``:
        the same tokens, without copying the cache at every step; GSM8K's 5-shot context is long)."""
        if "cache" not in generation_kwargs:
            cache = growing_cache(self.model, max(1, max_length - context.shape[1]))
            if cache is not None:
                generation_kwargs["cache"] = cache
        return super()._model_generate(context, max_length, stop, **generation_kwargs)

    def _batch_size_for(self, requests: list[Request], groups: list[Group], override_bs: int | None) -> int:
        """Sequences per forward: the fixed batch size, or for ``auto`` HFLM's detection on the longest request."""
        if self.batch_size != "auto":
            return int(self.batch_size)
        if override_bs:
            return override_bs
        if not groups:
            return 1
        return int(self._detect_batch_size([requests[max(groups[0][1], key=lambda i: len(requests[i][2]))]], 0))

    def _keep(self, n: int) -> dict[str, int]:
        """Forward arguments computing the logits of the last ``n`` positions only, where the model allows it."""
        return {"logits_to_keep": n} if self._logits_to_keep else {}

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, **kwargs: Any) -> Any:
        with (
            torch.no_grad(),
            torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype, enabled=self.mixed_precision_dtype is not None),
        ):
            return self.model(input_ids=ids, attention_mask=mask, position_ids=positions, **kwargs)

    def _left_padded(self, seqs: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(input ids, attention mask, position ids) of left-padded rows; positions start at 0 on the first real token."""
        width = max(len(s) for s in seqs)
        ids = torch.zeros(len(seqs), width, dtype=torch.long)
        mask = torch.zeros(len(seqs), width, dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, width - len(s) :] = torch.tensor(s, dtype=torch.long)
            mask[r, width - len(s) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return ids.to(self.device), mask.to(self.device), positions.to(self.device)

    def _shared_stem_scores(self, chunk: list[Group], requests: list[Request]) -> Iterator[tuple[int, float, bool]]:
        """Groups whose continuations differ in their last token only (one-token choices, or one-token choices behind
        the same whitespace token, as after a chat template): one forward of ``context + continuation[:-1]`` per group
        scores every choice, as HFLM's ``group_by="contexts"`` lookup does. Left padding aligns the scored positions
        at the end of every row, so only those reach the vocabulary projection."""
        seqs = [[*ctx, *requests[members[0]][2][:-1]] for ctx, members in chunk]
        keep = max(len(requests[members[0]][2]) for _, members in chunk)
        ids, mask, positions = self._left_padded(seqs)
        logits = self._forward(ids, mask, positions, **self._keep(keep)).logits[:, -keep:, :]
        logprobs = F.log_softmax(logits, dim=-1, dtype=self.softmax_dtype)
        greedy = logprobs.argmax(dim=-1)
        for g, (_, members) in enumerate(chunk):
            for i in members:
                yield (i, *_picked(logprobs[g, keep - len(requests[i][2]) :], greedy[g, keep - len(requests[i][2]) :], requests[i][2]))

    def _continuation_scores(self, chunk: list[Group], requests: list[Request]) -> Iterator[tuple[int, float, bool]]:
        """Other groups: ``context[:-1]`` once, then every distinct ``[context[-1]] + continuation[:-1]`` on its cache."""
        ids, mask, positions = self._left_padded([ctx[:-1] for ctx, _ in chunk])
        cache = self._forward(ids, mask, positions, use_cache=True, **self._keep(1)).cache
        rows: dict[tuple[int, tuple[int, ...]], int] = {}  # (group, continuation[:-1]) -> suffix row
        for g, (_, members) in enumerate(chunk):
            for i in members:
                rows.setdefault((g, tuple(requests[i][2][:-1])), len(rows))
        width = max(len(stem) for _, stem in rows) + 1
        suffix = torch.zeros(len(rows), width, dtype=torch.long)  # right-padded: causal, so padding never reaches a scored position
        for (g, stem), r in rows.items():
            suffix[r, : len(stem) + 1] = torch.tensor([chunk[g][0][-1], *stem], dtype=torch.long)
        owner = torch.tensor([g for g, _ in rows], dtype=torch.long, device=self.device)
        cache.reorder_cache(owner)  # one copy of the group's prefix keys and values per suffix row
        prefix_lens = torch.tensor([len(chunk[g][0]) - 1 for g, _ in rows], device=self.device)
        suffix_mask = torch.cat([mask[owner], torch.ones(len(rows), width, dtype=torch.long, device=self.device)], dim=1)
        suffix_pos = prefix_lens[:, None] + torch.arange(width, device=self.device)[None, :]
        logits = self._forward(suffix.to(self.device), suffix_mask, suffix_pos, cache=cache).logits
        logprobs = F.log_softmax(logits, dim=-1, dtype=self.softmax_dtype)
        greedy = logprobs.argmax(dim=-1)
        for g, (_, members) in enumerate(chunk):
            for i in members:
                cont = requests[i][2]
                r = rows[(g, tuple(cont[:-1]))]
                yield (i, *_picked(logprobs[r, : len(cont)], greedy[r, : len(cont)], cont))

    def _score(self, requests: list[Request], res: list[tuple[float, bool] | None], scores: Iterator[tuple[int, float, bool]], pbar: tqdm) -> None:
        """Store each answer at its request's index (the original order) and hand it to the cache hook, as HFLM does."""
        for i, logprob, is_greedy in scores:
            res[i] = answer = (logprob, is_greedy)
            if requests[i][0] is not None:  # loglikelihood_rolling adds its own per-document partials
                self.cache_hook.add_partial("loglikelihood", requests[i][0], answer)
            pbar.update(1)


def _chunks(groups: list[Group], batch_size: int, rows: Callable[[Group], int]) -> Iterator[list[Group]]:
    """Consecutive groups with at most ``batch_size`` rows per forward (a group with more rows goes alone)."""
    chunk: list[Group] = []
    used = 0
    for g in groups:
        n = rows(g)
        if chunk and used + n > batch_size:
            yield chunk
            chunk, used = [], 0
        chunk.append(g)
        used += n
    if chunk:
        yield chunk


def _picked(logprobs: torch.Tensor, greedy: torch.Tensor, cont: list[int]) -> tuple[float, bool]:
    """(sum of the continuation's log-probs, whether every token is the argmax), as HFLM computes them."""
    toks = torch.tensor(cont, dtype=torch.long, device=logprobs.device)
    return float(logprobs.gather(-1, toks[:, None]).sum()), bool((greedy == toks).all())


def _parameters(fn: Any) -> set[str]:
    import inspect

    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return set()
