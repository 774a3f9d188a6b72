"""The paper's published numbers (facts) as project reference files, and readers for them.

``data/paper/questionnaires.csv``: BFI and IPIP-NEO domain means and SDs per model, method and condition (long
format); ``data/paper/reasoning.csv``: the reasoning table (benchmark x method x condition, value and lm-eval
stderr). Both are derived from the study's own result files (``LP@jiarui_2:evaluation/PsychoBench/stats/``) by
``python -m big5chat build-paper-reference DIR``; ``tests/test_paper_reference.py`` checks cells against them.
``data/paper/findings.csv``: the single numbers the paper states in its text (classifier accuracy, expert vs
prompting accuracy), each with where it is stated; entered by hand from PAPER.md.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pandas as pd

from big5chat import paths
from big5chat.traits import TRAITS

QUESTIONNAIRES = paths.DATA / "paper" / "questionnaires.csv"
REASONING = paths.DATA / "paper" / "reasoning.csv"
FINDINGS = paths.DATA / "paper" / "findings.csv"
DOMAIN_OF = {"Openness": "O", "Conscientiousness": "C", "Extraversion": "E", "Agreeableness": "A", "Neuroticism": "N"}
_MODE = re.compile(r"^(?P<method>direct|crowd|train_dpo|train|prompt_v1|prompt_chat(?:_sampling)?)(?:_(?P<code>[01x]{5}))?$")
METHOD_NAMES = {"direct": "direct", "crowd": "human", "train": "sft", "train_dpo": "dpo", "prompt_v1": "prompt_inst",
                "prompt_chat": "prompt_demo", "prompt_chat_sampling": "prompt_demo"}  # fmt: skip


def decode_mode(mode: str) -> tuple[str, str, str]:
    """The study's mode string to (method, trait, level): 'train_dpo_x0xxx' -> ('dpo', 'conscientiousness', 'high')."""
    m = _MODE.match(mode)
    if not m:
        raise ValueError(f"unknown mode {mode!r}")
    code = m.group("code")
    if not code or code == "xxxxx":
        return METHOD_NAMES[m.group("method")], "", ""
    pos = [i for i, c in enumerate(code) if c != "x"]
    if len(pos) != 1:
        raise ValueError(f"mode {mode!r} sets {len(pos)} traits")
    return METHOD_NAMES[m.group("method")], TRAITS[pos[0]], "high" if code[pos[0]] == "0" else "low"


def questionnaire_rows(files: list[Path]) -> list[dict[str, object]]:
    rows = []
    for f in files:
        for r in csv.DictReader(open(f, encoding="utf-8")):
            method, trait, level = decode_mode(r["mode_mode"])
            for name, dom in DOMAIN_OF.items():
                rows.append({"questionnaire": r["questionnaire"], "model": r["model"], "method": method, "trait": trait, "level": level,
                             "domain": dom, "mean": float(r[f"{name}_mean"]), "sd": float(r[f"{name}_std"]), "runs": int(r["test_count"]),
                             "source": f.name})  # fmt: skip
    return rows


_VALUE = re.compile(r"^\s*([\d.]+)\s*(?:±\s*([\d.]+))?\s*$")


def reasoning_rows(path: Path) -> list[dict[str, object]]:
    rows = []
    for rec in json.loads(path.read_text(encoding="utf-8")):
        for key, value in rec.items():
            if key in ("Benchmark", "Method"):
                continue
            m = _VALUE.match(str(value))
            if not m:
                continue
            if key == "Direct":
                trait, level = "", ""
            elif key.startswith("Average "):
                trait, level = "average", key.split()[1].lower()
            else:
                name, lvl = key.rsplit(" ", 1)
                trait, level = name.lower(), lvl.lower()
            rows.append({"benchmark": rec["Benchmark"], "method": rec["Method"].lower(), "trait": trait, "level": level,
                         "value": float(m.group(1)), "stderr": float(m.group(2)) if m.group(2) else None})  # fmt: skip
    return rows


def build(source_dir: Path) -> tuple[Path, Path]:
    from big5chat.storage import write_text

    files = sorted(source_dir.glob("psychobench_summary*.csv"))
    q = pd.DataFrame(questionnaire_rows(files)).drop_duplicates(["questionnaire", "model", "method", "trait", "level", "domain"])
    buf = io.StringIO()
    q.to_csv(buf, index=False, lineterminator="\n")
    write_text(QUESTIONNAIRES, buf.getvalue())
    r = pd.DataFrame(reasoning_rows(source_dir / "reasoning_benchmark_results.json"))
    buf = io.StringIO()
    r.to_csv(buf, index=False, lineterminator="\n")
    write_text(REASONING, buf.getvalue())
    return QUESTIONNAIRES, REASONING


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
    """``llama3_70b`` -> ``70B``."""
    return model.rsplit("_", 1)[-1].upper()
