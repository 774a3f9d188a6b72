"""The questionnaire study's figures (``psychometrics.report`` computes the tables they draw): each method's targeted
scores beside the paper's, the domain scores per condition, the intra-trait correlation matrices, and the gaps
split into acquiescence and the trait-specific rest."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from big5chat.methods import LABELS as METHOD_LABEL
from big5chat.methods import METHODS
from big5chat.psychometrics.scoring import DOMAINS


def _theme() -> None:
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", font_scale=0.9)


def plot_summary(summary: pd.DataFrame, paper: pd.DataFrame, ours: str = "ours") -> Any:
    """Per questionnaire: each method's mean targeted score at high and at low, ours beside the paper's (70B, 8B);
    ``ours`` labels this run's bars (e.g. "ours (135M)", from the base model's card)."""
    import matplotlib.pyplot as plt

    _theme()
    qs = list(summary["questionnaire"].unique())
    fig, axes = plt.subplots(1, len(qs), figsize=(6.2 * len(qs), 3.6), squeeze=False)
    methods = [m for m in METHOD_LABEL if m in set(summary["method"]) and METHODS[m].conditioned]
    sources = [(ours, summary, "tab:blue"), ("paper 70B", paper[paper["model"] == "llama3_70b"], "tab:orange"),
               ("paper 8B", paper[paper["model"] == "llama3_8b"], "tab:green")]  # fmt: skip
    for ax, q in zip(axes[0], qs):
        xs = np.arange(len(methods))
        w = 0.8 / len(sources)
        for k, (label, tab, color) in enumerate(sources):
            t = tab[tab["questionnaire"] == q].set_index("method")
            hi = [t["avg_high"].get(m, np.nan) for m in methods]
            lo = [t["avg_low"].get(m, np.nan) for m in methods]
            x = xs - 0.4 + w * (k + 0.5)
            ax.bar(x, hi, w * 0.9, color=color, alpha=0.9, label=f"{label}: high")
            ax.bar(x, lo, w * 0.9, color=color, alpha=0.35, hatch="//", label=f"{label}: low")
        ax.axhline(3, color="0.5", lw=0.8, ls=":")
        ax.set_xticks(xs, [METHOD_LABEL[m] for m in methods])
        ax.set_ylim(1, 5)
        ax.set_ylabel("targeted domain score (item scale)")
        ax.set_title(f"{q}: induced trait at high (solid) vs low (hatched)")
    axes[0][-1].legend(fontsize=6, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    fig.tight_layout()
    return fig


def plot_conditions(domains: pd.DataFrame, questionnaire: str, traits: list[str]) -> Any:
    """Rows: methods; columns: induced traits; each panel the five domain scores at high and at low."""
    import matplotlib.pyplot as plt

    _theme()
    d = domains[(domains["questionnaire"] == questionnaire) & (domains["trait"] != "")]
    methods = [m for m in METHOD_LABEL if m in set(d["method"])]
    fig, axes = plt.subplots(len(methods), len(traits), figsize=(2.4 * len(traits), 1.9 * len(methods)), squeeze=False, sharey=True)
    xs = np.arange(len(DOMAINS))
    for i, m in enumerate(methods):
        for j, t in enumerate(traits):
            ax = axes[i][j]
            for k, (lvl, color) in enumerate((("high", "tab:red"), ("low", "tab:blue"))):
                g = d[(d["method"] == m) & (d["trait"] == t) & (d["level"] == lvl)].set_index("domain").reindex(list(DOMAINS))
                ax.bar(xs + (k - 0.5) * 0.38, g["mean"], 0.38, color=color, label=lvl)
            ax.set_xticks(xs, list(DOMAINS))
            ax.set_ylim(1, 5)
            if i == 0:
                ax.set_title(f"{t} induced", fontsize=8)
            if j == 0:
                ax.set_ylabel(METHOD_LABEL[m], fontsize=8)
    axes[0][-1].legend(fontsize=6)
    fig.suptitle(f"{questionnaire}: domain scores per condition", y=1.0)
    fig.tight_layout()
    return fig


def _correlation_panel(ax: Any, title: str, mat: pd.DataFrame) -> None:
    m = mat.reindex(index=list(DOMAINS), columns=list(DOMAINS)).to_numpy(float)
    shown = np.ma.array(m, mask=np.triu(np.ones((5, 5), bool), k=1) | np.isnan(m))
    ax.imshow(shown, cmap="RdBu_r", vmin=-1, vmax=1)
    for i in range(5):
        for j in range(i + 1):
            if not np.isnan(m[i, j]):
                ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=7, color="white" if abs(m[i, j]) > 0.6 else "black")
    ax.set_xticks(range(5), list(DOMAINS))
    ax.set_yticks(range(5), list(DOMAINS))
    ax.grid(False)
    ax.set_title(title, fontsize=8)


def plot_correlations(corr: dict[str, Any]) -> Any:
    """Lower-triangle heatmaps, one block of rows per questionnaire: the human matrix, each of our methods, then
    the paper's methods (its model of our size where it has one), each titled with its Frobenius distance F to the
    human matrix."""
    import matplotlib.pyplot as plt

    from big5chat.paper import model_size_label

    _theme()
    blocks = []
    for q, b in corr["instruments"].items():
        panels = [(f"human (n={corr['human_n']})", corr["human"])] if corr["human"] is not None else []
        for m, mat in b["models"].items():
            fro = b["frobenius"].get(m)
            panels.append((f"{METHOD_LABEL[m]} (ours)" + (f", F={fro:.2f}" if fro is not None else ""), mat))
        size = model_size_label(b.get("paper_model") or "")
        for m, mat in b["paper"].items():
            fro = b["frobenius"].get(f"paper_{m}")
            panels.append((f"{METHOD_LABEL.get(m, m)} (paper {size})" + (f", F={fro:.2f}" if fro is not None else ""), mat))
        blocks.append((q, panels))
    cols = min(5, max((len(p) for _, p in blocks), default=1))
    rows = [int(np.ceil(len(p) / cols)) or 1 for _, p in blocks] or [1]
    fig = plt.figure(figsize=(2.9 * cols, 2.9 * sum(rows) + 0.6), layout="constrained")
    subfigs = np.atleast_1d(fig.subfigures(len(rows), 1, height_ratios=rows)) if blocks else []
    for sub, (q, panels), r in zip(subfigs, blocks, rows):
        axes = np.atleast_1d(sub.subplots(r, cols, squeeze=False)).ravel()
        for ax, (title, mat) in zip(axes, panels):
            _correlation_panel(ax, title, mat)
        for ax in axes[len(panels) :]:
            ax.set_axis_off()
        sub.suptitle(f"{q}: intra-trait correlations across the 10 conditions", fontsize=10)
    human = f"human: {corr['human_source']}" if corr["human"] is not None else "no human reference (assess_personality.human_responses)"
    fig.supxlabel(f"O openness, C conscientiousness, E extraversion, A agreeableness, N neuroticism. {human}", fontsize=7)
    return fig


def plot_acquiescence(table: pd.DataFrame) -> Any:
    """Per questionnaire and induced trait, each method's high-minus-low gap (open marker) beside its trait-specific
    part (bar, 95% bootstrap CI) and the shift common to every item (x): a gap made of acquiescence alone has a
    bar at 0."""
    import matplotlib.pyplot as plt

    _theme()
    qs = list(table["questionnaire"].unique())
    traits = list(table["trait"].unique())
    methods = [m for m in METHOD_LABEL if m in set(table["method"])]
    fig, axes = plt.subplots(1, len(qs), figsize=(6.4 * len(qs), 3.6), squeeze=False, sharey=True)
    colors = dict(zip(methods, plt.get_cmap("tab10").colors))
    w = 0.8 / max(len(methods), 1)
    for ax, q in zip(axes[0], qs):
        for k, m in enumerate(methods):
            t = table[(table["questionnaire"] == q) & (table["method"] == m)].set_index("trait").reindex(traits)
            x = np.arange(len(traits)) - 0.4 + w * (k + 0.5)
            err = np.vstack([t["specific"] - t["specific_lo"], t["specific_hi"] - t["specific"]])
            ax.bar(x, t["specific"], w * 0.9, color=colors[m], alpha=0.85, yerr=err, capsize=1.5, error_kw={"lw": 0.7},
                   label=METHOD_LABEL[m])  # fmt: skip
            ax.scatter(x, t["gap"], s=14, facecolors="none", edgecolors="k", lw=0.7, zorder=3, label="whole gap" if k == 0 else None)
            ax.scatter(x, t["common"], s=12, marker="x", color="0.35", lw=0.7, zorder=3, label="common shift" if k == 0 else None)
        ax.axhline(0, color="0.4", lw=0.8)
        ax.set_xticks(np.arange(len(traits)), traits, fontsize=8)
        ax.set_ylabel("high minus low (item scale)")
        ax.set_title(f"{q}: trait-specific gap (bars) net of the common shift")
    axes[0][-1].legend(fontsize=6, ncol=2, loc="best")
    fig.tight_layout()
    return fig
