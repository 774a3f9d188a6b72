"""The figures of the data, judge and steering stages: the trait labels and their split (prepare_data), the trait
classifier's accuracy and calibration (train_classifier) and the steering vectors (learn_steering).

Each function draws one figure from the stage's results and returns it; the stage saves it (``storage.save_figure``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from big5chat.traits import Z_COLUMN

LEVEL_BAR_COLOURS = ["tab:red", "salmon", "tab:blue", "lightblue", "0.6", "0.85"]  # high train/test, low train/test, median, unlabelled


def label_split(labelled: pd.DataFrame, split_summary: dict[str, Any], traits: list[str]) -> Any:
    """One panel per trait: the z-scores with the split's thresholds (z labels), or the posts per level and split
    and how many carry no label for the trait (level labels). ``split_summary``: ``data.corpus.label_corpus``'s."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(traits), figsize=(3.2 * len(traits), 2.6), sharey=True)
    axes = [axes] if len(traits) == 1 else list(axes)
    for ax, t in zip(axes, traits):
        s_ = split_summary["traits"][t]
        ax.set_title(t.capitalize())
        if split_summary["labels"] == "z":
            z = pd.to_numeric(labelled[Z_COLUMN[t]], errors="coerce").dropna()
            ax.hist(z, bins=30, color="0.6")
            if s_["high_min"] == s_["low_max"]:
                ax.axvline(s_["low_max"], color="k", lw=1.2, label="median: low <= | > high")
            else:
                ax.axvline(s_["low_max"], color="tab:blue", lw=1.2, label="low <=")
                ax.axvline(s_["high_min"], color="tab:red", lw=1.2, label="> high")
            ax.set_xlabel(Z_COLUMN[t])
        else:  # level labels: posts per level and split, and how many carry no label for this trait
            bars = {f"{lvl} ({sp})": s_["counts"][sp][lvl] for lvl in ("high", "low") for sp in ("train", "test")}
            bars |= {"median": s_["dropped_middle"], "unlabelled": s_["missing"]}
            ax.bar(range(len(bars)), list(bars.values()), color=LEVEL_BAR_COLOURS[: len(bars)])
            ax.set_xticks(range(len(bars)), list(bars), rotation=60, fontsize=7)
    axes[0].set_ylabel("posts")
    if split_summary["labels"] == "z":
        axes[0].legend(fontsize=7)
    fig.suptitle(f"Trait labels ({split_summary['labels']}) and the {split_summary['method']} split", y=1.04)
    return fig


def judge_accuracy_calibration(
    accuracy: dict[str, dict[str, dict[str, Any]]], calibration: dict[str, list[dict[str, Any]]], traits: tuple[str, ...],
    label_kind: str, paper_accuracy: float,
) -> Any:  # fmt: skip
    """Left: the judge's accuracy per trait on each labelled table (``accuracy``: table name -> per-trait metrics,
    the test split first), chance and the paper's accuracy as lines. Right: its calibration on the test split
    (``calibration``: trait -> ``classifier.metrics.calibration_bins``)."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.5, 3.8))
    xs, width = np.arange(len(traits)), 0.8 / len(accuracy)
    for k, (name, per_trait) in enumerate(accuracy.items()):
        ax1.bar(xs + (k - (len(accuracy) - 1) / 2) * width, [per_trait[t]["accuracy"] for t in traits], width, label=name)
    ax1.axhline(0.5, color="0.5", ls=":", lw=1, label="chance")
    ax1.axhline(paper_accuracy, color="k", ls="--", lw=1, label=f"paper (roberta-large, 846k posts): {paper_accuracy:.1%}")
    ax1.set_xticks(xs, [t.capitalize() for t in traits], fontsize=8)
    ax1.set_ylim(0, 1)
    ax1.set_ylabel("accuracy at 0.5 (labelled posts)")
    ax1.legend(fontsize=7, loc="lower right")
    ax1.set_title("The judge's accuracy per trait")
    for t in traits:
        bins = calibration[t]
        ax2.plot([b["pred"] for b in bins], [b["target"] for b in bins], marker="o", ms=3, label=t.capitalize())
    ax2.plot([0, 1], [0, 1], color="0.5", ls=":", lw=1)
    ax2.set_xlabel("predicted score (binned)")
    ax2.set_ylabel("true cdf(z)" if label_kind == "z" else "share labelled high")
    ax2.set_title("Calibration on the test split")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    return fig


def steering_vectors(separation: pd.DataFrame, cosine: pd.DataFrame, traits: list[str], layer: int) -> Any:
    """Left: how far apart each trait's high and low texts sit along its direction (``separation``: trait x layer,
    in SDs). Right: the cosines between the trait directions at ``layer`` (``cosine``: trait x trait)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    separation.plot.bar(ax=axes[0], rot=0)
    axes[0].set_ylabel("high - low projection (SD)")
    axes[0].set_xticks(range(len(traits)), traits, rotation=20, fontsize=8)
    axes[0].legend(title="layer", fontsize=7)
    axes[0].set_title("Separation of the source texts along each trait direction")
    im = axes[1].imshow(cosine.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    for i in range(len(traits)):
        for j in range(len(traits)):
            axes[1].text(j, i, f"{cosine.iat[i, j]:.2f}", ha="center", va="center", fontsize=7)
    axes[1].set_xticks(range(len(traits)), traits, rotation=30, fontsize=7)
    axes[1].set_yticks(range(len(traits)), traits, fontsize=7)
    axes[1].grid(False)
    axes[1].set_title(f"Cosine between trait directions (layer {layer})")
    fig.colorbar(im, ax=axes[1], shrink=0.8)
    fig.tight_layout()
    return fig
