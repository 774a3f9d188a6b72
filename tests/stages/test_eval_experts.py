"""The eval_experts stage: scoring the completions, the real posts' accuracy, the metrics and the significance table,
each (trait, level) completed by its own adapter on a tiny model, and run() with a stand-in model and classifier."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from big5chat import paths, storage
from big5chat.config import EvalExpertsConfig, RuntimeConfig
from big5chat.experts.evaluation import PREFIX_LEANS, completion_jobs
from big5chat.stages import eval_experts as stage

TRAITS = ["openness", "neuroticism"]


class FakeScorer:
    """A classifier that scores a text by its words: ``up`` pushes every trait high, ``down`` low."""

    def __init__(self, folder: Any = None) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> pd.DataFrame:
        self.calls.append(list(texts))
        score = [0.9 if "up" in t.split() else 0.1 if "down" in t.split() else 0.5 for t in texts]
        return pd.DataFrame({t: score for t in TRAITS})


def _jobs() -> pd.DataFrame:
    jobs = completion_jobs({"openness": {"a b": "high", "c d": "low"}, "neuroticism": {"e f": "high", "g h": "low"}}, TRAITS)
    jobs["prompting"] = ["x", "x", "x", "x", "up", "up", "up", "up"]  # identical at both levels everywhere
    jobs["expert"] = ["up", "up", "down", "down", "up", " ", "down", "down"]
    return jobs


def test_each_completion_is_scored_as_prefix_and_completion_for_its_trait() -> None:
    jobs, scorer = _jobs(), FakeScorer()
    stage.add_scores(jobs, scorer)
    assert scorer.calls[0][:2] == ["a b up", "c d up"] and scorer.calls[1][0] == "a b x"  # expert first, then prompting
    assert jobs["expert_score"].tolist() == [0.9, 0.9, 0.1, 0.1, 0.9, 0.5, 0.1, 0.1]
    assert list(jobs.columns)[-2:] == ["expert_score", "prompting_score"]


def test_real_posts_are_judged_on_their_own_labels() -> None:
    test = pd.DataFrame({"openness_level": ["high", "low", "", "high"], "neuroticism_level": ["low", "low", "high", ""]})
    scores = pd.DataFrame({"openness": [0.9, 0.6, 0.1, 0.2], "neuroticism": [0.2, 0.7, 0.9, 0.5]})
    got = stage.real_post_accuracy(test, scores, TRAITS)
    assert got.to_dict("records") == [
        {"trait": "openness", "real_posts": 1 / 3, "n_real": 3},
        {"trait": "neuroticism", "real_posts": 2 / 3, "n_real": 3},
    ]


def test_identical_completions_at_both_levels_are_counted() -> None:
    assert stage.identical_high_low(_jobs()) == {"expert": 0, "prompting": 4}


def test_metrics_and_the_significance_table() -> None:
    from big5chat.evaluation.paired_tests import compare_methods
    from big5chat.evaluation.text_metrics import level_hits
    from big5chat.experts.evaluation import accuracy_table, by_prefix_lean, paired_separation

    jobs = _jobs()
    stage.add_scores(jobs, FakeScorer())
    table = accuracy_table(jobs, ["expert", "prompting"]).merge(pd.DataFrame([{"trait": "openness", "real_posts": 0.8, "n_real": 5}]), how="left")
    separation = paired_separation(jobs, ["expert", "prompting"])
    hits = {m: level_hits(jobs[f"{m}_score"], jobs["level"]) for m in ("expert", "prompting")}
    significance, by_lean = compare_methods("expert", hits["expert"], "prompting", hits["prompting"]), by_prefix_lean(jobs, hits)
    paper = {"expert_accuracy": 0.804, "prompting_accuracy": 0.592}
    m = stage.experts_metrics(jobs, table, separation, significance, by_lean, paper, {"openness": {"a b": "high"}}, {"openness": "single"})
    assert list(m) == ["accuracy", "separation", "significance", "by_prefix_lean", "paper", "n_prefixes", "design", "identical_high_low",
                       "n_completions", "empty_completions"]  # fmt: skip
    assert m["accuracy"]["openness"] == {"expert": 1.0, "prompting": 0.5, "real_posts": 0.8}
    assert m["accuracy"]["neuroticism"]["real_posts"] is None and m["accuracy"]["overall"]["expert"] == 0.875
    assert m["separation"]["openness"] == {"expert_diff": 0.8, "expert_paired": 1.0, "prompting_diff": 0.0, "prompting_paired": 0.5}
    assert m["paper"] == {"expert": 0.804, "prompting": 0.592} and m["n_completions"] == 8
    assert m["empty_completions"] == {"expert": 1, "prompting": 0} and m["identical_high_low"] == {"expert": 0, "prompting": 4}
    sig = stage.significance_table(significance, by_lean)
    assert list(sig.index) == ["all prefixes", *PREFIX_LEANS.values()] and sig.loc["all prefixes", "n"] == 8


def _lora(base: Path, out: Path, seed: int) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base), LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    model.save_pretrained(out)


@pytest.fixture
def models(tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny model as the experts' base; openness with an expert per level, neuroticism with one expert."""
    monkeypatch.setattr(paths, "MODELS", tmp_path / "models")
    shutil.copytree(tiny_models["base"], tmp_path / "models" / stage.BASE)
    experts = tmp_path / "models" / "experts"
    _lora(tiny_models["base"], experts / "openness" / "high", 1)
    _lora(tiny_models["base"], experts / "openness" / "low", 2)
    _lora(tiny_models["base"], experts / "neuroticism", 3)
    return tmp_path / "models"


def test_each_trait_and_level_is_completed_by_its_own_expert(models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = stage.generate_chat

    def recording(model: Any, tok: Any, convs: list, **kw: Any) -> list[str]:
        calls.append((kw["progress_desc"], model.active_adapter, len(convs), [c[0]["content"] for c in convs]))
        return real(model, tok, convs, **kw)

    monkeypatch.setattr(stage, "generate_chat", recording)
    jobs = completion_jobs({"openness": ["I went to the", "We had a"], "neuroticism": ["They said that"]}, TRAITS)
    record: dict[str, Any] = {}
    designs = stage.complete(jobs, TRAITS, EvalExpertsConfig(max_new_tokens=3, batch_size=4, dtype="float32"), record)
    assert designs == {"openness": "per_level", "neuroticism": "single"} and set(record) == {"baseline_s", "experts_s"}
    assert [(c[0], c[1], c[2]) for c in calls] == [("prompting", "openness_high", 6), ("expert openness high", "openness_high", 2),
                                                   ("expert openness low", "openness_low", 2), ("expert neuroticism high", "neuroticism", 1),
                                                   ("expert neuroticism low", "neuroticism", 1)]  # fmt: skip
    openness_low = jobs[(jobs["trait"] == "openness") & (jobs["level"] == "low")]
    assert calls[2][3] == [c[0]["content"] for c in openness_low["conversation"]]
    assert list(jobs.columns)[-2:] == ["prompting", "expert"] and jobs["expert"].map(lambda s: isinstance(s, str)).all()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """12 test posts labelled for both traits, whose last word ("up" or "down") the stand-in classifier reads (not
    in their 5-word prefixes), and a stand-in model whose expert says "up" at high and "down" at low."""
    for name, sub in {"MODELS": "data/models", "PROCESSED": "data/processed", "REPORTS": "reports", "METRICS": "reports/metrics",
                      "FIGURES": "reports/figures"}.items():  # fmt: skip
        monkeypatch.setattr(paths, name, tmp_path / sub)
    posts = [{"message_id": f"{i:02d}", "message": f"post {i} goes on and on {'up' if i % 2 else 'down'}", "split": "test" if i < 12 else "train",
              "openness_level": ["low", "high"][i % 2], "neuroticism_level": ["high", "low", ""][i % 3]} for i in range(16)]  # fmt: skip
    storage.write_csv(tmp_path / "data/processed/posts.csv", pd.DataFrame(posts))

    def fake_complete(jobs: pd.DataFrame, trait_list: list[str], ev: Any, record: dict[str, Any]) -> dict[str, str]:
        jobs["prompting"] = "more"  # ignores the level
        jobs["expert"] = np.where(jobs["level"] == "high", "up", "down")
        record["experts_s"] = 0.0
        return {t: "per_level" for t in trait_list}

    monkeypatch.setattr(stage, "complete", fake_complete)
    monkeypatch.setattr(stage, "TraitScorer", FakeScorer)
    return tmp_path


def test_run_writes_the_completions_the_figure_the_metrics_and_the_run_record(project: Path) -> None:
    cfg = {"traits": TRAITS, "eval_experts": EvalExpertsConfig(n_prefixes=4), "runtime": RuntimeConfig(threads=1)}
    result = stage.run(cfg)
    assert result.metrics["n_prefixes"] == {"openness": 4, "neuroticism": 4} and len(result.jobs) == 16
    assert result.metrics["accuracy"]["overall"] == {"expert": 1.0, "prompting": 0.5, "real_posts": None}
    assert result.metrics["accuracy"]["openness"]["real_posts"] == 1.0  # the posts say "up" exactly when labelled high
    assert result.metrics["significance"]["expert_only"] == 8 and result.metrics["design"] == {t: "per_level" for t in TRAITS}
    csv = pd.read_csv(project / "reports/eval_experts/completions.csv", keep_default_na=False)
    assert list(csv.columns) == ["trait", "level", "prefix", "prefix_level", "prompting", "expert", "expert_score", "prompting_score"]
    assert csv.equals(result.completions.reset_index(drop=True).astype(csv.dtypes.to_dict()))
    metrics_file = project / "reports/metrics/eval_experts.json"
    assert storage.write_json(project / "metrics.json", result.metrics).read_bytes() == metrics_file.read_bytes()
    assert result.figures == [project / "reports/figures/eval_experts/expert_vs_prompting.png"] and result.figures[0].stat().st_size > 0
    assert set(result.outputs) == {"completions", "figure", "metrics", "run_record"} and "scoring_s" in result.outputs["run_record"].read_text()
    assert list(result.table["trait"]) == [*TRAITS, "overall"] and list(result.significance.index)[0] == "all prefixes"
    again = stage.run(cfg)  # seeded: the same prefixes, so the same completions file
    assert again.completions.equals(result.completions)


def test_the_figure_draws_both_panels() -> None:
    from big5chat.reporting.expert_figures import expert_vs_prompting

    table = pd.DataFrame({"trait": ["openness", "overall"], "expert": [0.8, 0.8], "prompting": [0.6, 0.6], "real_posts": [0.7, np.nan]})
    side = {"expert": {"accuracy": 0.8, "ci95": [0.7, 0.9]}, "prompting": {"accuracy": None, "ci95": [None, None]}, "n": 10}
    fig = expert_vs_prompting(table, {"target_level": side, "other_level": side}, {"expert_accuracy": 0.804, "prompting_accuracy": 0.592})
    left, right = fig.axes
    assert [t.get_text() for t in left.get_xticklabels()] == ["openness"] and len(left.patches) == 3  # the overall row is left out
    assert right.get_title().endswith("n = 10 each)") and len(right.patches) == 4
    import matplotlib.pyplot as plt

    plt.close(fig)
