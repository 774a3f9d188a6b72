"""The make_figures stage: the pipeline graph, the inputs it reads, run() on a tiny synthetic run (every figure, the
page, the committed results/ folder), and the dvc.yaml/.gitignore settings that keep results/ in git."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from big5chat import paths
from big5chat.config import RuntimeConfig
from big5chat.psychometrics import report as pr
from big5chat.reporting import results
from big5chat.stages import make_figures as stage

TRAITS = ["openness", "neuroticism"]
METHODS = ["prompt_inst", "sft"]
DOT = 'strict digraph  {\n"prepare_data";\n"train_classifier";\n"lonely";\n"prepare_data" -> "train_classifier";\n}\n'


def test_dag_graph_keeps_stages_without_edges() -> None:
    from big5chat.reporting.figures import dag_graph

    nodes, edges = dag_graph(DOT)
    assert nodes == ["lonely", "prepare_data", "train_classifier"] and edges == [("prepare_data", "train_classifier")]


def test_main_questionnaire_prefers_ipip_neo() -> None:
    assert stage.main_questionnaire(pd.DataFrame({"questionnaire": ["BFI", "IPIP-NEO"]})) == "IPIP-NEO"
    assert stage.main_questionnaire(pd.DataFrame({"questionnaire": ["BFI", "BFI"]})) == "BFI"


def _metrics() -> dict[str, dict]:
    return {
        "train_classifier": {"labels": "level", "test": {"mean_accuracy": 0.8, "mean_auc": 0.9, "n_test": 20,
                                                         "traits": {t: {"accuracy": 0.8} for t in TRAITS}}},
        "eval_experts": {"accuracy": {**{t: {"expert": 0.7, "prompting": 0.5, "real_posts": 0.8} for t in TRAITS},
                                      "overall": {"expert": 0.7, "prompting": 0.5, "real_posts": None}}},
        "eval_dialogues": {"alpha": 0.5, "study_alpha_sweep": {"0.25": 0.7, "1.0": 0.6}, "dexperts": {"accuracy": {"overall": 0.55}},
                           "dexperts_on_baseline_scenarios": {"overall": 0.6}, "prompting": {"accuracy": {"overall": 0.5}}},
        "assess_personality": {"model_size": "135M", "summary": {m: {"BFI": {"avg_high": 3.5, "avg_low": 2.5, "gap": 1.0}} for m in METHODS},
                               "mode_agreement": {}, "prompt_variants": {}},
    }  # fmt: skip


def tiny_run(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder holding the outputs make_figures reads, for two traits and two methods on the BFI."""
    for name, sub in {"ROOT": "", "DATA": "data", "MODELS": "data/models", "REPORTS": "reports", "METRICS": "reports/metrics",
                      "FIGURES": "reports/figures"}.items():  # fmt: skip
        monkeypatch.setattr(paths, name, root / sub)
    monkeypatch.setattr(paths, "PARAMS_FILE", root / "params.yaml")
    monkeypatch.setattr(stage, "dag_dot", lambda root: DOT)
    (root / "params.yaml").write_text("profile: smoke\n")
    rep = root / "reports"
    for name, m in {**_metrics(), "train_experts/openness": {"steps": 2}}.items():
        (rep / "metrics" / f"{name}.json").parent.mkdir(parents=True, exist_ok=True)
        (rep / "metrics" / f"{name}.json").write_text(json.dumps(m))
    (root / "data/generated").mkdir(parents=True)
    pd.DataFrame([{"trait": t, "level": lvl, "original_index": 1, "personx": "Ann", "train_input": "Hi Bo, want to come?", "train_output": f"{lvl} reply"}
                  for t in TRAITS for lvl in ("high", "low")]).to_csv(root / "data/generated/big5chat.csv", index=False)  # fmt: skip
    ap = rep / "assess_personality"
    ap.mkdir()
    pd.DataFrame([{"method": m, "condition": f"{m}:{t}:{lvl}", "trait": t, "level": lvl, "questionnaire": "BFI", "domain": d,
                   "mean": 3 + (0.5 if lvl == "high" else -0.5) * (d == t[0].upper()) + 0.1 * "OCEAN".index(d), "sd": 0.1, "runs": 1}
                  for m in METHODS for t in TRAITS for lvl in ("high", "low") for d in "OCEAN"]).to_csv(ap / "domains.csv", index=False)  # fmt: skip
    mat = pd.DataFrame(np.corrcoef(np.random.default_rng(0).normal(size=(5, 20))), index=list("OCEAN"), columns=list("OCEAN"))
    block = {"models": {"sft": mat}, "paper_model": "llama3_70b", "paper": {"sft": mat}, "frobenius": {"sft": 0.5}}
    corr = pr.correlations_json({"human": mat, "human_n": 10, "human_source": "test", "instruments": {"BFI": block}})
    (ap / "correlations.json").write_text(json.dumps(corr))
    pd.DataFrame([{"method": m, "questionnaire": "BFI", "trait": t, "gap": 1.0, "common": 0.2, "specific": 0.8, "specific_lo": 0.5, "specific_hi": 1.1}
                  for m in METHODS for t in TRAITS]).to_csv(ap / "acquiescence.csv", index=False)  # fmt: skip
    bv = rep / "behavioural_validity"
    bv.mkdir()
    pd.DataFrame([{"method": m, "level": lvl, "accuracy": 0.6, "lo": 0.4, "hi": 0.8, "n": 10}
                  for m in METHODS for lvl in ("high", "low", "all")]).to_csv(bv / "accuracy.csv", index=False)  # fmt: skip
    pd.DataFrame([{"method": m, "diff": 0.2, "lo": -0.1, "hi": 0.5, "n": 10} for m in METHODS]).to_csv(bv / "separation.csv", index=False)
    pd.DataFrame([{"questionnaire": "BFI", "method": m, "trait": t, "r": 0.3, "lo": -0.2, "hi": 0.7, "n": 4}
                  for m in [*METHODS, "all"] for t in TRAITS]).to_csv(bv / "validity.csv", index=False)  # fmt: skip
    (rep / "evaluate_reasoning").mkdir()
    pd.DataFrame([{"benchmark": "piqa", "method": "sft", "Direct": 50.0, "O+": 60.0, "O-": 40.0, "Avg+": 60.0, "Avg-": 40.0}]).to_csv(
        rep / "evaluate_reasoning/table.csv", index=False
    )
    (rep / "plots/train_sft").mkdir(parents=True)
    (rep / "plots/train_sft/loss.csv").write_text("step,loss\n1,2.0\n2,1.5\n")
    return root


def test_read_inputs_reads_the_optional_tables_only_where_the_metrics_say(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tiny_run(tmp_path, monkeypatch)
    inputs = stage.read_inputs()
    assert inputs.mode_agreement is None and inputs.prompt_variants is None  # their CSVs do not even exist
    assert set(inputs.metrics) == {"train_classifier", "eval_experts", "eval_dialogues", "assess_personality"}  # top level only
    assert inputs.dot == DOT and list(inputs.behaviour) == ["accuracy", "separation", "validity"]
    m = json.loads((project / "reports/metrics/assess_personality.json").read_text())
    m["prompt_variants"] = {"variants": {"study": {}}}
    (project / "reports/metrics/assess_personality.json").write_text(json.dumps(m))
    pd.DataFrame({"variant": ["study"]}).to_csv(project / "reports/assess_personality/prompt_variants.csv", index=False)
    assert list(stage.read_inputs().prompt_variants["variant"]) == ["study"]


def test_run_draws_every_figure_writes_the_page_and_fills_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tiny_run(tmp_path, monkeypatch)
    (project / "results/figures/paper").mkdir(parents=True)
    (project / "results/figures/paper/99_gone.png").write_bytes(b"stale")
    (project / "results/README.md").write_text("by hand\n")
    result = stage.run({"traits": TRAITS, "runtime": RuntimeConfig()})
    # the notebook's order: the page lists the figures in it, the reasoning table last
    assert [p.name for p in result.pngs] == ["01_pipeline.png", "02_dataset_examples.png", "03_classifier_and_experts.png", "04_alpha_sweep.png",
                                             "05_questionnaire_summary.png", "06_conditions_BFI.png", "07_correlations.png", "09_acquiescence.png",
                                             "10_behaviour.png", "08_reasoning_table.png"]  # fmt: skip
    assert list(result.figures) == ["study", "questionnaires", "behaviour", "reasoning"]
    for f in (p for group in result.figures.values() for p in group):
        assert f.parent == project / "reports/figures/paper" and f.stat().st_size > 2000, f
    page = (project / "reports/README.md").read_text()
    assert page == result.page and "![07_correlations](figures/paper/07_correlations.png)" in page and "demonstrates the pipeline" in page
    assert set(result.metrics) == {"train_classifier", "eval_experts", "eval_dialogues", "assess_personality"}
    # results/: byte-for-byte copies at the same relative paths; what is gone is gone; the README by hand stays
    res = project / "results"
    copied = sorted(p.relative_to(res).as_posix() for p in result.collected)
    assert copied == sorted([*(f"figures/paper/{p.name}" for p in result.pngs), "metrics/assess_personality.json", "metrics/eval_dialogues.json",
                             "metrics/eval_experts.json", "metrics/train_classifier.json", "metrics/train_experts/openness.json",
                             "plots/train_sft/loss.csv", "report.md"])  # fmt: skip
    for rel in copied:
        original = project / "reports" / ("README.md" if rel == "report.md" else rel)
        assert (res / rel).read_bytes() == original.read_bytes(), rel
    assert not (res / "figures/paper/99_gone.png").exists() and (res / "README.md").read_text() == "by hand\n"
    assert sorted(results.read_metrics(res)) == ["assess_personality", "eval_dialogues", "eval_experts", "train_classifier", "train_experts/openness"]
    assert not list(res.glob("*.partial")) and not list(res.glob(".*.partial"))


def _make_figures_stage() -> dict:
    return yaml.safe_load(paths.DVC_FILE.read_text())["stages"]["make_figures"]


def _entries(items: list) -> dict[str, dict]:
    return {next(iter(e)) if isinstance(e, dict) else e: (next(iter(e.values())) if isinstance(e, dict) else {}) for e in items}


def test_dvc_yaml_keeps_results_in_git_and_only_there() -> None:
    """results/ is make_figures' uncached output (metrics, plots, page), at the layout reporting.results writes; every
    other stage keeps its outputs cached (a cache: false output would switch its run cache off)."""
    body = _make_figures_stage()
    outs, metrics, plots = _entries(body["outs"]), _entries(body["metrics"]), _entries(body["plots"])
    assert metrics == {f"results/{results.METRICS}": {"cache": False}} and plots == {f"results/{results.FIGURES}": {"cache": False}}
    assert {k: v for k, v in outs.items() if k.startswith("results/")} == {f"results/{results.PAGE}": {"cache": False},
                                                                          f"results/{results.PLOTS}": {"cache": False}}  # fmt: skip
    assert "reports/metrics" in body["deps"] and "reports/plots" in body["deps"]
    data = yaml.safe_load(paths.DVC_FILE.read_text())
    for name, other in data["stages"].items():
        other = other.get("do", other)
        for kind in ("outs", "metrics", "plots"):
            if name != "make_figures":
                assert all(v.get("cache", True) for v in _entries(other.get(kind, [])).values()), f"{name}: an uncached {kind[:-1]}"
    loss = next(p["training_loss"] for p in data["plots"] if isinstance(p, dict) and "training_loss" in p)
    assert all(f.startswith(f"results/{results.PLOTS}/") for f in loss["y"]), "the top-level loss chart reads the committed copies"


def test_git_does_not_ignore_results() -> None:
    if shutil.which("git") is None or not (paths.ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of the project")
    kept = ["results/README.md", "results/report.md", "results/metrics/train_experts/openness.json", "results/figures/paper/01_pipeline.png",
            "results/plots/train_sft/loss.csv"]  # fmt: skip
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *kept], cwd=paths.ROOT, capture_output=True, text=True).stdout.split()
    assert ignored == [], f"git ignores {ignored}: a fresh clone would not have them"
    for sub in (paths.ROOT / "results").rglob(".gitignore"):
        pytest.fail(f"{sub}: DVC writes .gitignore files for cached outputs only; results/ must stay uncached")
