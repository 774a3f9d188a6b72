"""The reasoning table (the study's layout) as a figure, ours beside the paper's."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from big5chat.methods import REFERENCE
from big5chat.reasoning.domains import reasoning_table

PAPER_NAMES = {"social_iqa": "SocialIQA", "commonsense_qa": "CommonsenseQA", "piqa": "PIQA", "gsm8k": "GSM8K", "mathqa": "MathQA",
               "truthfulqa_mc": "TruthfulQA", "mmlu": "MMLU", "gpqa": "GPQA (0-shot)"}  # fmt: skip


def paper_table() -> pd.DataFrame:
    """The paper's LLaMA-3-70B reasoning table, in the same layout as ours (task names, methods as ours)."""
    from big5chat import paper
    from big5chat.reporting import paper_build

    p = paper.reasoning()
    p = p[p["benchmark"].isin(PAPER_NAMES.values()) & (p["trait"] != "average")]
    p = p.replace({"benchmark": {v: k for k, v in PAPER_NAMES.items()}, "method": paper_build.METHOD_NAMES})
    p = p.assign(method=np.where(p["trait"] == "", REFERENCE, p["method"]))
    p = p.rename(columns={"benchmark": "task", "value": "score"}).drop_duplicates(["method", "trait", "level", "task"])
    return reasoning_table(p)


def table_figure(ours: pd.DataFrame, paper: pd.DataFrame) -> Any:
    import matplotlib.pyplot as plt

    from big5chat.reporting.figures import theme

    theme()
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.33 * max(len(ours), len(paper)) + 2.2))
    for ax, (title, tab) in zip(axes, [("ours", ours), ("paper (LLaMA-3-70B)", paper)]):
        tab = tab.sort_values(["benchmark", "method"])
        cols = [c for c in tab.columns if c not in ("benchmark", "method")]
        values = tab[cols].to_numpy(float)
        ax.imshow(values, cmap="viridis", vmin=0, vmax=100, aspect="auto")
        for i, row in enumerate(values):
            for j, v in enumerate(row):
                if not np.isnan(v):
                    ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=6, color="w" if v < 60 else "k")
        ax.set_xticks(range(len(cols)), cols, fontsize=7)
        ax.set_yticks(range(len(tab)), [f"{b} / {m}" for b, m in zip(tab["benchmark"], tab["method"])], fontsize=7)
        ax.grid(False)
        ax.set_title(title)
    fig.tight_layout()
    return fig
