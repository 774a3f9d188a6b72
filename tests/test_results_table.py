"""The front page's results table: computed from results/ (never typed), written between README.md's markers, and
README's copy equal to what the committed results/ give."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from big5chat import cli, paths
from big5chat.reporting import results, results_table

METRICS = {
    "prepare_models": {"base": {"name": "tiny-llama"}},
    "train_classifier": {"test": {"mean_accuracy": 0.864}, "heldout": {"mean_accuracy": 0.884}},
    "eval_experts": {"accuracy": {"overall": {"expert": 0.74, "prompting": 0.485}},
                     "significance": {"expert": {"ci95": [0.68, 0.8]}, "prompting": {"ci95": [0.42, 0.55]}, "n": 200, "mcnemar_p": 0.0}},
    "eval_dialogues": {"dexperts_on_baseline_scenarios": {"overall": 0.525}, "prompting": {"accuracy": {"overall": 0.475}, "degenerate_rate": 0.0},
                       "steer": {"accuracy": {"overall": 0.7}, "degenerate_rate": 0.45},
                       "significance": {"dexperts_vs_prompting": {"dexperts": {"ci95": [0.38, 0.67]}, "prompting": {"ci95": [0.33, 0.62]},
                                                                  "n": 40, "mcnemar_p": 0.7266},
                                        "steer_vs_prompting": {"n": 40, "mcnemar_p": 0.0117}}},
    "assess_personality": {"summary": {"prompt_inst": {"BFI": {"gap": -0.015}}, "sft": {"BFI": {"gap": 0.6}}, "dpo": {"BFI": {"gap": 0.7}}},
                           "frobenius": {"BFI": {"prompt_inst": 2.2, "sft": 1.6, "paper_sft": 1.75, "paper_prompt_inst": 1.54}}},
    "behavioural_validity": {"accuracy": {"prompt_inst": {"all": {"accuracy": 0.35}}, "steer": {"all": {"accuracy": 0.8}}}},
    "evaluate_reasoning": {"items": {"piqa": 60}, "domains": {"sft:conscientiousness:high": {"Math": 0.5}, "sft:conscientiousness:low": {"Math": 0.25}}},
    "train_experts/openness": {"steps": 2},
}  # fmt: skip


def _results(root: Path) -> Path:
    for name, m in METRICS.items():
        f = root / results.METRICS / f"{name}.json"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(m))
    return root


def test_the_table_is_computed_from_the_metrics(tmp_path: Path) -> None:
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in results_table.render(_results(tmp_path)).split("\n") if line.startswith("| ")}
    assert rows["Trait judge: mean accuracy over traits (test / out-of-topic posts)"].endswith("| 86.4% / 88.4% | 93.8% (test posts) |  |")
    assert "| 74.0% vs 48.5% (McNemar p < 0.0001, 200 items) | 80.4% vs 59.2% | reproduced |" in rows[
        "Expert generators vs prompting: completions judged at the target level"]  # fmt: skip
    assert rows["DExperts vs prompting: replies judged at the target level"].endswith(
        "| 52.5% vs 47.5% (McNemar p = 0.727, 40 items) |  | no effect at this scale |"
    )
    assert rows["Activation steering vs prompting: replies judged at the target level"].endswith(
        "| 70.0% vs 47.5% (McNemar p = 0.0117, 40 items) |  | goal (70% at fluent replies) not met: replies not fluent |")  # fmt: skip
    # the paper's 70B gaps come from data/paper/ (BFI, LLaMA-3-70B: SFT's targeted score +3.70 apart, Prompt-Inst's +3.40)
    assert rows["BFI: high-minus-low gap of the induced trait (1-5 scale)"].endswith(
        "| Prompt-Inst -0.01, SFT +0.60, DPO +0.70 | 70B: Prompt-Inst +3.40, SFT +3.70, DPO +3.62 | reproduced |")  # fmt: skip
    assert rows["BFI: Frobenius distance of the intra-trait correlations to humans'"].endswith(
        "| Prompt-Inst 2.20, SFT 1.60 | Prompt-Inst 1.54, SFT 1.75 | reproduced |"
    )
    assert rows["Questionnaire-taking model's free replies judged at the target level"].endswith("| Prompt-Inst 35%, Steer 80% |  |  |")
    assert rows["Higher conscientiousness, better reasoning (mean domain accuracy)"].endswith("| C+ 0.500 vs C- 0.250 |  | reproduced |")
    assert "(base model tiny-llama)" in results_table.render(tmp_path)


def test_a_run_without_some_stages_gives_the_rows_it_has(tmp_path: Path) -> None:
    (tmp_path / results.METRICS).mkdir()
    (tmp_path / results.METRICS / "train_classifier.json").write_text(json.dumps({"test": {"mean_accuracy": 0.5}}))
    body = [line for line in results_table.render(tmp_path).split("\n") if line.startswith("| ")]
    assert len(body) == 2 and body[1].startswith("| Trait judge: mean accuracy over traits (test posts) | 50.0% |")
    with pytest.raises(FileNotFoundError, match="no metrics"):
        results_table.render(tmp_path / "nothing")


def test_the_readme_section_is_replaced_between_the_markers() -> None:
    readme = f"# Title\n\nintro\n{results_table.START}\nold table\nold line\n{results_table.END}\n\n## Layout\n"
    new = results_table.with_table(readme, "| a |\n|---|")
    assert new == f"# Title\n\nintro\n{results_table.START}\n| a |\n|---|\n{results_table.END}\n\n## Layout\n"
    assert results_table.section(new) == "| a |\n|---|" and results_table.with_table(new, "| a |\n|---|") == new
    for broken in ("# no markers\n", f"{results_table.END}\n{results_table.START}\n", f"{results_table.START}\n"):
        with pytest.raises(results_table.MarkersMissing, match="no results section"):
            results_table.with_table(broken, "| a |")


def test_the_command_writes_the_readme_or_says_why_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    assert cli.main(["results-table"]) == 1 and "no metrics" in capsys.readouterr().err
    _results(tmp_path / "results")
    (tmp_path / "README.md").write_text("# Title\n\nno section here\n")
    assert cli.main(["results-table", "--write-readme"]) == 1
    assert "README.md: no results section" in capsys.readouterr().err and (tmp_path / "README.md").read_text() == "# Title\n\nno section here\n"
    assert cli.main(["results-table"]) == 0 and capsys.readouterr().out.startswith("| result | this run | paper | verdict |")
    (tmp_path / "README.md").write_text(f"# Title\n{results_table.START}\n{results_table.END}\nrest\n")
    assert cli.main(["results-table", "--write-readme"]) == 0 and "rewritten" in capsys.readouterr().out
    text = (tmp_path / "README.md").read_text()
    assert text.endswith(f"{results_table.END}\nrest\n") and results_table.section(text) == results_table.render(tmp_path / "results")
    assert cli.main(["results-table", "--write-readme"]) == 0 and "already up to date" in capsys.readouterr().out


def test_the_readme_shows_the_committed_results() -> None:
    """README.md's results table is the one the committed results/ give: a new run committed without
    `python -m big5chat results-table --write-readme` fails here."""
    folder = results.folder()
    if not any((folder / results.METRICS).glob("*.json")):
        pytest.skip(f"{paths.relative(folder)}/{results.METRICS} holds no metrics yet: the make_figures stage writes them (dvc repro)")
    readme = (paths.ROOT / "README.md").read_text(encoding="utf-8")
    assert results_table.section(readme) == results_table.render(folder), "run `python -m big5chat results-table --write-readme`"
