"""DExperts decoding: exactness against plain generation and a no-cache recomputation, batching, seeding."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from big5chat.generation.chat import render
from big5chat.generation.dexperts import Sampling, Steering, combine_logits, generate, top_p_filter
from big5chat.models.loading import load_chat_model

PROMPTS = ["Tell me about your weekend.", "Hi", "What is the best way to keep a small garden alive in a hot summer?"]


@pytest.fixture(scope="module")
def models(tiny_models: dict[str, Path]):  # type: ignore[no-untyped-def]
    base, tok = load_chat_model(tiny_models["base"])
    expert = copy.deepcopy(base)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in expert.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return base, expert, tok


def _rendered(tok, texts):  # type: ignore[no-untyped-def]
    return [render(tok, [{"role": "user", "content": t}]) for t in texts]


def test_combination_rules() -> None:
    b, e, a = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 0.0]), torch.tensor([1.0, 1.0])
    study = Steering("study", alpha=0.5, warmup=5)
    assert torch.equal(combine_logits(b, e, None, study, step=4), b)
    assert torch.equal(combine_logits(b, e, None, study, step=5), torch.tensor([2.5, 2.0]))
    dexp = Steering("dexperts", alpha=2.0, warmup=0)
    assert torch.equal(combine_logits(b, e, a, dexp, step=0), torch.tensor([5.0, 0.0]))
    with pytest.raises(ValueError, match="anti-expert"):
        combine_logits(b, e, None, dexp, step=0)


def test_top_p_keeps_the_smallest_set_reaching_p() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = torch.isfinite(top_p_filter(logits, 0.7))
    assert kept.tolist() == [[True, True, False, False]]


def _varied(rows: list[list[int]]) -> bool:
    """Guards against a vacuous comparison: a model that repeats one token matches any broken loop."""
    return all(len(set(r)) > 2 for r in rows if len(r) >= 6)


def test_alpha_zero_reproduces_greedy_generate(models) -> None:  # type: ignore[no-untyped-def]
    base, expert, tok = models
    prompts = _rendered(tok, PROMPTS)
    ids = generate(tok, (base, prompts), (expert, prompts), steering=Steering(alpha=0.0), max_new_tokens=12)
    assert _varied(ids) and any(len(r) >= 6 for r in ids)
    tok.padding_side = "left"
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    ref = base.generate(**enc, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id, temperature=None, top_p=None, top_k=None)
    for row, mine in zip(ref[:, enc["input_ids"].shape[1] :], ids):
        row = row.tolist()
        if tok.eos_token_id in row:
            row = row[: row.index(tok.eos_token_id)]
        row = [t for t in row if t != tok.pad_token_id]
        assert mine == row


def _nocache(base, expert, tok, base_prompts, expert_prompts, steering, n):  # type: ignore[no-untyped-def]
    """The study's way: recompute every model on its whole sequence at every step, one row at a time."""
    outs = []
    for bp, ep in zip(base_prompts, expert_prompts):
        b_ids = tok(bp, return_tensors="pt", add_special_tokens=False)["input_ids"]
        e_ids = tok(ep, return_tensors="pt", add_special_tokens=False)["input_ids"]
        gen: list[int] = []
        for step in range(n):
            extra = torch.tensor([gen], dtype=torch.long).reshape(1, -1)
            lb = base(torch.cat([b_ids, extra], 1)).logits[0, -1]
            le = expert(torch.cat([e_ids, extra], 1)).logits[0, -1]
            t = int(combine_logits(lb, le, None, steering, step).argmax())
            if t == tok.eos_token_id:
                break
            gen.append(t)
        outs.append(gen)
    return outs


@torch.no_grad()
def test_cached_batched_loop_equals_nocache_recomputation(models) -> None:  # type: ignore[no-untyped-def]
    base, expert, tok = models
    bp = _rendered(tok, PROMPTS)
    ep = _rendered(tok, ["Help me complete the sentence - high\n"] * 3)
    steering = Steering("study", alpha=1.5, warmup=2)
    mine = generate(tok, (base, bp), (expert, ep), steering=steering, max_new_tokens=10)
    assert _varied(mine)
    assert mine != generate(tok, (base, bp), steering=steering, max_new_tokens=10), "steering must change the output"
    assert mine == _nocache(base, expert, tok, bp, ep, steering, 10)
    one_by_one = [generate(tok, (base, [b]), (expert, [e]), steering=steering, max_new_tokens=10)[0] for b, e in zip(bp, ep)]
    assert mine == one_by_one


def test_three_models_and_seeded_sampling_repeat(models) -> None:  # type: ignore[no-untyped-def]
    base, expert, tok = models
    bp = _rendered(tok, PROMPTS)
    hi = _rendered(tok, ["high\n"] * 3)
    lo = _rendered(tok, ["low\n"] * 3)
    kw = dict(steering=Steering("dexperts", alpha=1.0, warmup=0), sampling=Sampling(True, 0.8, 0.9), max_new_tokens=8)
    a = generate(tok, (base, bp), (expert, hi), (expert, lo), seed=7, **kw)
    b = generate(tok, (base, bp), (expert, hi), (expert, lo), seed=7, **kw)
    c = generate(tok, (base, bp), (expert, hi), (expert, lo), seed=8, **kw)
    assert a == b and a != c


def test_mixed_adapter_batch_equals_separate_models(tiny_models: dict[str, Path]) -> None:
    from peft import LoraConfig, get_peft_model

    base_a, tok = load_chat_model(tiny_models["base"])
    base_b, _ = load_chat_model(tiny_models["base"])
    torch.manual_seed(3)
    peft = get_peft_model(base_b, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False), adapter_name="openness")
    peft.eval()
    bp = _rendered(tok, PROMPTS)
    ep = _rendered(tok, ["Help me complete the sentence - low\n"] * 3)
    steering = Steering("study", alpha=0.8, warmup=1)
    separate = generate(tok, (base_a, bp), (peft, ep), steering=steering, max_new_tokens=10)
    mixed = generate(tok, (peft, bp), (peft, ep), steering=steering, max_new_tokens=10, adapters=("openness", None))
    assert _varied(separate) and mixed == separate


def test_prefix_reuse_gives_the_same_tokens_and_keeps_prefixes_across_batches(models) -> None:  # type: ignore[no-untyped-def]
    """Shared prompt prefixes prefilled once (and taken from the store in a later batch) decode exactly the tokens of
    a full prefill, for separate models and for one PEFT model with mixed adapters (float32)."""
    from big5chat.generation.prefix_cache import PrefixStore, common_prefix_len

    base, expert, tok = models
    shared = "We are planning a picnic by the river this Saturday with the whole family. "
    bp = _rendered(tok, [shared + "What should I bring?", shared + "Hi", shared + "Any idea how to keep the drinks cold all day long?"])
    ep = _rendered(tok, ["Help me complete the sentence - high\n"] * 3)
    lens = [common_prefix_len([tok(p, add_special_tokens=False)["input_ids"] for p in bp])] * 3
    assert lens[0] > 10
    steering = Steering("study", alpha=0.8, warmup=1)
    full = generate(tok, (base, bp), (expert, ep), steering=steering, max_new_tokens=10)
    store = PrefixStore(base)
    first = generate(
        tok, (base, bp), (expert, ep), steering=steering, max_new_tokens=10, reuse_prefixes=True, base_prefix_lens=lens, prefix_store=store
    )
    again = generate(
        tok, (base, bp[::-1]), (expert, ep), steering=steering, max_new_tokens=10, reuse_prefixes=True, base_prefix_lens=lens, prefix_store=store
    )
    assert _varied(full) and first == full and again == full[::-1]
    assert store.stats()["prefixes"] == 1 and store.hits == 1 and store.misses == 1
    auto = generate(tok, (base, bp), (expert, ep), steering=steering, max_new_tokens=10, reuse_prefixes=True)  # prefix found in the batch
    assert auto == full


def test_prefix_reuse_with_mixed_adapters(tiny_models: dict[str, Path]) -> None:
    from peft import LoraConfig, get_peft_model

    from big5chat.generation.prefix_cache import PrefixStore

    base, tok = load_chat_model(tiny_models["base"])
    torch.manual_seed(3)
    peft = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False), adapter_name="openness")
    peft.eval()
    bp = _rendered(tok, ["Our team meets on Mondays to plan the week. " + t for t in PROMPTS])
    ep = _rendered(tok, ["Help me complete the sentence - low\n"] * 3)
    kw = dict(steering=Steering("study", alpha=0.8, warmup=1), max_new_tokens=10, adapters=("openness", None))
    plain = generate(tok, (peft, bp), (peft, ep), **kw)  # type: ignore[arg-type]
    store = PrefixStore(peft)
    reused = generate(tok, (peft, bp), (peft, ep), reuse_prefixes=True, prefix_store=store, **kw)  # type: ignore[arg-type]
    assert _varied(plain) and reused == plain
    assert {a for a, _ in store.entries} == {"__base__", "openness"}, "base and expert rows keep their own prefixes"


def test_split_points_leave_each_row_a_token_of_its_own() -> None:
    from big5chat.generation.prefix_cache import common_prefix_len, split_points

    rows = [[1, 2, 3, 4], [1, 2, 3, 5, 6], [1, 2, 3]]
    assert common_prefix_len(rows) == 3 and common_prefix_len([]) == 0
    assert split_points(rows) == [3, 3, 2]
    assert split_points(rows, [4, 1, 0]) == [3, 1, 0]
    with pytest.raises(ValueError, match="2 prefix lengths for 3 rows"):
        split_points(rows, [1, 2])


def test_growing_cache_layer_matches_dynamic_layer() -> None:
    """Reserved columns hold the same keys and values as transformers' concatenating layer, through growth beyond
    the reservation, dropping finished rows and cropping."""
    from transformers.cache_utils import DynamicLayer

    from big5chat.generation.growing_cache import GrowingLayer

    torch.manual_seed(0)
    first = torch.randn(3, 2, 5, 4), torch.randn(3, 2, 5, 4)
    ref = DynamicLayer()
    ref.update(*first)
    grow = GrowingLayer(*first, extra=2)
    for step in range(4):  # the fourth step outgrows the 2 reserved columns
        k, v = torch.randn(3 - (step >= 2), 2, 1, 4), torch.randn(3 - (step >= 2), 2, 1, 4)
        if step == 2:
            ref.batch_select_indices(torch.tensor([0, 2]))
            grow.batch_select_indices(torch.tensor([0, 2]))
        rk, rv = ref.update(k, v)
        gk, gv = grow.update(k, v)
        assert torch.equal(rk, gk) and torch.equal(rv, gv) and grow.get_seq_length() == ref.get_seq_length() == 6 + step
    ref.crop(-2)
    grow.crop(-2)
    assert torch.equal(ref.keys, grow.keys) and grow.get_seq_length() == 7


def test_generate_chat_with_a_growing_cache_gives_the_same_replies(models, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from big5chat.generation import chat

    base, _, tok = models
    convs = [[{"role": "user", "content": t}] for t in PROMPTS]
    assert chat.growing_cache(base, 8) is not None, "the tiny Llama's cache is reserved in place"
    reserved = chat.generate_chat(base, tok, convs, max_new_tokens=12, batch_size=3)
    monkeypatch.setattr(chat, "growing_cache", lambda model, extra: None)
    assert chat.generate_chat(base, tok, convs, max_new_tokens=12, batch_size=3) == reserved and any(reserved)
