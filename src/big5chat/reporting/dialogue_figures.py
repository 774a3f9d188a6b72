"""eval_dialogues' figure: how often the trait classifier finds each method's replies at their target level, and the
study's own alpha sweep scored the same way. Drawn from tables only (``stages.eval_dialogues`` computes them)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def accuracy_figure(summary: pd.DataFrame, traits: list[str], alpha: float, sweep_by_trait: dict[str, pd.Series],
                    sweep_overall: pd.DataFrame | None) -> Any:  # fmt: skip
    """Left: per method (a ``summary`` row: ``method``, one accuracy column per trait and ``overall``) grouped bars
    of the share of replies judged at their target level, chance (0.5) dotted. Right: the study's alpha sweep,
    accuracy against alpha per trait (``sweep_by_trait``) and over all traits (``sweep_overall``: alpha, accuracy),
    or a note when the sweep is not at hand (``sweep_overall`` None or empty)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    ax = axes[0]
    plot_rows = summary.set_index("method")
    cols = list(traits) + ["overall"]
    width = 0.8 / max(len(plot_rows), 1)
    for k, (name, r) in enumerate(plot_rows.iterrows()):
        ax.bar(np.arange(len(cols)) + k * width - 0.4 + width / 2, [r[c] for c in cols], width, label=name)
    ax.axhline(0.5, color="0.6", ls=":", lw=1)
    ax.set_xticks(np.arange(len(cols)), cols, rotation=20, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("target level predicted")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)  # below the bars, not over them
    ax.set_title(f"Replies judged by the classifier (alpha = {alpha})")
    ax = axes[1]
    if sweep_overall is not None and len(sweep_overall):
        for t, acc in sweep_by_trait.items():
            ax.plot(acc.index, acc.values, marker="o", ms=3, label=t)
        ax.plot(sweep_overall["alpha"], sweep_overall["accuracy"], color="k", lw=2, label="all")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("alpha (the study's 70B + 8B experts)")
        ax.set_ylabel("target level predicted")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
        ax.set_title("The study's alpha sweep, scored by our classifier")
    else:
        ax.text(0.5, 0.5, "the study's alpha sweep is not at hand", ha="center", va="center")
        ax.set_axis_off()
    fig.tight_layout()
    return fig
