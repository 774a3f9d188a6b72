"""The eval_experts figure: the expert generators' level accuracy beside the prompting baseline's and the real posts'."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from big5chat.experts.evaluation import PREFIX_LEANS


def expert_vs_prompting(table: pd.DataFrame, by_lean: dict[str, dict[str, Any]], paper: dict[str, float]) -> Any:
    """Left: per trait, the share of completions at the target level (expert, prompting baseline, real held-out
    posts) with the paper's expert and prompting accuracy as lines. Right: both methods on each side of
    ``PREFIX_LEANS`` with 95% intervals.

    ``table``: ``accuracy_table`` merged with the real posts' accuracy (its ``overall`` row is left out);
    ``by_lean``: ``by_prefix_lean``; ``paper``: ``big5chat.paper.findings()``.
    """
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [2.2, 1]})
    rows = table[table["trait"] != "overall"]
    xs = np.arange(len(rows))
    ax.bar(xs - 0.27, rows["expert"], 0.27, label="expert (ours)", color="tab:blue")
    ax.bar(xs, rows["prompting"], 0.27, label="prompting baseline (ours)", color="tab:gray")
    ax.bar(xs + 0.27, rows["real_posts"], 0.27, label="real held-out posts", color="tab:green")
    ax.axhline(paper["expert_accuracy"], color="tab:blue", ls="--", lw=1, label=f"paper expert {paper['expert_accuracy']:.1%}")
    ax.axhline(paper["prompting_accuracy"], color="0.3", ls="--", lw=1, label=f"paper prompting {paper['prompting_accuracy']:.1%}")
    ax.axhline(0.5, color="0.6", ls=":", lw=1)
    ax.set_xticks(xs, rows["trait"])
    ax.set_ylim(0, 1)
    ax.set_ylabel("target level predicted")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.1))
    ax.set_title("Expert generators vs prompting, judged by the trait classifier")
    leans = list(by_lean)
    for k, (m, colour) in enumerate((("expert", "tab:blue"), ("prompting", "tab:gray"))):
        acc = np.array([by_lean[lean][m]["accuracy"] or np.nan for lean in leans], float)
        ci = np.array([by_lean[lean][m]["ci95"] for lean in leans], float)
        ax2.bar(np.arange(len(leans)) + (k - 0.5) * 0.35, acc, 0.35, color=colour, label=m,
                yerr=[acc - ci[:, 0], ci[:, 1] - acc], capsize=3, error_kw={"lw": 1})  # fmt: skip
    ax2.axhline(0.5, color="0.6", ls=":", lw=1)
    ax2.axhline(paper["expert_accuracy"], color="tab:blue", ls="--", lw=1)  # the paper measured the target-level side
    ax2.axhline(paper["prompting_accuracy"], color="0.3", ls="--", lw=1)
    ax2.set_xticks(range(len(leans)), [PREFIX_LEANS[lean].replace(" of the", "\nof the") for lean in leans], fontsize=8)
    ax2.set_ylim(0, 1)
    ax2.legend(fontsize=7, loc="upper right")
    ax2.set_title(f"By the prefix's own level (95% intervals, n = {by_lean[leans[0]]['n']} each)", fontsize=9)
    fig.tight_layout()
    return fig
