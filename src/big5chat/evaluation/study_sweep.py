"""The study's own DExperts alpha sweep (its 70B base + 8B experts), read into (alpha, trait, level, text) rows.

Files ``alpha_{alpha}_trait_{letter}.jsonl``, one JSON record per turn; a turn-1 record's ``personality`` is five codes
in O, C, E, A, N order, ``0`` = high, ``1`` = low, ``-1`` = not induced (e.g. ``"-1 0 -1 -1 -1"``: conscientiousness high).
Once scored by the trait classifier, the replies give accuracy against alpha (``accuracy_by_alpha``, ``accuracy_by_trait_and_alpha``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from big5chat.evaluation.text_metrics import per_trait_accuracy
from big5chat.traits import TRAITS

COLUMNS = ["alpha", "trait", "level", "text", "file"]


def read_study_alpha_sweep(folder: str | Path) -> pd.DataFrame:
    """Every turn-1 reply of the sweep, with its alpha (from the file name) and induced trait and level."""
    rows = []
    for f in sorted(Path(folder).glob("alpha_*_trait_*.jsonl")):
        try:
            alpha = float(f.stem.split("_")[1])
        except ValueError as exc:
            raise ValueError(f"{f}: no alpha in the file name (expected alpha_<number>_trait_<letter>.jsonl)") from exc
        for line_no, line in enumerate(f.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            r = json.loads(line)
            if r.get("turn") != 1:
                continue
            code = str(r.get("personality", "")).split()
            induced = [i for i, c in enumerate(code) if c != "-1"]
            if len(code) != len(TRAITS) or len(induced) != 1 or code[induced[0]] not in ("0", "1"):
                raise ValueError(f"{f}:{line_no}: personality {r.get('personality')!r} is not five codes with one trait at 0 or 1")
            pos = induced[0]
            rows.append({"alpha": alpha, "trait": TRAITS[pos], "level": "high" if code[pos] == "0" else "low", "text": r["response"], "file": f.name})
    return pd.DataFrame(rows, columns=COLUMNS)


def accuracy_by_alpha(sweep: pd.DataFrame) -> pd.DataFrame:
    """Columns alpha and accuracy: the share of a scored sweep's replies (trait, level, score) whose score puts them
    on the side of their induced level, per alpha over all traits."""
    return sweep.groupby("alpha").apply(lambda d: per_trait_accuracy(d)["overall"]).rename("accuracy").reset_index()


def accuracy_by_trait_and_alpha(sweep: pd.DataFrame) -> dict[str, pd.Series]:
    """{trait: accuracy indexed by alpha} of a scored sweep, traits in sorted order."""
    return {t: d.groupby("alpha").apply(lambda x: per_trait_accuracy(x)["overall"]) for t, d in sweep.groupby("trait")}
