"""The method registry: a method added as one entry (``methods.register``) is accepted by params and runs through
the questionnaire conditions, the reasoning cells and the labels, with no other code touched."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

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
