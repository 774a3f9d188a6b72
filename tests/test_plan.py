"""Profiles plan offline; the plan's estimates on a known config; backends fail clearly when absent."""

from __future__ import annotations

import pytest

from big5chat import plan
from big5chat.generation import backends


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
