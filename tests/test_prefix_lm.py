"""PrefixReuseLM (backend hf_prefix) gives HFLM's log-likelihoods, is_greedy flags and accuracies on real items, with
and without a LoRA adapter and a system instruction, while running each shared context once."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import torch

from big5chat import paths
from big5chat.config import DataSource
from big5chat.reasoning.tasks import PROJECT_TASK, shared_sources, task_manager, write_tasks

SAMPLE_TASKS = ("truthfulqa_mc", "piqa", "commonsense_qa")  # multi-token choices (mc2), two long choices, one-token letters


def _models(model_dir: Path, **kw: Any) -> tuple[Any, Any]:
    from lm_eval.models.huggingface import HFLM

    from big5chat.reasoning.prefix_lm import PrefixReuseLM

    args = {"pretrained": str(model_dir), "device": "cpu", "batch_size": 4, "dtype": "float32", **kw}
    return HFLM(**args), PrefixReuseLM(**args)


def _evaluate(lm: Any, tasks: list[str], task_dir: Path, limit: int, system_instruction: str | None = None) -> dict[str, Any]:
    import lm_eval

    return lm_eval.simple_evaluate(model=lm, tasks=[PROJECT_TASK.format(task=t) for t in tasks], task_manager=task_manager(task_dir),
                                   limit=limit, apply_chat_template=True, system_instruction=system_instruction,
                                   fewshot_as_multiturn=False, bootstrap_iters=0, log_samples=True)  # fmt: skip


def _per_request(res: dict[str, Any], task: str) -> tuple[list[float], list[bool], list[float]]:
    """(log-likelihood per request, is_greedy per request, acc per item) of one task, in document order."""
    samples = sorted(res["samples"][PROJECT_TASK.format(task=task)], key=lambda s: s["doc_id"])
    resps = [r[0] for s in samples for r in s["resps"]]
    return [float(r[0]) for r in resps], [bool(r[1]) for r in resps], [float(s["acc"]) for s in samples]


def _assert_same(ref: dict[str, Any], ours: dict[str, Any], tasks: tuple[str, ...] | list[str]) -> None:
    for task in tasks:
        ll_ref, greedy_ref, acc_ref = _per_request(ref, task)
        ll, greedy, acc = _per_request(ours, task)
        assert len(ll) == len(ll_ref) > 0, task
        torch.testing.assert_close(torch.tensor(ll, dtype=torch.float64), torch.tensor(ll_ref, dtype=torch.float64), atol=1e-4, rtol=0, msg=task)
        assert greedy == greedy_ref, task
        name = PROJECT_TASK.format(task=task)
        if task == "truthfulqa_mc":  # mc2's acc is the probability mass on true answers: a float of the log-likelihoods
            assert acc == pytest.approx(acc_ref, abs=1e-5)
            assert ours["results"][name]["acc,none"] == pytest.approx(ref["results"][name]["acc,none"], abs=1e-5)
        else:
            assert acc == acc_ref, task
            assert ours["results"][name]["acc,none"] == ref["results"][name]["acc,none"], task


class _Tokens:
    """Counts the forwards and the token positions (padding included) a model runs."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.calls = self.tokens = 0
        model.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, _module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ids = args[0] if args else kwargs["input_ids"]
        self.calls += 1
        self.tokens += ids.numel()


@pytest.fixture(scope="module")
def sample_tasks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("prefix_tasks")
    write_tasks({t: DataSource(path=str(paths.ROOT / f"data/sample/benchmarks/{t}.jsonl")) for t in SAMPLE_TASKS}, out)
    return out


def test_hf_prefix_is_registered_and_wired(tiny_models: dict[str, Path]) -> None:
    from lm_eval.api.registry import get_model

    from big5chat.generation import backends
    from big5chat.reasoning import run
    from big5chat.reasoning.prefix_lm import PrefixReuseLM

    assert get_model("hf_prefix") is PrefixReuseLM
    kw: dict[str, Any] = {"base_dir": tiny_models["base"], "adapters": {"sft": Path("models/sft")}, "batch_size": 2, "dtype": "float32"}
    name, args = run.lm_spec("hf_prefix", "sft", device="cpu", **kw)
    assert (name, args) == ("hf_prefix", {**run.lm_spec("hf", "sft", device="cpu", **kw)[1]})
    assert backends.lm_eval_model_args("hf_prefix", "m", "a") == ("hf_prefix", backends.lm_eval_model_args("hf", "m", "a")[1])
    name, args = run.lm_spec("hf_prefix", "base", device="cpu", **kw)
    lm = run.make_lm(name, args, 2)
    assert type(lm) is PrefixReuseLM and lm.device.type == "cpu" and lm.batch_size == 2


def test_config_takes_hf_prefix_for_reasoning_only() -> None:
    from big5chat.config import AssessPersonalityConfig, ConfigError, EvaluateReasoningConfig, validate

    assert EvaluateReasoningConfig(backend="hf_prefix").backend == "hf_prefix"
    with pytest.raises(ConfigError) as exc:
        validate(AssessPersonalityConfig, {"backend": "hf_prefix"}, key="assess_personality")
    assert exc.value.problems == [
        "assess_personality.backend: hf_prefix is an lm-eval model for evaluate_reasoning only; questionnaires use 'hf' or 'vllm'"
    ]


def test_request_level_equality_with_fallbacks_and_cache_hook(tiny_models: dict[str, Path]) -> None:
    """Shared contexts with one-token choices, choices behind a shared token, multi-token and mixed choices, duplicate
    requests, one-token contexts and requests HFLM truncates (HFLM's path): the same (log-likelihood, is_greedy) in
    request order, and every answer goes to the cache hook."""
    hf, ours = _models(tiny_models["base"], max_length=48)
    rng = random.Random(0)
    requests: list[tuple[tuple[str, str], list[int], list[int]]] = []
    for d in range(18):
        ctx = [rng.randrange(3, 5000) for _ in range(rng.choice([1, 2, 7, 30, 47]))]
        lengths, stem = ([1], []) if d % 3 == 0 else ([1], [198]) if d % 3 == 1 else ([1, 3], [])
        conts = [stem + [rng.randrange(3, 5000) for _ in range(rng.choice(lengths))] for _ in range(rng.randrange(1, 6))]
        if d % 3 == 0:  # one continuation is the greedy one, so that is_greedy is tested both ways
            with torch.no_grad():
                conts[0] = [int(hf.model(torch.tensor([ctx])).logits[0, -1].argmax())]
        requests += [((f"doc{d}", f"choice{c}"), ctx, cont) for c, cont in enumerate(conts)]
    requests.append(requests[3])
    rng.shuffle(requests)
    seen: dict[Any, Any] = {}
    ours.cache_hook.add_partial = lambda attr, req, res: seen.__setitem__((attr, req), res)  # type: ignore[method-assign]
    ref = hf._loglikelihood_tokens(requests, disable_tqdm=True)
    got = ours._loglikelihood_tokens(requests, disable_tqdm=True)
    assert [g for _, g in got] == [g for _, g in ref] and any(g for _, g in ref) and not all(g for _, g in ref)
    torch.testing.assert_close(torch.tensor([v for v, _ in got]), torch.tensor([v for v, _ in ref]), atol=1e-4, rtol=0)
    assert seen == {("loglikelihood", r[0]): a for r, a in zip(requests, got)}


def test_sample_items_equal_hflm_and_run_each_context_once(tiny_models: dict[str, Path], sample_tasks: Path) -> None:
    """TruthfulQA mc2, PIQA and CommonsenseQA items shipped in the repo: HFLM's numbers; TruthfulQA runs under a third of
    HFLM's token positions, and the one-token task no more forwards or positions than HFLM's."""
    hf, ours = _models(tiny_models["base"])
    count_hf, count_ours = _Tokens(hf.model), _Tokens(ours.model)
    for task in SAMPLE_TASKS:
        before = (count_hf.calls, count_hf.tokens, count_ours.calls, count_ours.tokens)
        ref, got = _evaluate(hf, [task], sample_tasks, 12), _evaluate(ours, [task], sample_tasks, 12)
        _assert_same(ref, got, [task])
        calls_hf, tokens_hf = count_hf.calls - before[0], count_hf.tokens - before[1]
        calls, tokens = count_ours.calls - before[2], count_ours.tokens - before[3]
        if task == "truthfulqa_mc":
            assert tokens * 3 < tokens_hf, (tokens, tokens_hf)
        if task == "commonsense_qa":
            assert calls <= calls_hf and tokens <= tokens_hf, (calls, calls_hf, tokens, tokens_hf)


def test_lora_adapter_and_system_instruction(tiny_models: dict[str, Path], sample_tasks: Path, tmp_path: Path) -> None:
    """A random LoRA adapter through ``peft=`` on both models and a system instruction: the same numbers, and the
    adapter really is applied (it changes the log-likelihoods)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(tiny_models["base"]), dtype=torch.float32)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], init_lora_weights=False)
    get_peft_model(base, lora).save_pretrained(str(tmp_path / "adapter"))
    hf, ours = _models(tiny_models["base"], peft=str(tmp_path / "adapter"))
    assert type(ours.model).__name__.startswith("Peft")
    system = "You are a person with high openness."
    tasks = ["truthfulqa_mc", "piqa"]
    ref, got = _evaluate(hf, tasks, sample_tasks, 6, system), _evaluate(ours, tasks, sample_tasks, 6, system)
    _assert_same(ref, got, tasks)
    assert system in got["samples"]["b5c_piqa"][0]["arguments"][0][0]
    plain, _ = _models(tiny_models["base"])
    without = _per_request(_evaluate(plain, ["piqa"], sample_tasks, 6, system), "piqa")[0]
    assert max(abs(a - b) for a, b in zip(_per_request(got, "piqa")[0], without)) > 1e-2


def test_seq2seq_models_are_refused(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    from transformers import T5Config, T5ForConditionalGeneration

    from big5chat.reasoning.prefix_lm import PrefixReuseLM

    config = T5Config(vocab_size=49152, d_model=16, d_ff=32, d_kv=8, num_layers=1, num_heads=2, decoder_start_token_id=0, pad_token_id=0)
    T5ForConditionalGeneration(config).save_pretrained(str(tmp_path / "t5"))
    for f in tiny_models["base"].iterdir():
        if f.name.startswith("tokenizer") or f.name in ("special_tokens_map.json", "chat_template.jinja"):
            shutil.copy(f, tmp_path / "t5" / f.name)
    with pytest.raises(NotImplementedError, match="decoder-only causal LMs"):
        PrefixReuseLM(pretrained=str(tmp_path / "t5"), device="cpu", batch_size=2, dtype="float32")


@pytest.mark.slow
@pytest.mark.shared
def test_embedded_model_equals_hflm_on_shared_items(shared_data: Path, tmp_path: Path) -> None:
    """The embedded SmolLM2-135M on real TruthfulQA mc2, PIQA and CommonsenseQA items from ../shared: HFLM's
    log-likelihoods, is_greedy flags and accuracies."""
    from big5chat.config import ModelSpec
    from big5chat.models.materialize import materialize

    materialize(ModelSpec("embedded", "smollm2-135m-instruct"), tmp_path / "base", "base")
    write_tasks(shared_sources(SAMPLE_TASKS, shared_data / "benchmarks"), tmp_path / "tasks")
    hf, ours = _models(tmp_path / "base", batch_size=8)
    tasks = list(SAMPLE_TASKS)
    ref, got = _evaluate(hf, tasks, tmp_path / "tasks", 12), _evaluate(ours, tasks, tmp_path / "tasks", 12)
    _assert_same(ref, got, tasks)
    assert any(g for t in tasks for g in _per_request(ref, t)[1]), "some requests are greedy (is_greedy compared both ways)"


def test_generation_tasks_give_hflms_replies(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """GSM8K (generate_until, 5-shot) decodes into a growing cache: the same replies as HFLM."""
    write_tasks({"gsm8k": DataSource(path=str(paths.ROOT / "data/sample/benchmarks/gsm8k.jsonl"))}, tmp_path)
    hf, ours = _models(tiny_models["base"])
    import lm_eval

    kw = dict(tasks=[PROJECT_TASK.format(task="gsm8k")], task_manager=task_manager(tmp_path), limit=2, apply_chat_template=True,
              fewshot_as_multiturn=False, bootstrap_iters=0, log_samples=True, gen_kwargs={"max_gen_toks": 16})  # fmt: skip
    ref, got = lm_eval.simple_evaluate(model=hf, **kw), lm_eval.simple_evaluate(model=ours, **kw)
    name = PROJECT_TASK.format(task="gsm8k")
    replies = [[s["resps"] for s in sorted(r["samples"][name], key=lambda s: s["doc_id"])] for r in (ref, got)]
    assert replies[0] == replies[1] and any(str(x).strip("[]' ") for x in replies[0])
