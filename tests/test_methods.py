"""The method registry: a method added as one entry (``methods.register``) is accepted by params and runs through
the questionnaire conditions, the reasoning cells and the labels, with no other code touched. And each method's model
(``method_models``): the adapters and vectors loaded once, each condition's model state, steered free replies."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from big5chat import methods, paths
from big5chat.config import ConfigError, load_params
from big5chat.methods import MethodSpec

PERSONA = "You are someone whose {trait} is {level}."


@pytest.fixture
def persona(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A prompting method the study did not have: its own wording, on the base model."""
    monkeypatch.setitem(methods.INSTRUCTIONS, "persona", lambda trait, level: PERSONA.format(trait=trait, level=level))
    methods.register(MethodSpec("prompt_persona", "Prompt-Persona", "base", "persona"))
    yield "prompt_persona"
    methods.unregister("prompt_persona")


def _params_with(tmp_path: Path, method: str) -> Path:
    data = copy.deepcopy(yaml.safe_load(paths.PARAMS_FILE.read_text(encoding="utf-8")))
    for section in ("assess_personality", "behavioural_validity", "evaluate_reasoning"):
        data[section]["methods"].append(method)
    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump(data), encoding="utf-8")
    return f


def test_a_registered_method_runs_everywhere_a_method_does(persona: str, tmp_path: Path) -> None:
    from big5chat.psychometrics.conditions import conditions, messages, prefix
    from big5chat.reasoning.run import cells

    params = load_params(_params_with(tmp_path, persona))
    assert persona in params.assess_personality.methods and persona in params.evaluate_reasoning.methods
    conds = [c for c in conditions(list(params.assess_personality.methods), list(params.traits)) if c.method == persona]
    assert len(conds) == 10 and {c.level for c in conds} == {"high", "low"}
    c = next(c for c in conds if c.trait == "agreeableness" and c.level == "low")
    assert prefix(c) == "You are someone whose agreeableness is low."
    assert "agreeableness is low" in messages(c, "Rate it.", "Is helpful")[0]["content"]
    (cell,) = cells([persona], [("openness", "high")])
    assert cell.system_instruction == "You are someone whose openness is high."
    assert methods.LABELS[persona] == "Prompt-Persona" and methods.spec(persona).model == "base"


def test_params_refuse_a_method_that_is_not_registered(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown method 'prompt_persona'"):
        load_params(_params_with(tmp_path, "prompt_persona"))


def test_a_method_needs_a_known_instruction() -> None:
    with pytest.raises(ValueError, match="unknown instruction 'persona'"):
        methods.register(MethodSpec("prompt_persona", "Prompt-Persona", "base", "persona"))
    assert "prompt_persona" not in methods.METHODS


# ---------------------------------------------------------------- each method's model (method_models)


@pytest.fixture(scope="module")
def method_models_dir(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder as the pipeline leaves it: the tiny base, an SFT adapter (LoRA weights not zero, so that it
    changes the logits) and steering vectors for two traits at layers 0 and 1."""
    import shutil

    import torch
    from peft import LoraConfig, get_peft_model

    from big5chat.models.loading import load_causal_lm
    from big5chat.steering.vectors import TraitVectors

    root = tmp_path_factory.mktemp("method_models")
    shutil.copytree(tiny_models["base"], root / "base")
    base = load_causal_lm(tiny_models["base"])
    hidden = base.config.hidden_size
    get_peft_model(base, LoraConfig(r=2, target_modules="all-linear", init_lora_weights=False)).save_pretrained(str(root / "sft"))
    g = torch.Generator().manual_seed(0)
    directions = {t: torch.nn.functional.normalize(torch.randn(2, hidden, generator=g), dim=-1) for t in ("openness", "extraversion")}
    TraitVectors([0, 1], directions, torch.ones(2)).save(root / "steering" / "vectors.safetensors")
    return root


def _logits(models, cond) -> Any:  # type: ignore[no-untyped-def]
    import torch

    ids = models.tok("Hello there, how are you?", return_tensors="pt")
    with torch.no_grad(), models.state(cond):
        return models.model(**ids).logits


def test_method_models_load_every_adapter_and_the_vectors_once(method_models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from big5chat.config import TrainDpoConfig, TrainSftConfig
    from big5chat.method_models import MethodModels, adapter_dirs, placements
    from big5chat.psychometrics.conditions import Condition

    monkeypatch.setattr(paths, "MODELS", method_models_dir)
    assert adapter_dirs(["direct", "sft", "steer"]) == {"sft": method_models_dir / "sft"}
    cfg = {"train_sft": TrainSftConfig(placement="system"), "train_dpo": TrainDpoConfig()}
    assert placements(cfg) == {"sft": "system", "dpo": TrainDpoConfig().placement}
    models = MethodModels.load(["direct", "sft", "steer"], dtype="float32", multiplier=0.5, placement=placements(cfg))
    assert set(models.model.peft_config) == {"sft"} and models.vectors is not None and models.vectors.layers == [0, 1]
    assert models.placement_of("sft") == "system" and models.placement_of("prompt_inst") == "user"

    direct = _logits(models, Condition("direct"))
    assert not torch.allclose(_logits(models, Condition("sft")), direct)  # the adapter selected
    assert torch.equal(_logits(models, Condition("prompt_inst", "openness", "high")), direct)  # adapters off
    high = Condition("steer", "extraversion", "high")
    assert not torch.allclose(_logits(models, high), direct)  # the trait's vector added
    assert not torch.allclose(_logits(models, high), _logits(models, Condition("steer", "extraversion", "low")))
    ids = models.tok("Hello there, how are you?", return_tensors="pt")
    with torch.no_grad(), models.state(high, steer_per_row=True):  # steer's rows add their own vectors (free_replies)
        assert torch.equal(models.model(**ids).logits, direct)
    assert torch.equal(_logits(models, Condition("direct")), direct)  # every state undone on exit

    plain = MethodModels.load(["direct", "prompt_inst"], dtype="float32", multiplier=0.5, placement={})
    assert not hasattr(plain.model, "peft_config") and plain.vectors is None and plain.adapters == {}
    tokenizer_only = MethodModels.load(["direct", "sft"], dtype="float32", multiplier=0.5, placement={}, backend="vllm")
    assert tokenizer_only.model is None and tokenizer_only.tok.chat_template and tokenizer_only.adapters == {"sft": method_models_dir / "sft"}


def test_free_replies_steer_each_row_and_zero_steering_is_the_plain_model(method_models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from big5chat.method_models import MethodModels
    from big5chat.psychometrics.conditions import Condition

    monkeypatch.setattr(paths, "MODELS", method_models_dir)
    chats = [[{"role": "user", "content": f"Tell me about your day {i}."}] for i in range(3)]
    steer = [Condition("steer", "openness", "high"), Condition("steer", "extraversion", "low"), Condition("steer", "openness", "low")]
    kw = {"max_new_tokens": 6, "batch_size": 2, "seed": 0}
    zero = MethodModels.load(["direct", "steer"], dtype="float32", multiplier=0.0, placement={})
    with zero.state(Condition("direct")):
        plain = zero.free_replies(chats, [Condition("direct")] * 3, **kw)
    with zero.state(steer[0], steer_per_row=True):
        assert zero.free_replies(chats, steer, **kw) == plain
    strong = MethodModels.load(["direct", "steer"], dtype="float32", multiplier=8.0, placement={})
    with strong.state(steer[0], steer_per_row=True):
        steered = strong.free_replies(chats, steer, **kw)
    assert len(steered) == 3 and steered != plain
