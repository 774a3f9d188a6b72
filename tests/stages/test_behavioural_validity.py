"""The behavioural_validity stage: each method's replies in its model state (steer's vectors per row), the tables it
shows, and run() on the tiny model with a tiny judge (the replies, the tables, the figure and the metrics it writes)."""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from big5chat import config, paths, storage
from big5chat.psychometrics.conditions import Condition, conditions
from big5chat.stages import behavioural_validity as stage
from big5chat.traits import LETTER

TRAITS = ["openness", "extraversion"]
SCENARIOS = [{"original_index": i, "narrative": f"Ann meets Bo on day {i}.", "PersonX": "Ann", "PersonY": "Bo", "dialogue": [f"Hi Bo, day {i}?", "Ok."]}
             for i in range(6)]  # fmt: skip


def test_replies_by_method_run_each_method_in_its_state_and_steer_per_row() -> None:
    states, batches = [], []

    class FakeModels:
        placement = {"sft": "system"}

        @contextmanager
        def state(self, cond: Condition, *, steer_per_row: bool = False) -> Any:
            states.append((cond.method, steer_per_row))
            yield None

        def free_replies(self, chats: list, conds: list, **kw: Any) -> list[str]:
            batches.append(([c.name for c in conds], kw))
            return [f"{c.name} says {chat[-1]['content'][:5]}" for c, chat in zip(conds, chats)]

    conds = conditions(["direct", "sft", "steer"], ["openness"])
    jobs = stage.bv.reply_jobs(conds, SCENARIOS[:2])
    b = SimpleNamespace(max_new_tokens=5, batch_size=3, seed=7)
    replies = stage.replies_by_method(FakeModels(), conds, jobs, {}, b)  # type: ignore[arg-type]
    assert states == [("direct", True), ("sft", True), ("steer", True)]  # one state per method; steer's vectors go per row
    assert [names[:1] for names, _ in batches] == [["direct:none:none"], ["sft:none:none"], ["steer:openness:high"]]
    assert batches[2][1] == {"max_new_tokens": 5, "batch_size": 3, "seed": 7, "progress_desc": "behavioural_validity steer"}
    assert replies == [f"{c} says {p[:5]}" for c, p in zip(jobs["condition"], jobs["prompt"])]


def _result(**tables: pd.DataFrame) -> stage.BehaviouralValidityResult:
    return stage.BehaviouralValidityResult(tables["replies"], tables["accuracy"], tables["separation"], tables["validity"], pd.DataFrame(), [], {}, {},
                                           {})  # fmt: skip


def test_shown_tables() -> None:
    replies = pd.DataFrame({"method": ["sft", "sft", "direct"], "reply": ["first", "second", "plain"]})
    accuracy = pd.DataFrame({"method": ["sft", "sft"], "level": ["high", "all"], "accuracy": [0.5, 0.25], "lo": [0.1, 0.12345], "hi": [0.9, 0.5],
                             "n": [2, 4], "target_score": [0.5, 0.5]})  # fmt: skip
    separation = pd.DataFrame({"method": ["sft"], "diff": [0.2], "lo": [-0.1], "hi": [0.5], "n": [2]})
    validity = pd.DataFrame({"questionnaire": ["BFI", "BFI"], "trait": ["openness"] * 2, "method": ["sft", "all"], "r": [0.5, 0.41234],
                             "lo": [0.0, 0.1], "hi": [0.9, 0.8], "n": [4, 8]})  # fmt: skip
    result = _result(replies=replies, accuracy=accuracy, separation=separation, validity=validity)
    assert result.first_replies.to_dict() == {"sft": "first", "direct": "plain"}
    both = result.accuracy_and_separation
    assert list(both.columns) == ["method", "level", "accuracy", "lo", "hi", "n", "target_score", "diff", "lo_separation", "hi_separation",
                                  "n_separation"] and both.at[1, "lo"] == 0.123  # fmt: skip
    assert result.pooled_validity["r"].tolist() == [0.412]
    assert stage.validity_questionnaire(validity) == "BFI"
    assert stage.validity_questionnaire(pd.concat([validity, validity.assign(questionnaire="IPIP-NEO")])) == "IPIP-NEO"
    stats = stage.text_stats(replies)
    assert list(stats) == ["sft", "direct"] and stats["sft"] != stats["direct"]


def _project(tiny_models: dict[str, Path], root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny base, steering vectors, an untrained tiny judge, 2 scenarios used by the dialogues, 4 held out, and the
    questionnaire's domain scores as assess_personality writes them."""
    import torch

    from big5chat.classifier.model import TraitClassifier, save
    from big5chat.models.loading import load_encoder, load_tokenizer
    from big5chat.steering.vectors import TraitVectors
    from big5chat.traits import TRAITS as ALL

    for name, sub in {"DATA": "data", "MODELS": "data/models", "PROCESSED": "data/processed", "REPORTS": "reports", "METRICS": "reports/metrics",
                      "FIGURES": "reports/figures"}.items():  # fmt: skip
        monkeypatch.setattr(paths, name, root / sub)
    models = root / "data/models"
    shutil.copytree(tiny_models["base"], models / "base")
    torch.manual_seed(0)
    save(TraitClassifier(load_encoder(tiny_models["encoder"]), ALL, "mean"), load_tokenizer(tiny_models["encoder"]), models / "classifier",
         {"max_length": 32})  # fmt: skip
    hidden = json.loads((models / "base" / "config.json").read_text())["hidden_size"]
    directions = {t: torch.nn.functional.normalize(torch.randn(1, hidden), dim=-1) for t in TRAITS}
    TraitVectors([0], directions, torch.ones(1)).save(models / "steering" / "vectors.safetensors")
    rows = [{"original_index": i, "trait": t, "level": lvl, "train_input": f"Day {i}?", "train_output": f"A {lvl} {t} reply {i}."}
            for i in (0, 1) for t in TRAITS for lvl in ("high", "low")]  # fmt: skip
    (root / "data/generated").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(root / "data/generated/big5chat.csv", index=False)
    storage.write_jsonl(root / "data/processed/scenarios.jsonl", SCENARIOS)
    domains = [{"method": c.method, "condition": c.name, "trait": c.trait, "level": c.level, "questionnaire": "BFI", "domain": LETTER[t],
                "mean": 3.0 + (0.5 if c.level == "high" else -0.5) * (t == c.trait) + 0.1 * i, "sd": 0.0, "runs": 1}
               for i, c in enumerate(conditions(["direct", "prompt_inst", "steer"], TRAITS)) for t in ALL]  # fmt: skip
    storage.write_csv(root / "reports/assess_personality/domains.csv", pd.DataFrame(domains))
    return root


def test_run_writes_the_replies_tables_figure_and_metrics(tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project(tiny_models, tmp_path, monkeypatch)
    params = {"methods": ["direct", "prompt_inst", "steer"], "scenarios": 3, "max_new_tokens": 6, "batch_size": 4, "dtype": "float32"}
    cfg = config.stage_config(traits=TRAITS, behavioural_validity=params, assess_personality=None, train_sft=None, train_dpo=None,
                              steer={"multiplier": 2.0}, runtime={})  # fmt: skip
    result = stage.run(cfg)

    n_conds = 1 + 2 * 2 * len(TRAITS)
    assert len(result.replies) == n_conds * 3 and sorted(set(result.replies["scenario"])) == [2, 3, 4]  # the first 3 held out
    assert result.replies["reply"].map(type).eq(str).all() and {f"judge_{t}" for t in TRAITS} <= set(result.replies.columns)
    assert result.metrics == json.loads((root / "reports/metrics/behavioural_validity.json").read_text())
    assert result.metrics["scenarios"] == 3 and result.metrics["multiplier"] == 2.0
    assert set(result.metrics["accuracy"]) == {"prompt_inst", "steer"} and result.metrics["separation"]["steer"]["n"] == 2 * 3
    assert set(result.metrics["validity"]["BFI"]) == {"prompt_inst", "steer", "all"}
    assert list(result.text.index) == ["direct", "prompt_inst", "steer"]
    written = {p.name for p in (root / "reports/behavioural_validity").iterdir()}
    assert written == {"replies.csv", "accuracy.csv", "separation.csv", "validity.csv"}
    assert [p.name for p in result.figures] == ["behaviour.png"] and result.figures[0].stat().st_size > 10_000
    record = json.loads((root / "reports/runs/behavioural_validity.json").read_text())
    assert record["replies"] == len(result.replies) and "generate_s" in record
