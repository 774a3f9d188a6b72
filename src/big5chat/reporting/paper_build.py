"""Building the paper's reference files from the study's own result files (``python -m big5chat
build-paper-reference DIR``): its method codes decoded, its questionnaire summaries and reasoning table read.

Kept apart from ``big5chat.paper`` (the readers every stage uses), because it reads the method registry: a new
method must not make the stages that only read the paper's numbers stale.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pandas as pd

from big5chat import paper
from big5chat.methods import METHODS
from big5chat.traits import TRAITS

# The study's method codes in its result files: each method's ``paper_codes`` (big5chat.methods), and the human norms.
METHOD_NAMES = {"crowd": "human", **{code: m for m, s in METHODS.items() for code in s.paper_codes}}
_MODE = re.compile(rf"^(?P<method>{'|'.join(sorted(map(re.escape, METHOD_NAMES), key=len, reverse=True))})(?:_(?P<code>[01x]{{5}}))?$")


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
            for name, dom in paper.DOMAIN_OF.items():
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
    write_text(paper.QUESTIONNAIRES, buf.getvalue())
    r = pd.DataFrame(reasoning_rows(source_dir / "reasoning_benchmark_results.json"))
    buf = io.StringIO()
    r.to_csv(buf, index=False, lineterminator="\n")
    write_text(paper.REASONING, buf.getvalue())
    return paper.QUESTIONNAIRES, paper.REASONING
