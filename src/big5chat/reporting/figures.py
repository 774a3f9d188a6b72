"""The study's figures in one paper-ready theme, drawn only from metrics, result tables and the paper's numbers.

Every function takes plain data (dicts, DataFrames) and returns a matplotlib figure, so it can be tested on a
small synthetic metrics set; ``make_figures`` feeds them the pipeline's outputs.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import numpy as np
import pandas as pd


def theme() -> None:
    import matplotlib as mpl
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", palette="colorblind", font_scale=0.95)
    mpl.rcParams.update({"pdf.fonttype": 42, "ps.fonttype": 42, "savefig.dpi": 200, "figure.dpi": 100})


# ---------------------------------------------------------------- pipeline


def dag_edges(dot: str) -> list[tuple[str, str]]:
    """Edges of `dvc dag --dot` output."""
    return re.findall(r'"([^"]+)"\s*->\s*"([^"]+)"', dot)


def dag_graph(dot: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Nodes (sorted, a stage without edges included) and edges of `dvc dag --dot` output."""
    edges = dag_edges(dot)
    return sorted({n for e in edges for n in e} | set(re.findall(r'"([^"]+)";', dot))), edges


def layers(nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Longest-path depth of each node (0 = no upstream stage)."""
    depth = {n: 0 for n in nodes}
    for _ in range(len(nodes)):
        changed = False
        for a, b in edges:
            if depth.get(b, 0) < depth.get(a, 0) + 1:
                depth[b] = depth[a] + 1
                changed = True
        if not changed:
            break
    return depth


def pipeline(nodes: list[str], edges: list[tuple[str, str]]) -> Any:
    import matplotlib.pyplot as plt

    theme()
    depth = layers(nodes, edges)
    by_layer: dict[int, list[str]] = {}
    for n in sorted(nodes):
        by_layer.setdefault(depth[n], []).append(n)
    width = max(len(v) for v in by_layer.values())
    fig, ax = plt.subplots(figsize=(2.3 * width + 1, 1.05 * len(by_layer) + 0.6))
    pos = {}
    for d, names in by_layer.items():
        for i, n in enumerate(names):
            pos[n] = ((i - (len(names) - 1) / 2) * 2.3, -d * 1.05)
    for a, b in edges:
        (x0, y0), (x1, y1) = pos[a], pos[b]
        ax.annotate("", xy=(x1, y1 + 0.2), xytext=(x0, y0 - 0.2), arrowprops=dict(arrowstyle="->", color="0.55", lw=0.8))
    for n, (x, y) in pos.items():
        ax.text(x, y, n.replace("@", "\n@"), ha="center", va="center", fontsize=7,
                bbox=dict(boxstyle="round,pad=0.3", fc="#e8f0fb", ec="#4a76b8", lw=0.8))  # fmt: skip
    ax.set_xlim(-1.2 * width - 0.5, 1.2 * width + 0.5)
    ax.set_ylim(-1.05 * (len(by_layer) - 1) - 0.6, 0.6)
    ax.set_axis_off()
    ax.set_title("The BIG5-CHAT pipeline (dvc dag)")
    return fig


# ---------------------------------------------------------------- dataset


def dataset_examples(dialogues: pd.DataFrame, traits: list[str]) -> Any:
    """For each trait, one scenario's turn 0 and the high and low replies to it."""
    import matplotlib.pyplot as plt

    theme()
    fig, axes = plt.subplots(len(traits), 1, figsize=(9, 1.7 * len(traits)))
    axes = np.atleast_1d(axes)
    for ax, t in zip(axes, traits):
        d = dialogues[dialogues["trait"] == t]
        ax.set_axis_off()
        if d.empty:
            continue
        idx = d["original_index"].iloc[0]
        s = d[d["original_index"] == idx].set_index("level")
        wrap = lambda x, w=110: "\n".join(textwrap.wrap(str(x), w)[:2])  # noqa: E731
        ax.text(0, 1, f"{t.upper()}  |  {s['personx'].iloc[0]}: {wrap(s['train_input'].iloc[0], 100)}", fontsize=7, va="top", weight="bold")
        ax.text(0, 0.55, f"high: {wrap(s.loc['high', 'train_output'])}", fontsize=7, va="top", color="#b2182b")
        ax.text(0, 0.15, f"low:  {wrap(s.loc['low', 'train_output'])}", fontsize=7, va="top", color="#2166ac")
    fig.suptitle("Dataset examples: the same turn 0, answered at high and at low", y=1.0)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- classifier and experts


def classifier_and_experts(classifier: dict[str, Any], experts: dict[str, Any], paper: dict[str, float] | None = None) -> Any:
    """``paper``: the paper's stated numbers (``big5chat.paper.findings()``, the default)."""
    import matplotlib.pyplot as plt

    from big5chat.paper import findings

    paper = paper if paper is not None else findings()
    theme()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.4))
    traits = list(classifier["test"]["traits"])
    sets = {"test posts": classifier["test"]["traits"]}
    names = {"heldout": "out-of-topic held-out", "reference": "real reference posts"}
    sets |= {names[k]: classifier[k]["traits"] for k in names if k in classifier}
    xs, width = np.arange(len(traits)), 0.8 / len(sets)
    for k, (name, tr) in enumerate(sets.items()):
        a1.bar(xs + (k - (len(sets) - 1) / 2) * width, [tr[t]["accuracy"] for t in traits], width, label=name)
    a1.axhline(paper["classifier_accuracy"], color="k", ls="--", lw=1, label=f"paper: {paper['classifier_accuracy']:.1%}")
    a1.axhline(0.5, color="0.6", ls=":", lw=1)
    a1.set_xticks(xs, [t.capitalize() for t in traits], fontsize=7)
    a1.set_ylim(0, 1)
    a1.set_title("Trait classifier: test accuracy at 0.5")
    a1.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3)  # below the bars, not over them
    acc = experts["accuracy"]
    names = [t for t in acc if t != "overall"] + ["overall"]  # type: ignore[assignment]
    xs = np.arange(len(names))
    a2.bar(xs - 0.27, [acc[t]["expert"] for t in names], 0.27, label="expert")
    a2.bar(xs, [acc[t]["prompting"] for t in names], 0.27, label="prompting")
    a2.bar(xs + 0.27, [acc[t].get("real_posts") or np.nan for t in names], 0.27, label="real posts")
    a2.axhline(paper["expert_accuracy"], color="C0", ls="--", lw=1, label=f"paper expert {paper['expert_accuracy']:.1%}")
    a2.axhline(paper["prompting_accuracy"], color="C1", ls="--", lw=1, label=f"paper prompting {paper['prompting_accuracy']:.1%}")
    a2.set_xticks(xs, [t.capitalize() for t in names], fontsize=7)
    a2.set_ylim(0, 1)
    a2.set_title("Expert generators vs prompting")
    a2.legend(fontsize=6, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    fig.tight_layout()
    return fig


def alpha_sweep(dialogues: dict[str, Any]) -> Any:
    """Target-level accuracy against alpha: the study's own sweep (scored by our classifier) and our run(s)."""
    import matplotlib.pyplot as plt

    theme()
    fig, ax = plt.subplots(figsize=(4.8, 3.3))
    sweep = dialogues.get("study_alpha_sweep") or {}
    if sweep:
        xs = sorted(float(a) for a in sweep)
        ax.plot(xs, [sweep[str(a)] if str(a) in sweep else sweep[f"{a:g}"] for a in xs], marker="o", label="the study's 70B+8B sweep")
    ours = dialogues.get("dexperts", {}).get("accuracy", {}).get("overall")
    if ours is not None:
        ax.scatter([dialogues["alpha"]], [ours], color="C3", zorder=3, label=f"ours (alpha {dialogues['alpha']})")
    base = dialogues.get("prompting", {}).get("accuracy", {}).get("overall")
    if base is not None:
        ax.axhline(base, color="C3", ls=":", lw=1, label="ours, prompting only")
    ax.axhline(0.5, color="0.6", ls=":", lw=1)
    ax.set_xscale("log", base=2)
    ax.set_ylim(0, 1)
    ax.set_xlabel("alpha")
    ax.set_ylabel("target level predicted")
    ax.set_title("DExperts: accuracy against alpha")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def summary_frames(assess: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for m, qs in assess.get("summary", {}).items():
        for q, v in qs.items():
            rows.append({"method": m, "questionnaire": q, **v})
    return pd.DataFrame(rows)


def correlation_frames(corr: dict[str, Any]) -> dict[str, Any]:
    """The JSON form of psychometrics.report.correlations back to DataFrames."""

    def df(m: Any) -> pd.DataFrame:
        return pd.DataFrame(m).astype(float)

    return {
        "human": df(corr["human"]) if corr.get("human") else None,
        "human_n": corr.get("human_n", 0),
        "human_source": corr.get("human_source", ""),
        "instruments": {q: {"models": {k: df(v) for k, v in b.get("models", {}).items()}, "paper_model": b.get("paper_model", ""),
                            "paper": {k: df(v) for k, v in b.get("paper", {}).items()}, "frobenius": b.get("frobenius", {})}
                        for q, b in corr.get("instruments", {}).items()},
    }  # fmt: skip


def _err(value: Any, lo: Any, hi: Any) -> np.ndarray:
    """Error-bar lengths below and above ``value`` (clipped at 0: an interval's end equal to the value up to rounding)."""
    v = np.asarray(value, float)
    return np.clip(np.vstack([v - np.asarray(lo, float), np.asarray(hi, float) - v]), 0, None)


def plot_behaviour(acc: pd.DataFrame, separation: pd.DataFrame, validity: pd.DataFrame, questionnaire: str) -> Any:
    """The questionnaire-taking model's free replies, judged by the classifier (``psychometrics.behaviour``). Left:
    judged accuracy at high and at low (Wilson 95%; 0.5 = chance). Middle: the judged score of the induced trait at
    high minus at low, paired by trait and scenario (t 95%). Right: per trait, the questionnaire-vs-judge correlation
    across the conditions for each method (Fisher-z 95%)."""
    import matplotlib.pyplot as plt

    from big5chat.methods import LABELS

    theme()
    methods = [m for m in LABELS if m in set(acc["method"])]
    colors = dict(zip(LABELS, plt.get_cmap("tab10").colors))
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.0), gridspec_kw={"width_ratios": [1.1, 0.8, 1.4]})
    ax = axes[0]
    w = 0.38
    for k, level in enumerate(("high", "low")):
        t = acc[acc["level"] == level].set_index("method").reindex(methods)
        x = np.arange(len(methods)) + (k - 0.5) * w
        ax.bar(x, t["accuracy"], w, label=level, color=("tab:red", "tab:blue")[k], alpha=0.8)
        ax.errorbar(x, t["accuracy"], yerr=_err(t["accuracy"], t["lo"], t["hi"]), fmt="none", ecolor="k", lw=1, capsize=2)
    ax.axhline(0.5, color="0.5", ls=":", lw=1)
    ax.set_xticks(np.arange(len(methods)), [LABELS[m] for m in methods], fontsize=8, rotation=15)
    ax.set_ylim(0, 1)
    ax.set_ylabel("replies judged at the target level")
    ax.set_title("Judged accuracy of the free replies", fontsize=10)
    ax.legend(fontsize=7, title="condition", title_fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    ax = axes[1]
    t = separation.set_index("method").reindex(methods)
    x = np.arange(len(methods))
    ax.bar(x, t["diff"], 0.6, color=[colors[m] for m in methods], alpha=0.85)
    ax.errorbar(x, t["diff"], yerr=_err(t["diff"], t["lo"], t["hi"]), fmt="none", ecolor="k", lw=1, capsize=2)
    ax.axhline(0, color="0.5", lw=1)
    ax.set_xticks(x, [LABELS[m] for m in methods], fontsize=8, rotation=15)
    ax.set_ylabel("judged score, high minus low")
    ax.set_title("Induced trait in the replies", fontsize=10)
    ax = axes[2]
    v = validity[(validity["questionnaire"] == questionnaire) & (validity["method"] != "all")]
    traits = list(dict.fromkeys(v["trait"]))
    vm = [m for m in methods if m in set(v["method"])]
    w = 0.8 / max(len(vm), 1)
    for k, m in enumerate(vm):
        t = v[v["method"] == m].set_index("trait").reindex(traits)
        x = np.arange(len(traits)) - 0.4 + w * (k + 0.5)
        ax.errorbar(x, t["r"], yerr=_err(t["r"], t["lo"], t["hi"]), fmt="o", ms=4, lw=1, color=colors[m], label=LABELS[m])
    ax.axhline(0, color="0.5", lw=1)
    ax.set_xticks(np.arange(len(traits)), traits, fontsize=8)
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel(f"r ({questionnaire} score, judged score)")
    ax.set_title("Self-report vs behaviour across the 10 conditions", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=min(len(vm), 5))
    fig.tight_layout()
    return fig


def plot_mode_agreement(table: pd.DataFrame, domains: pd.DataFrame) -> Any:
    """The same items in both modes (``psychometrics.modes``). Left, per method and questionnaire: the share of
    generated replies that parse, that equal the most likely option (over all replies; an unparsed one disagrees) and
    that lie within one point of it (among parsed). Right: each condition's domain score in generation mode against
    log-prob mode on the same items (on the diagonal: the modes agree)."""
    import matplotlib.pyplot as plt

    from big5chat.methods import LABELS

    theme()
    methods = [m for m in LABELS if m in set(table["method"])]
    qs = list(dict.fromkeys(table["questionnaire"]))
    colors = dict(zip(LABELS, plt.get_cmap("tab10").colors))
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), gridspec_kw={"width_ratios": [1.6, 1]})
    ax = axes[0]
    bars = [("parsed", "parsed", 0.35), ("agreement_all", "= most likely option", 0.95), ("within_1", "within 1 point (parsed)", 0.6)]
    groups = [(m, q) for m in methods for q in qs]
    w = 0.8 / len(bars)
    for k, (col, label, alpha) in enumerate(bars):
        vals = [table[(table["method"] == m) & (table["questionnaire"] == q)][col].mean() for m, q in groups]
        ax.bar(np.arange(len(groups)) - 0.4 + w * (k + 0.5), vals, w, label=label, color="tab:purple", alpha=alpha)
    ax.set_xticks(np.arange(len(groups)), [f"{LABELS[m]}\n{q}" for m, q in groups], fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of generated replies")
    ax.set_title("Generated answer vs the option log-prob mode reads as most likely", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
    ax = axes[1]
    for m in methods:
        d = domains[domains["method"] == m]
        ax.scatter(d["logprob"], d["gen"], s=10, alpha=0.6, color=colors[m], label=LABELS[m])
    lo = float(np.nanmin([domains["logprob"].min(), domains["gen"].min(), 1.0])) if len(domains) else 1.0
    hi = float(np.nanmax([domains["logprob"].max(), domains["gen"].max(), 5.0])) if len(domains) else 5.0
    ax.plot([lo, hi], [lo, hi], color="0.5", lw=1, ls=":")
    ax.set_xlabel("domain score, log-prob mode")
    ax.set_ylabel("domain score, generation mode")
    ax.set_title("Same items, same conditions", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def plot_prompt_variants(table: pd.DataFrame) -> Any:
    """Per questionnaire (columns): across the wordings of the questionnaire turn (``psychometrics.variants``), each
    method's high-minus-low gap of the induced trait (top) and its mean item score over all conditions (bottom)."""
    import matplotlib.pyplot as plt

    from big5chat.methods import LABELS

    theme()
    qs = list(dict.fromkeys(table["questionnaire"]))
    variants = list(dict.fromkeys(table["variant"]))
    methods = [m for m in LABELS if m in set(table["method"])]
    colors = dict(zip(LABELS, plt.get_cmap("tab10").colors))
    fig, axes = plt.subplots(2, len(qs), figsize=(5.2 * len(qs), 6.0), squeeze=False, sharex=True)
    for col, q in enumerate(qs):
        for row, (value, label) in enumerate((("gap", "gap, high minus low"), ("mean_score", "mean item score"))):
            ax = axes[row][col]
            for m in methods:
                t = table[(table["questionnaire"] == q) & (table["method"] == m)].set_index("variant").reindex(variants)
                ax.plot(np.arange(len(variants)), t[value], marker="o", ms=4, color=colors[m], label=LABELS[m])
            if value == "gap":
                ax.axhline(0, color="0.5", lw=1)
                ax.set_title(f"{q}: the same items, other wordings", fontsize=10)
            ax.set_ylabel(label)
            ax.set_xticks(np.arange(len(variants)), [v.replace("_", " ") for v in variants], fontsize=8, rotation=15)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def save_both(fig: Any, stem: Any) -> list[Any]:
    """PNG and PDF (fonts embedded as TrueType), with no timestamps inside."""
    from big5chat import storage

    png = storage.save_figure(fig, stem.with_suffix(".png"))
    pdf = stem.with_suffix(".pdf")
    with storage.atomic_file(pdf) as tmp:
        fig.savefig(tmp, format="pdf", bbox_inches="tight", metadata={"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return [png, pdf]
