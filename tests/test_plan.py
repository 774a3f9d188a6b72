"""Profiles plan offline; the plan's estimates on a known config; backends fail clearly when absent and dispatch to
the chosen one (vLLM faked: it is never installed in CI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from big5chat import paths, plan
from big5chat.generation import backends
from big5chat.psychometrics import administer as adm
from big5chat.reasoning import run


@pytest.mark.parametrize("profile", ["default", "smoke", "paper_8b", "paper_70b"])
def test_every_profile_plans(profile: str) -> None:
    p = plan.plan(profile)
    assert len(p["stages"]) >= 16 and all(cmd.startswith("python -m big5chat stage") for _, cmd in p["stages"])
    assert {r["stage"] for r in p["estimates"]} >= {"generate_dialogues", "train_sft", "evaluate_reasoning"}
    if profile.startswith("paper"):
        assert p["warnings"] and "big5_training_data.csv" in p["warnings"][0]
    else:
        assert not p["warnings"]


def test_formulas_on_a_known_case() -> None:
    a = plan.Arch(params=1e9, layers=10, kv_heads=2, head_dim=64)
    # 2 N T prefill of 1e6 tokens at 35% of 989 TFLOP/s
    assert plan.gpu_hours(2 * a.params * 1e6, 0.35) == pytest.approx(2e15 / (989e12 * 0.35) / 3600)
    # 1000 generated tokens in batches of 10: 100 steps, each reading 2 GB at 60% of 3.35 TB/s
    assert plan.decode_hours(a, 1000, 10) == pytest.approx(100 * 2e9 / (3.35e12 * 0.6) / 3600)
    # KV cache: 2 (k and v) x 10 layers x 2 heads x 64 dims x 2 bytes = 5120 bytes per token
    assert plan.kv_gb(a, 1e6) == pytest.approx(5.12)


def test_paper_profile_is_the_papers_scale() -> None:
    p = plan.plan("paper_70b")
    params = p["params"]
    assert params.models.base.name == "meta-llama/Meta-Llama-3-70B-Instruct"
    est = {r["stage"]: r for r in p["estimates"]}
    assert est["generate_dialogues"]["gpus"] >= 2, "a 70B base and an 8B expert in bf16 do not fit one 80 GB GPU"
    assert est["train_experts (all)"]["model"] == "meta-llama/Meta-Llama-3-8B-Instruct", "the study's experts stay 8B"
    assert params.models.expert_base.name == "meta-llama/Meta-Llama-3-8B-Instruct"
    assert sum(r["gpu_hours"] for r in p["estimates"]) > 10


def test_vllm_backend_fails_clearly_when_absent() -> None:
    if backends.vllm_available():
        pytest.skip("vLLM is installed here")
    with pytest.raises(backends.BackendUnavailable, match="not installed here"):
        backends.require("vllm")
    assert backends.lm_eval_model_args("hf", "m", "a")[1]["peft"] == "a"


class _Tok:
    """A tokenizer stand-in with a readable chat template."""

    def apply_chat_template(self, messages: list[dict[str, str]], add_generation_prompt: bool, tokenize: bool) -> str:
        assert add_generation_prompt and not tokenize
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"


def _conv(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_questionnaire_sampler_hf_batches_all_groups_in_one_generate_chat(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def fake_generate_chat(model: Any, tok: Any, convs: list[Any], **kw: Any) -> list[str]:
        calls.append({"model": model, "tok": tok, "convs": convs, **kw})
        return [f"r{i}" for i in range(len(convs))]

    monkeypatch.setattr(adm, "generate_chat", fake_generate_chat)
    model, tok = object(), _Tok()
    sample = adm.sampler_for("hf", model=model, tok=tok, temperature=0.6, max_new_tokens=7, batch_size=3)
    groups = [([_conv("a"), _conv("b")], 11), ([_conv("c")], 12)]
    assert list(sample(groups)) == [["r0", "r1"], ["r2"]]  # split back per group, in order
    assert len(calls) == 1 and calls[0]["convs"] == [_conv("a"), _conv("b"), _conv("c")] and calls[0]["model"] is model
    seed = calls[0]["seed"]
    assert calls[0] | {"convs": None, "seed": None} == {"model": model, "tok": tok, "convs": None, "max_new_tokens": 7, "batch_size": 3,
                                                         "do_sample": True, "temperature": 0.6, "seed": None}  # fmt: skip
    sample(groups)
    sample([([_conv("a"), _conv("b")], 11), ([_conv("c")], 13)])
    assert calls[1]["seed"] == seed and calls[2]["seed"] != seed  # seeded from the groups' seeds: reproducible
    assert sample([]) == []


def test_questionnaire_sampler_vllm_renders_and_calls_vllm_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    from big5chat.data.loaders import load_questionnaires
    from big5chat.psychometrics.conditions import Condition

    seen: list[dict[str, Any]] = []

    def fake_vllm_sample(model_dir: str, prompts: list[str], **kw: Any) -> list[str]:
        seen.append({"model_dir": model_dir, "prompts": prompts, **kw})
        return [f" {1 + i % 5} because" for i in range(len(prompts))]

    monkeypatch.setattr(backends, "vllm_available", lambda: True)
    monkeypatch.setattr(backends, "vllm_sample", fake_vllm_sample)
    tok = _Tok()
    sample = adm.sampler_for("vllm", model=None, tok=tok, model_dir=Path("models/base"), adapter_dir=Path("models/sft"),
                             temperature=0.6, max_new_tokens=128, batch_size=64)  # fmt: skip
    bfi = {"BFI": load_questionnaires(paths.DATA / "instruments")["BFI"]}
    conds = [Condition("sft", "openness", "high"), Condition("sft")]
    out = adm.administer(None, tok, conds, bfi, mode="generate", runs=3, temperature=0.6, max_new_tokens=128, seed=5, sampler=sample)
    assert len(seen) == 1, "one vLLM engine for all conditions, questionnaires and runs of a method"
    call = seen[0]
    n = 2 * 3 * 44
    assert (call["model_dir"], call["adapter_dir"], call["temperature"], call["max_new_tokens"]) == ("models/base", "models/sft", 0.6, 128)
    assert len(call["prompts"]) == n and call["prompts"][0].startswith("<") and call["prompts"][0].endswith("<assistant>")
    assert len(call["seed"]) == n and len(set(call["seed"])) == n, "one seed per prompt: no two prompts share random draws"
    assert len(out) == n and out["reply"].iloc[0] == "1 because" and out["raw"].tolist()[:6] == [1, 2, 3, 4, 5, 1]
    assert sorted(out["run"].unique()) == [0, 1, 2] and out["parsed"].all()
    # the same seeds on a second call (reproducible), other seeds with another `seed`
    adm.administer(None, tok, conds, bfi, mode="generate", runs=3, seed=5, sampler=sample)
    adm.administer(None, tok, conds, bfi, mode="generate", runs=3, seed=6, sampler=sample)
    assert seen[1]["seed"] == call["seed"] and set(seen[2]["seed"]).isdisjoint(call["seed"])
    # the base model's methods get no adapter
    adm.sampler_for("vllm", model=None, tok=tok, model_dir="m", temperature=1.0, max_new_tokens=4, batch_size=1)([([_conv("x")], 1)])
    assert seen[-1]["adapter_dir"] is None and seen[-1]["model_dir"] == "m"


def test_questionnaire_vllm_sampler_fails_clearly_when_absent() -> None:
    if backends.vllm_available():
        pytest.skip("vLLM is installed here")
    with pytest.raises(backends.BackendUnavailable, match="not installed here"):
        adm.sampler_for("vllm", model=None, tok=_Tok(), model_dir="m", temperature=0.6, max_new_tokens=4, batch_size=1)


def test_reasoning_model_spec_per_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    adapters = {"sft": Path("models/sft")}
    kw: dict[str, Any] = {"base_dir": Path("models/base"), "adapters": adapters, "batch_size": 8, "dtype": "bfloat16"}
    assert run.lm_spec("hf", "sft", device="cpu", **kw) == (
        "hf", {"pretrained": "models/base", "device": "cpu", "batch_size": 8, "dtype": "bfloat16", "peft": "models/sft"})  # fmt: skip
    assert "peft" not in run.lm_spec("hf", "base", device="cpu", **kw)[1]
    if not backends.vllm_available():
        with pytest.raises(backends.BackendUnavailable):
            run.lm_spec("vllm", "sft", device=None, **kw)
    monkeypatch.setattr(backends, "vllm_available", lambda: True)
    name, args = run.lm_spec("vllm", "sft", device=None, **kw)
    assert name == "vllm" and args["enable_lora"] is True and args["lora_local_path"] == "models/sft"
    assert args["pretrained"] == "models/base" and args["dtype"] == "bfloat16" and "peft" not in args
    assert args["tensor_parallel_size"] == backends.visible_gpus() >= 1  # vLLM shards over every visible GPU
    assert "enable_lora" not in run.lm_spec("vllm", "base", device=None, **kw)[1]

    class Built(Exception):
        pass

    built: list[tuple[str, dict[str, Any], int]] = []

    def fake_make_lm(name: str, args: dict[str, Any], batch_size: int) -> Any:
        built.append((name, args, batch_size))
        raise Built

    monkeypatch.setattr(run, "make_lm", fake_make_lm)
    with pytest.raises(Built):
        run.evaluate([run.Cell("sft", "openness", "high")], ["piqa"], task_manager=None, limits={}, apply_chat_template=True,
                     fewshot_as_multiturn=False, max_gen_toks=8, backend="vllm", **kw)  # fmt: skip
    assert built == [("vllm", args, 8)]


def test_the_plan_gives_wall_clock_hours_for_1_8_and_64_gpus() -> None:
    """paper_70b: on 1 GPU the 70B stages do not fit; on 8 and 64 the dialogue generation runs as data-parallel
    shards of a 4-way tensor-parallel base (generate_dialogues.tensor_parallel, the fewest that hold the base's
    share, its KV cache and a whole 8B expert per 80 GB GPU), so it scales with the GPUs, while single-process
    stages do not scale. Without tensor parallelism the shards are 3-GPU device_map replicas at one GPU's speed."""
    p = plan.plan("paper_70b")
    est = {r["stage"]: r for r in p["estimates"]}
    wall = {n: {r["stage"]: r for r in rows} for n, rows in p["wall_clock"].items()}
    assert set(wall) == {1, 8, 64} and est["generate_dialogues"]["tp_needed"] == p["params"].generate_dialogues.tensor_parallel == 4
    assert wall[1]["generate_dialogues"] == {"stage": "generate_dialogues", "layout": "needs 4 GPUs", "hours": None}
    assert wall[1]["train_classifier"]["hours"] is not None
    g8, g64 = wall[8]["generate_dialogues"], wall[64]["generate_dialogues"]
    assert g8["layout"] == "2 shard(s) x 4-way tensor parallel" and g64["layout"] == "16 shard(s) x 4-way tensor parallel"
    assert g8["hours"] == pytest.approx(est["generate_dialogues"]["gpu_hours"] / (8 * plan.TP_EFFICIENCY), abs=0.01)
    assert g64["hours"] == pytest.approx(est["generate_dialogues"]["gpu_hours"] / (64 * plan.TP_EFFICIENCY), abs=0.01)
    p["params"].generate_dialogues.tensor_parallel = 1  # the device_map fallback: 3-GPU replicas, one GPU busy at a time
    dm = {r["stage"]: r for r in plan.wall_clock(p["params"], p["estimates"], 8)}["generate_dialogues"]
    assert dm["layout"] == "2 shard(s) x 3 GPU(s) (device_map)" and dm["hours"] == pytest.approx(est["generate_dialogues"]["gpu_hours"] / 2, abs=0.01)
    p["params"].generate_dialogues.tensor_parallel = 2  # too few for the base: no hours
    assert "< the 4 the base needs" in {r["stage"]: r for r in plan.wall_clock(p["params"], p["estimates"], 8)}["generate_dialogues"]["layout"]
    r64 = wall[64]["evaluate_reasoning"]  # data-parallel units: 16 processes of a 3-GPU replica, 2 per 8-GPU node
    assert r64["layout"] == "16 process(es) x 3 GPU(s) (device_map)"
    assert r64["hours"] == pytest.approx(est["evaluate_reasoning"]["gpu_hours"] / 16, abs=0.01)
    assert [plan.replicas_on(n, 3) for n in (1, 3, 8, 11, 64)] == [0, 1, 2, 3, 16]
    assert wall[64]["assess_personality"]["hours"] == wall[8]["assess_personality"]["hours"]  # one process either way
    text = plan.format_plan(p)
    assert "Wall-clock hours by GPU count" in text and "64 GPU(s) (8 node(s))" in text and "does not fit" in text
