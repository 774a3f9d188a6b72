"""The eval_dialogues stage: scores per row, the baseline's scenarios, the reference sample, the summary, the metrics
and the figure, and run() with a stand-in classifier (without a baseline; with the tiny model's baseline and steer)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from big5chat import paths
from big5chat.config import EvalDialoguesConfig, GenerateDialoguesConfig, RuntimeConfig, SteerConfig
from big5chat.evaluation.study_sweep import accuracy_by_alpha, accuracy_by_trait_and_alpha
from big5chat.evaluation.text_metrics import target_scores
from big5chat.reporting.dialogue_figures import accuracy_figure
from big5chat.stages import eval_dialogues as stage

TRAITS = ["openness", "neuroticism"]
ALL_TRAITS = ["openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"]


class FakeScorer:
    """The classifier's stand-in: a text scores 0.9 on every trait when it holds "yes", else 0.1."""

    def __init__(self, folder: Path | str = "", batch_size: int = 64):
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> pd.DataFrame:
        self.calls.append(list(texts))
        return pd.DataFrame([[0.9 if "yes" in str(t) else 0.1] * 5 for t in texts], columns=ALL_TRAITS)


def _dataset(n_scenarios: int = 3) -> pd.DataFrame:
    """Replies that hit their level for openness, and miss it for neuroticism."""
    rows = [{"original_index": 30 + i, "trait": t, "level": lvl, "train_input": f"Hello on day {i}!",
             "train_output": f"{'yes' if (lvl == 'high') == (t == 'openness') else 'no'} reply {i} {lvl} {t}"}
            for t in TRAITS for i in range(n_scenarios) for lvl in ("high", "low")]  # fmt: skip
    return pd.DataFrame(rows)


def test_target_scores_take_each_rows_own_trait() -> None:
    scorer = lambda texts: pd.DataFrame({"openness": [0.1, 0.2], "neuroticism": [0.8, 0.9]})  # noqa: E731
    frame = pd.DataFrame({"trait": ["neuroticism", "openness"], "text": ["a", "b"]}, index=[5, 7])
    assert target_scores(scorer, frame, "text").to_dict() == {5: 0.8, 7: 0.2}


def test_baseline_rows_are_the_first_scenarios_every_arm() -> None:
    data = _dataset(4)
    rows = stage.baseline_rows(data, 2)
    assert list(rows.index) == list(range(8)) and sorted(set(rows["original_index"])) == [30, 31]
    assert rows.equals(data[data["original_index"] < 32].reset_index(drop=True))
    rows.loc[0, "train_output"] = "changed"
    assert data.loc[0, "train_output"] != "changed"  # a copy


def test_reference_sample_normalises_spellings_and_draws_per_arm() -> None:
    ref = pd.DataFrame([{"trait": t, "level": lvl, "big5_chat": f"{t} {lvl} {k}"} for k in range(4)
                        for t, lvl in [("Openness", "High"), ("openness", "low"), ("Extraversion", "high"), ("Neuroticism", "Low")]])  # fmt: skip
    sample = stage.reference_sample(ref, TRAITS, 2, seed=0)
    assert sample.groupby(["trait", "level"]).size().to_dict() == {("neuroticism", "low"): 2, ("openness", "high"): 2, ("openness", "low"): 2}
    assert list(sample.index) == list(range(6)) and ref["trait"].iloc[0] == "Openness"  # the input is left alone
    assert sample.equals(stage.reference_sample(ref, TRAITS, 2, seed=0))


def _scored(frame: pd.DataFrame, col: str, out: str) -> pd.DataFrame:
    return frame.assign(**{out: target_scores(FakeScorer(), frame, col)})


def test_summary_metrics_and_significance_of_the_paired_methods() -> None:
    data = _scored(_dataset(), "train_output", "score")
    baseline = stage.baseline_rows(data, 2)
    baseline["baseline_output"] = ["yes"] * len(baseline)  # prompting always reads "high"
    baseline = _scored(baseline, "baseline_output", "baseline_score")
    reference = {"accuracy": {"openness": 1.0, "overall": 1.0}, "text": {"n": 1}, "source": "ref.csv", "sha256": "x"}
    summary = stage.summary_table(data, baseline, reference, 0.3)
    assert list(summary["method"]) == ["dexperts (all)", "dexperts (baseline scenarios)", "prompting baseline", "released BIG5-CHAT (reference)"]
    assert summary.set_index("method").loc["prompting baseline", "overall"] == 0.5 and summary["openness"].iloc[0] == 1.0
    assert summary["neuroticism"].iloc[0] == 0.0 and summary["n"].tolist()[:3] == [12, 8, 8]

    metrics = stage.eval_metrics(0.5, data, baseline, reference, pd.DataFrame({"alpha": [0.5, 2.0], "accuracy": [0.61234, 0.7]}), 0.3)
    assert list(metrics) == ["alpha", "dexperts", "paired_scenarios", "dexperts_on_baseline_scenarios", "prompting", "significance", "reference",
                             "study_alpha_sweep"]  # fmt: skip
    assert metrics["paired_scenarios"] == 2 and metrics["study_alpha_sweep"] == {"0.5": 0.6123, "2.0": 0.7}
    test = metrics["significance"]["dexperts_vs_prompting"]
    assert list(metrics["significance"]) == ["dexperts_vs_prompting"] and test["n"] == 8
    assert test["dexperts_only"] == 2 and test["prompting_only"] == 2  # openness low / neuroticism high
    assert test["dexperts"]["accuracy"] == 0.5 and test["prompting"]["accuracy"] == 0.5

    baseline["steer_output"] = ["yes" if lvl == "high" else "no" for lvl in baseline["level"]]
    baseline = _scored(baseline, "steer_output", "steer_score")
    metrics = stage.eval_metrics(0.5, data, baseline, None, None, 0.3)
    assert list(metrics) == ["alpha", "dexperts", "paired_scenarios", "dexperts_on_baseline_scenarios", "prompting", "significance", "steer"]
    assert metrics["steer"]["multiplier"] == 0.3 and metrics["steer"]["accuracy"]["overall"] == 1.0
    assert list(metrics["significance"]) == ["dexperts_vs_prompting", "steer_vs_prompting"]
    assert stage.summary_table(data, baseline, None, 0.3)["method"].iloc[-1] == "steer (x0.3, no description)"
    assert list(stage.eval_metrics(0.5, data, pd.DataFrame(), None, None, 0.3)) == ["alpha", "dexperts"]


def test_the_studys_sweep_accuracy_and_the_figure() -> None:
    sweep = pd.DataFrame({"alpha": [0.5, 0.5, 2.0, 2.0, 2.0, 0.5], "trait": ["openness", "neuroticism"] * 3,
                          "level": ["high", "high", "low", "low", "high", "low"], "score": [0.9, 0.1, 0.1, 0.1, 0.9, 0.9]})  # fmt: skip
    table = accuracy_by_alpha(sweep)
    assert table.to_dict("list") == {"alpha": [0.5, 2.0], "accuracy": [round(1 / 3, 4), 1.0]}
    by_trait = accuracy_by_trait_and_alpha(sweep)
    assert list(by_trait) == ["neuroticism", "openness"] and by_trait["neuroticism"].to_dict() == {0.5: 0.0, 2.0: 1.0}
    summary = pd.DataFrame({"method": ["a", "b"], "openness": [0.7, 0.5], "neuroticism": [0.4, 0.5], "overall": [0.55, 0.5]})
    fig = accuracy_figure(summary, TRAITS, 0.5, by_trait, table)
    left, right = fig.axes
    assert len(left.patches) == 6 and [t.get_text() for t in left.get_xticklabels()] == ["openness", "neuroticism", "overall"]
    assert [line.get_label() for line in right.get_lines()] == ["neuroticism", "openness", "all"] and right.get_xscale() == "log"
    fig = accuracy_figure(summary, TRAITS, 0.5, {}, None)
    assert not fig.axes[1].axison and fig.axes[1].texts[0].get_text() == "the study's alpha sweep is not at hand"


def _project(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, sub in {"DATA": "data", "MODELS": "data/models", "PROCESSED": "data/processed", "REPORTS": "reports", "METRICS": "reports/metrics",
                      "FIGURES": "reports/figures"}.items():  # fmt: skip
        monkeypatch.setattr(paths, name, root / sub)
    monkeypatch.setattr(stage, "TraitScorer", FakeScorer)
    (root / "data/generated").mkdir(parents=True)
    _dataset().to_csv(root / "data/generated/big5chat.csv", index=False)


def _cfg(**ev: object) -> dict:
    return {"traits": TRAITS, "generate_dialogues": GenerateDialoguesConfig(dtype="float32", max_new_tokens=4), "eval_dialogues": EvalDialoguesConfig(**ev),  # type: ignore[arg-type]
            "steer": SteerConfig(layers=[1], multiplier=0.5), "runtime": RuntimeConfig()}  # fmt: skip


def test_run_without_baseline_reference_or_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _project(tmp_path, monkeypatch)
    result = stage.run(_cfg(baseline_scenarios=0, reference_csv=str(tmp_path / "missing.csv"), study_alpha_sweep_dir=None))
    out = capsys.readouterr().out
    assert "12 replies from 3 scenarios" in out and "no reference CSV at" in out
    assert result.metrics == json.loads((tmp_path / "reports/metrics/eval_dialogues.json").read_text())
    assert list(result.metrics) == ["alpha", "dexperts"]
    assert result.metrics["dexperts"]["accuracy"] == {"openness": 1.0, "neuroticism": 0.0, "overall": 0.5}
    assert pd.read_csv(tmp_path / "reports/eval_dialogues/baseline.csv").columns.tolist() == ["original_index", "trait", "level"]
    assert result.baseline.empty and result.reference is None and result.sweep.empty and result.sweep_table.empty
    assert result.figures == [tmp_path / "reports/figures/eval_dialogues/accuracy.png"] and result.figures[0].read_bytes()[:4] == b"\x89PNG"
    assert list(result.summary["method"]) == ["dexperts (all)"]
    assert json.loads((tmp_path / "reports/runs/eval_dialogues.json").read_text())["stage"] == "eval_dialogues"


def test_run_with_the_tiny_models_baseline_steer_reference_and_sweep(
    tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from big5chat.models.loading import load_causal_lm
    from big5chat.steering.vectors import TraitVectors

    _project(tmp_path, monkeypatch)
    shutil.copytree(tiny_models["base"], tmp_path / "data/models/base")
    hidden = load_causal_lm(tiny_models["base"]).config.hidden_size
    TraitVectors([1], {t: torch.nn.functional.normalize(torch.ones(1, hidden), dim=-1) for t in TRAITS}, torch.tensor([2.0])).save(
        tmp_path / "data/models/steering/vectors.safetensors"
    )
    scenarios = [{"original_index": 30 + i, "narrative": f"Ann helps Bo on day {i}.", "PersonX": "Ann", "PersonY": "Bo"} for i in range(3)]
    (tmp_path / "data/processed").mkdir(parents=True)
    (tmp_path / "data/processed/scenarios.jsonl").write_text("".join(json.dumps(s) + "\n" for s in scenarios))
    ref = tmp_path / "ref.csv"
    pd.DataFrame([{"trait": "Openness", "level": "high", "big5_chat": f"yes {k}"} for k in range(5)]).to_csv(ref, index=False)
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep/alpha_1_trait_o.jsonl").write_text(json.dumps({"turn": 1, "personality": "0 -1 -1 -1 -1", "response": "yes"}) + "\n")

    sweep = str(tmp_path / "sweep")
    result = stage.run(_cfg(baseline_scenarios=2, batch_size=3, reference_csv=str(ref), reference_per_arm=2, study_alpha_sweep_dir=sweep))
    baseline = pd.read_csv(tmp_path / "reports/eval_dialogues/baseline.csv", keep_default_na=False)
    assert len(baseline) == 8 and sorted(set(baseline["original_index"])) == [30, 31]
    assert baseline.columns.tolist()[-5:] == ["score", "baseline_output", "baseline_score", "steer_output", "steer_score"]
    assert list(result.metrics) == ["alpha", "dexperts", "paired_scenarios", "dexperts_on_baseline_scenarios", "prompting", "significance", "steer",
                                    "reference", "study_alpha_sweep"]  # fmt: skip
    assert result.metrics["prompting"]["n"] == 8 and result.metrics["steer"]["n"] == 8 and result.metrics["study_alpha_sweep"] == {"1.0": 1.0}
    assert result.reference == result.metrics["reference"] and result.reference["accuracy"] == {"openness": 1.0, "overall": 1.0}
    assert result.reference["text"]["n"] == 2 and "reference" not in result.shown_metrics
    assert list(result.summary["method"])[-1] == "released BIG5-CHAT (reference)" and len(result.summary) == 5
    record = json.loads((tmp_path / "reports/runs/eval_dialogues.json").read_text())
    assert {"baseline_s", "steer_s"} <= set(record)
