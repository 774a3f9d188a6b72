"""The prepare_models stage: the metrics from the cards, the experts' base as an alias or its own model, greedy
replies, and run() with the tiny models (materialize itself is tested in tests/test_models.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from big5chat import paths
from big5chat.config import ModelsConfig, ModelSpec, RuntimeConfig
from big5chat.models.loading import ModelLoadError, load_chat_model, resolve_alias
from big5chat.stages import prepare_models as stage

TINY_LM, TINY_ENCODER = ModelSpec("tiny", "tiny-llama"), ModelSpec("tiny", "tiny-bert")


def test_models_metrics_keep_four_fields_and_the_reload_check() -> None:
    card = {"kind": "tiny", "name": "x", "parameters": 10, "dtype": "float32", "source": "s", "pad_token": "<pad>"}
    metrics = stage.models_metrics({"base": card | {"reload_max_abs_logit_diff": 0.0}, "encoder": card, "expert_base": card | {"same_as": "base"}})
    assert list(metrics) == ["base", "encoder", "expert_base"]
    assert metrics["base"] == {"kind": "tiny", "name": "x", "parameters": 10, "dtype": "float32", "reload_max_abs_logit_diff": 0.0}
    assert metrics["encoder"] == metrics["expert_base"] == {"kind": "tiny", "name": "x", "parameters": 10, "dtype": "float32"}
    assert stage.models_metrics({"base": card})["base"]["reload_max_abs_logit_diff"] is None  # not an embedded GGUF


@pytest.fixture
def copies_tiny(tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """``materialize`` copies the session's tiny models (materialized once, by models.materialize) instead of
    building each again."""

    def materialize(spec: ModelSpec, out_dir: Path, role: str) -> dict:
        shutil.copytree(tiny_models["base" if spec.name == "tiny-llama" else "encoder"], out_dir)
        return json.loads((out_dir / "card.json").read_text()) | {"role": role}

    monkeypatch.setattr(stage, "materialize", materialize)


def test_the_experts_base_is_its_own_model_when_named(tmp_path: Path, copies_tiny: None) -> None:
    cards = stage.materialize_all(ModelsConfig(base=TINY_LM, encoder=TINY_ENCODER, expert_base=TINY_LM), tmp_path)
    assert "same_as" not in cards["expert_base"] and cards["expert_base"]["role"] == "expert_base"
    assert resolve_alias(tmp_path / "expert_base") == tmp_path / "expert_base" and (tmp_path / "expert_base" / "model.safetensors").is_file()
    with pytest.raises(ModelLoadError, match="models.expert_base: the tokenizers differ"):  # DExperts needs one vocabulary
        stage.materialize_all(ModelsConfig(base=TINY_LM, encoder=TINY_ENCODER, expert_base=TINY_ENCODER), tmp_path / "other")


def test_greedy_replies_are_deterministic(tiny_models: dict[str, Path]) -> None:
    model, tok = load_chat_model(tiny_models["base"])
    a = stage.greedy_replies(model, tok, ["Hello?", "Name a colour."], max_new_tokens=5)
    assert a == stage.greedy_replies(model, tok, ["Hello?", "Name a colour."], max_new_tokens=5) and len(a) == 2
    assert all(isinstance(r, str) and r == r.strip() for r in a)


def test_run_writes_the_models_their_cards_and_the_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, copies_tiny: None) -> None:
    for name, sub in {"MODELS": "data/models", "REPORTS": "reports", "METRICS": "reports/metrics"}.items():
        monkeypatch.setattr(paths, name, tmp_path / sub)
    result = stage.run({"models": ModelsConfig(base=TINY_LM, encoder=TINY_ENCODER, expert_base=None), "runtime": RuntimeConfig()})
    models = tmp_path / "data/models"
    assert sorted(p.name for p in models.iterdir()) == ["base", "encoder", "expert_base"]
    assert json.loads((models / "expert_base/card.json").read_text()) == {"role": "expert_base", "same_as": "base"}
    assert resolve_alias(models / "expert_base") == models / "base" and result.cards["expert_base"]["same_as"] == "base"
    assert result.card_table.shape == (3, 8) and result.card_table.loc["encoder", "architecture"] == "BertModel"
    assert result.replies["prompt"].tolist() == stage.CHAT_PROMPTS and result.replies["reply"].map(type).eq(str).all()
    assert result.metrics == json.loads((tmp_path / "reports/metrics/prepare_models.json").read_text())
    assert result.metrics["encoder"] == {"kind": "tiny", "name": "tiny-bert", "parameters": result.cards["encoder"]["parameters"], "dtype": "float32"}
    record = json.loads((tmp_path / "reports/runs/prepare_models.json").read_text())
    assert {"materialize_s", "chat_check_s"} <= set(record) and result.env["torch_threads"] >= 1
