"""The assess_personality stage: the answer scored, the model state per method (steer: per condition), the tables it
shows, and run() on the tiny model (log-prob answers, mode agreement, a second wording, the files it writes)."""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from big5chat import config, paths
from big5chat.psychometrics.conditions import conditions
from big5chat.stages import assess_personality as stage

TRAITS = ["openness", "extraversion"]


def test_the_answer_scored() -> None:
    assert stage.answer_column(SimpleNamespace(mode="logprob", logprob_score="argmax")) == "argmax"
    assert stage.answer_column(SimpleNamespace(mode="logprob", logprob_score="expected")) == "raw"
    assert stage.answer_column(SimpleNamespace(mode="generate", logprob_score="argmax")) == "raw"  # a parsed reply has one answer


class FakeModels:
    """``MethodModels`` without a model: records the state each administration ran in."""

    def __init__(self) -> None:
        self.model, self.tok, self.placement, self.active = "model", "tok", {"sft": "system"}, None

    def placement_of(self, method: str) -> str:
        return self.placement.get(method, "user")

    @contextmanager
    def state(self, cond: Any) -> Any:
        self.active = cond.name
        yield self.model
        self.active = None


def test_administer_methods_puts_each_method_in_its_state_and_steer_in_each_conditions(monkeypatch: pytest.MonkeyPatch) -> None:
    models, calls = FakeModels(), []

    def administer(model: Any, tok: Any, conds: list, instruments: dict, **kw: Any) -> pd.DataFrame:
        calls.append((models.active, [c.name for c in conds], kw["placement"], kw["variant"], kw["mode"], kw["runs"]))
        return pd.DataFrame({"condition": [c.name for c in conds]})

    monkeypatch.setattr(stage, "administer", administer)
    conds = conditions(["direct", "sft", "steer"], ["openness"])
    a = SimpleNamespace(methods=["direct", "sft", "steer"], prompt_variants=["study", "plain_item"], item_rendering="study", temperature=0.6,
                        max_new_tokens=4, batch_size=8, seed=1, backend="hf")  # fmt: skip
    out = stage.administer_methods(models, conds, {"BFI": {}}, {}, a, mode="logprob", runs=1, desc="test")
    assert [c[:3] for c in calls] == [
        ("direct:none:none", ["direct:none:none"], "user"),
        ("sft:none:none", ["sft:none:none", "sft:openness:high", "sft:openness:low"], "system"),  # one state for the method
        ("steer:openness:high", ["steer:openness:high"], "user"),  # steer: each condition its own vector
        ("steer:openness:low", ["steer:openness:low"], "user"),
    ]
    assert {c[3:] for c in calls} == {("study", "logprob", 1)} and len(out) == 6
    calls.clear()
    stage.administer_methods(models, conds, {"BFI": {}}, {}, a, mode="generate", runs=2, desc="v", variant="plain_item", methods=["steer"])
    assert [c[0] for c in calls] == ["steer:openness:high", "steer:openness:low"] and calls[0][3:] == ("plain_item", "generate", 2)


def test_shown_tables() -> None:
    scores = pd.DataFrame({"method": ["direct", "direct", "prompt_inst", "prompt_inst"], "questionnaire": ["BFI"] * 4, "item": [1, 7, 1, 2],
                           "parsed": [True, True, False, True]})  # fmt: skip
    assert stage.variant_rows(scores, ["prompt_inst"], {"BFI": [1]}).index.tolist() == [2]
    assert stage.parse_table(scores).to_dict("records") == [{"method": "direct", "answers": 2, "unparsed": 0},
                                                            {"method": "prompt_inst", "answers": 2, "unparsed": 1}]  # fmt: skip
    acq = pd.DataFrame({"method": "sft", "questionnaire": "BFI", "trait": ["openness", "extraversion"], "specific": [0.12345, -0.5]})
    assert stage.specific_gaps(acq).loc["sft", ("BFI", "openness")] == 0.123
    corr = {"instruments": {"BFI": {"frobenius": {"sft": 1.23456, "paper_sft": 2.0}}, "IPIP-NEO": {"frobenius": {"sft": 0.5}}}}
    fro = stage.frobenius_table(corr)
    assert fro.loc["sft"].tolist() == [1.235, 0.5] and np.isnan(fro.loc["paper_sft", "IPIP-NEO"])
    assert {k: len(v) for k, v in stage.ModeAgreement().tables().items()} == {"mode_pairs": 0, "mode_agreement": 0, "mode_domains": 0}


def _project(tiny_models: dict[str, Path], root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny model as the base and a small dialogue dataset (Prompt-Demo's examples)."""
    for name, sub in {"DATA": "data", "MODELS": "data/models", "REPORTS": "reports", "METRICS": "reports/metrics",
                      "FIGURES": "reports/figures"}.items():  # fmt: skip
        monkeypatch.setattr(paths, name, root / sub)
    shutil.copytree(tiny_models["base"], root / "data/models/base")
    rows = [{"original_index": i, "trait": t, "level": lvl, "train_input": f"Day {i}?", "train_output": f"A {lvl} {t} reply {i}."}
            for i in range(3) for t in TRAITS for lvl in ("high", "low")]  # fmt: skip
    (root / "data/generated").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(root / "data/generated/big5chat.csv", index=False)
    return root


def test_run_writes_every_table_figure_and_the_metrics(tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project(tiny_models, tmp_path, monkeypatch)
    params = {"methods": ["direct", "prompt_inst", "prompt_demo"], "questionnaires": ["BFI"], "mode_agreement_items": 1, "variant_items": 5,
              "prompt_variants": ["study", "plain_item"], "variant_methods": ["prompt_inst"], "max_new_tokens": 4, "dtype": "float32",
              "bootstrap": 50, "n_demos": 2}  # fmt: skip
    cfg = config.stage_config(traits=TRAITS, data=None, assess_personality=params, train_sft=None, train_dpo=None, steer=None, runtime={})
    result = stage.run(cfg)

    n_conds = 1 + 2 * 2 * len(TRAITS)  # direct once, the two prompts at 4 conditions each
    assert len(result.scores) == n_conds * 44 and set(result.scores["variant"]) == {"study"}
    assert result.metrics == json.loads((root / "reports/metrics/assess_personality.json").read_text())
    assert result.metrics["mode"] == "logprob" and set(result.metrics["summary"]) == {"prompt_inst", "prompt_demo"}
    assert result.metrics["mode_agreement"]["items"] == {"BFI": 1} and result.metrics["prompt_variants"]["items"] == {"BFI": 5}
    assert "steer" not in result.metrics  # no vectors loaded without steer
    assert list(result.record) == ["administer_s", "items_per_s", "mode_agreement_s", "prompt_variants_s"]
    run_record = json.loads((root / "reports/runs/assess_personality.json").read_text())
    assert run_record["answers"] == len(result.scores)

    written = {p.name for p in (root / "reports/assess_personality").iterdir()}
    assert written == {"scores.csv", "domains.csv", "acquiescence.csv", "correlations.json", "prompt_variants.csv", "mode_pairs.csv",
                       "mode_agreement.csv", "mode_domains.csv"}  # fmt: skip
    assert [p.name for p in result.figures] == ["mode_agreement.png", "prompt_variants.png", "questionnaire_summary.png", "conditions_BFI.png",
                                                 "correlations.png", "acquiescence.png"]  # fmt: skip
    assert all(p.stat().st_size > 5_000 for p in result.figures)
    assert len(result.agreement) == 3 and set(result.variants["variant"]) == {"study", "plain_item"}  # one row per method
    domains = pd.read_csv(root / "reports/assess_personality/domains.csv", keep_default_na=False)
    assert len(domains) == n_conds * 5 and (result.domains["runs"] == 1).all()

    table = result.summary_beside_paper
    assert table["model"].iloc[0].startswith("ours (") and len(table) > len(result.summary) and list(table.columns)[0] == "model"
    assert result.specific_gaps.shape == (2, len(TRAITS)) and "prompt_inst" in result.frobenius.index
