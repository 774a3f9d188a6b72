"""The paper's published numbers (facts) as project reference files, and readers for them.

Below both the science (``psychometrics`` compares its matrices with the paper's) and ``reporting`` (the figures and
the page put this run beside the paper), so that neither imports the other for them.

``data/paper/questionnaires.csv``: BFI and IPIP-NEO domain means and SDs per model, method and condition (long
format); ``data/paper/reasoning.csv``: the reasoning table (benchmark x method x condition, value and lm-eval
stderr). Both are derived from the study's own result files (``LP@jiarui_2:evaluation/PsychoBench/stats/``) by
``python -m big5chat build-paper-reference DIR`` (``reporting.paper_build``); ``tests/test_figures.py`` checks cells
against them.
``data/paper/findings.csv``: the single numbers the paper states in its text (classifier accuracy, expert vs
prompting accuracy), each with where it is stated; entered by hand from docs/paper.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from big5chat import paths

QUESTIONNAIRES = paths.DATA / "paper" / "questionnaires.csv"
REASONING = paths.DATA / "paper" / "reasoning.csv"
FINDINGS = paths.DATA / "paper" / "findings.csv"
DOMAIN_OF = {"Openness": "O", "Conscientiousness": "C", "Extraversion": "E", "Agreeableness": "A", "Neuroticism": "N"}


def questionnaires() -> pd.DataFrame:
    return pd.read_csv(QUESTIONNAIRES, keep_default_na=False)


def reasoning() -> pd.DataFrame:
    return pd.read_csv(REASONING, keep_default_na=False)


def findings(path: Path = FINDINGS) -> dict[str, float]:
    """The paper's stated numbers by key (``classifier_accuracy``, ``expert_accuracy``, ``prompting_accuracy``)."""
    frame = pd.read_csv(path)
    missing = {"key", "value"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    return {str(k): float(v) for k, v in zip(frame["key"], frame["value"])}


_LLAMA3 = re.compile(r"llama-?3(?:\.\d+)?-(\d+)b", re.IGNORECASE)


def paper_model_for(base_name: str) -> str | None:
    """The paper's model code (``llama3_8b``, ``llama3_70b``) of the same size as a base model named
    ``base_name`` (e.g. ``meta-llama/Meta-Llama-3-8B-Instruct``, a GPTQ copy of the 70B), or None (e.g. SmolLM2)."""
    m = _LLAMA3.search(base_name)
    return f"llama3_{m.group(1)}b" if m else None


def model_size_label(model: str) -> str:
    """``llama3_70b`` -> ``70B``; '' for no model."""
    return model.rsplit("_", 1)[-1].upper() if model else ""
