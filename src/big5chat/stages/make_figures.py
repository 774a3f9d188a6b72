"""The make_figures stage: every figure of the study, the report page, and the committed ``results/`` folder.

The figures are drawn only from this run's metrics and result tables (and the paper's own numbers in
``data/paper/``), in one theme, as PNG and PDF under ``reports/figures/paper/`` (``reporting.figures``,
``reporting.questionnaire_figures``, ``reasoning.figures``). ``reports/README.md`` is the page that shows them with the
run's settings, wall times and the paper's findings checked one by one (``reporting.page``). Last, the metrics, the
PNGs, the loss curves and the page are copied into ``results/``, which git keeps (``reporting.results``).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from big5chat import paths, storage
from big5chat import runtime as rt
from big5chat.psychometrics import report as pr
from big5chat.reasoning import figures as rf
from big5chat.reporting import figures as fg
from big5chat.reporting import page, results
from big5chat.reporting import questionnaire_figures as qf

FIGURE_DIR = ("figures", "paper")  # below paths.REPORTS
PAGE = "README.md"  # below paths.REPORTS
MAIN_QUESTIONNAIRE = "IPIP-NEO"  # the behaviour figure's self-report side, when the run has it


@dataclass(frozen=True)
class FigureInputs:
    """What the figures are drawn from: the run's metrics, result tables and pipeline graph."""

    metrics: dict[str, dict[str, Any]]  # reports/metrics/*.json by stem
    dot: str  # `dvc dag --dot`
    dialogues: pd.DataFrame  # data/generated/big5chat.csv
    domains: pd.DataFrame  # assess_personality: domain scores per condition
    correlations: dict[str, Any]  # assess_personality: correlations.json
    acquiescence: pd.DataFrame
    behaviour: dict[str, pd.DataFrame]  # behavioural_validity: accuracy, separation, validity
    mode_agreement: tuple[pd.DataFrame, pd.DataFrame] | None  # agreement and mode_domains, when the run compared modes
    prompt_variants: pd.DataFrame | None  # when the run varied the questionnaire turn's wording
    reasoning: pd.DataFrame  # evaluate_reasoning: table.csv


@dataclass(frozen=True)
class MakeFiguresResult:
    figures: dict[str, list[Path]]  # PNG and PDF files by group (study, questionnaires, behaviour, reasoning), as drawn
    page: str  # reports/README.md
    metrics: dict[str, dict[str, Any]]  # every stage's metrics by stem, as the figures and the page read them
    collected: list[Path]  # the files written into results/
    outputs: dict[str, Path]

    @property
    def pngs(self) -> list[Path]:
        """The PNGs in the order drawn (the page's order)."""
        return pngs(self.figures)


def pngs(figures: dict[str, list[Path]]) -> list[Path]:
    """The PNGs among the figure files by group, in the order drawn."""
    return [p for group in figures.values() for p in group if p.suffix == ".png"]


def read_metrics(folder: Path) -> dict[str, dict[str, Any]]:
    """Every ``<stage>.json`` directly in ``folder`` by stem (the per-item metrics below it are not read)."""
    return {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}


def dag_dot(root: Path) -> str:
    """`dvc dag --dot` of the project at ``root``."""
    return subprocess.run(["dvc", "dag", "--dot"], capture_output=True, text=True, check=True, cwd=root).stdout


def main_questionnaire(validity: pd.DataFrame) -> str:
    """``MAIN_QUESTIONNAIRE`` when the behaviour table has it, else its first questionnaire."""
    return MAIN_QUESTIONNAIRE if MAIN_QUESTIONNAIRE in set(validity["questionnaire"]) else validity["questionnaire"].iloc[0]


def read_inputs() -> FigureInputs:
    """The figures' inputs from the stages' outputs (``paths``); the optional tables only where the metrics say they
    were made."""
    metrics = read_metrics(paths.METRICS)
    ap, bv = paths.REPORTS / "assess_personality", paths.REPORTS / "behavioural_validity"
    assess = metrics["assess_personality"]
    modes = (pd.read_csv(ap / "mode_agreement.csv"), pd.read_csv(ap / "mode_domains.csv")) if assess.get("mode_agreement") else None
    return FigureInputs(
        metrics=metrics,
        dot=dag_dot(paths.ROOT),
        dialogues=pd.read_csv(paths.DATA / "generated" / "big5chat.csv", keep_default_na=False),
        domains=pd.read_csv(ap / "domains.csv", keep_default_na=False),
        correlations=json.loads((ap / "correlations.json").read_text()),
        acquiescence=pd.read_csv(ap / "acquiescence.csv", keep_default_na=False),
        behaviour={name: pd.read_csv(bv / f"{name}.csv") for name in ("accuracy", "separation", "validity")},
        mode_agreement=modes,
        prompt_variants=pd.read_csv(ap / "prompt_variants.csv") if assess.get("prompt_variants") else None,
        reasoning=pd.read_csv(paths.REPORTS / "evaluate_reasoning" / "table.csv"),
    )


def draw(inputs: FigureInputs, traits: list[str], out: Path) -> dict[str, list[Path]]:
    """Draw and save (PNG and PDF under ``out``) every figure, in a fixed order (each figure sets its theme, which the
    next one inherits in part); the files by group."""
    m = inputs.metrics
    figures: dict[str, list[Path]] = {"study": [], "questionnaires": [], "behaviour": [], "reasoning": []}

    def save(group: str, fig: Any, name: str) -> None:
        figures[group] += fg.save_both(fig, out / name)

    save("study", fg.pipeline(*fg.dag_graph(inputs.dot)), "01_pipeline")
    save("study", fg.dataset_examples(inputs.dialogues, traits), "02_dataset_examples")
    save("study", fg.classifier_and_experts(m["train_classifier"], m["eval_experts"]), "03_classifier_and_experts")
    save("study", fg.alpha_sweep(m["eval_dialogues"]), "04_alpha_sweep")
    ours = f"ours ({m['assess_personality'].get('model_size', 'this run')})"
    save("questionnaires", qf.plot_summary(fg.summary_frames(m["assess_personality"]), pr.paper_summary(), ours), "05_questionnaire_summary")
    for q in sorted(inputs.domains["questionnaire"].unique()):
        save("questionnaires", qf.plot_conditions(inputs.domains, q, traits), f"06_conditions_{q}")
    save("questionnaires", qf.plot_correlations(fg.correlation_frames(inputs.correlations)), "07_correlations")
    save("questionnaires", qf.plot_acquiescence(inputs.acquiescence), "09_acquiescence")
    b = inputs.behaviour
    save("behaviour", fg.plot_behaviour(b["accuracy"], b["separation"], b["validity"], main_questionnaire(b["validity"])), "10_behaviour")
    if inputs.mode_agreement is not None:
        save("behaviour", fg.plot_mode_agreement(*inputs.mode_agreement), "11_mode_agreement")
    if inputs.prompt_variants is not None:
        save("behaviour", fg.plot_prompt_variants(inputs.prompt_variants), "12_prompt_variants")
    save("reasoning", rf.table_figure(inputs.reasoning, rf.paper_table()), "08_reasoning_table")
    return figures


def run(cfg: dict[str, Any]) -> MakeFiguresResult:
    """The stage: ``cfg`` holds the ``traits`` and ``runtime`` sections (``config.stage_config``). The page reads
    params.yaml whole (the settings and seeds of every stage)."""
    rt.setup(cfg["runtime"].threads)
    inputs = read_inputs()
    out = paths.REPORTS.joinpath(*FIGURE_DIR)
    figures = draw(inputs, list(cfg["traits"]), out)
    drawn = pngs(figures)
    text = page.build(drawn, yaml.safe_load(paths.PARAMS_FILE.read_text()))
    page_file = storage.write_text(paths.REPORTS / PAGE, text)
    collected = results.collect(paths.REPORTS, results.folder(), drawn)
    print(f"{len(drawn)} figures in {paths.relative(out)}, the page {paths.relative(page_file)}; "
          f"{len(collected)} files copied into {paths.relative(results.folder())}/")  # fmt: skip
    return MakeFiguresResult(figures, text, inputs.metrics, collected, {"figures": out, "page": page_file, "results": results.folder()})
