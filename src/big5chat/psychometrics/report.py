"""Tables, figures and metrics of the questionnaire study, from the long table of item answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from big5chat.methods import LABELS as METHOD_LABEL
from big5chat.methods import METHODS
from big5chat.psychometrics.human_reference import HumanReference
from big5chat.psychometrics.scoring import (
    DOMAINS,
    acquiescence_split,
    bootstrap_separation,
    correlation_matrix,
    cronbach_alpha,
    frobenius,
    rounded,
)
from big5chat.traits import LETTER

CONDITION_COLS = ["method", "condition", "trait", "level", "questionnaire"]


def domain_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Domain score per condition: the mean keyed item score per run, then mean, SD and number of runs across runs.
    The SD of a single run (log-prob mode) is 0 with ``runs`` 1, as the study's PsychoBench fork prints it."""
    per_run = scores.groupby([*CONDITION_COLS, "run", "domain"], sort=False)["score"].mean().reset_index()
    out = per_run.groupby([*CONDITION_COLS, "domain"], sort=False)["score"].agg(mean="mean", sd="std", runs="count").reset_index()
    out.loc[out["runs"] == 1, "sd"] = 0.0
    return out


def target_table(domains: pd.DataFrame, traits: list[str]) -> pd.DataFrame:
    """The induced trait's own domain score for each trait x level condition."""
    d = domains[domains["trait"].isin(traits)]
    d = d[d["domain"] == d["trait"].map(LETTER)]
    return d[["method", "questionnaire", "trait", "level", "mean", "sd"]].reset_index(drop=True)


def method_summary(target: pd.DataFrame) -> pd.DataFrame:
    """Per method and questionnaire: the mean targeted score over traits at high (avg+) and at low (avg-)."""
    rows = []
    for (m, q), g in target.groupby(["method", "questionnaire"], sort=False):
        hi, lo = g.loc[g["level"] == "high", "mean"].mean(), g.loc[g["level"] == "low", "mean"].mean()
        rows.append({"method": m, "questionnaire": q, "avg_high": hi, "avg_low": lo, "gap": hi - lo})
    return pd.DataFrame(rows)


def paper_summary() -> pd.DataFrame:
    """The same summary from the paper's published numbers (LLaMA-3-70B and 8B)."""
    from big5chat.reporting import paper

    p = paper.questionnaires()
    p = p[(p["trait"] != "") & (p["domain"] == p["trait"].map(LETTER))]
    rows = []
    for (model, m, q), g in p.groupby(["model", "method", "questionnaire"], sort=False):
        hi, lo = g.loc[g["level"] == "high", "mean"].mean(), g.loc[g["level"] == "low", "mean"].mean()
        rows.append({"model": model, "method": m, "questionnaire": q, "avg_high": hi, "avg_low": lo, "gap": hi - lo})
    return pd.DataFrame(rows)


def separation_table(scores: pd.DataFrame, traits: list[str], n_boot: int, seed: int) -> pd.DataFrame:
    """High minus low targeted-domain score per method, questionnaire and trait, with a bootstrap CI over items."""
    s = scores[scores["trait"].isin(traits)]
    s = s[s["domain"] == s["trait"].map(LETTER)]
    per_item = s.groupby(["method", "questionnaire", "trait", "level", "item"], sort=False)["score"].mean().unstack("level")
    rows = []
    for (m, q, t), g in per_item.groupby(level=[0, 1, 2], sort=False):
        if "high" not in g or "low" not in g:
            continue
        rows.append({"method": m, "questionnaire": q, "trait": t, **bootstrap_separation(g["high"].to_numpy(), g["low"].to_numpy(), n_boot, seed)})
    return pd.DataFrame(rows)


def acquiescence_table(scores: pd.DataFrame, traits: list[str], n_boot: int, seed: int, answer: str = "raw") -> pd.DataFrame:
    """Per method, questionnaire and induced trait: the high-minus-low gap of the trait's domain split into the
    shift common to all items (acquiescence) and the trait-specific rest, with bootstrap CIs over items
    (``scoring.acquiescence_split``). ``answer``: the item answer before keying (``raw``; ``argmax`` when log-prob
    answers are scored by their most likely option)."""
    s = scores[scores["trait"].isin(traits)]
    rows = []
    for (m, q, t), g in s.groupby(["method", "questionnaire", "trait"], sort=False):
        per_item = g.groupby(["item", "level"], sort=False)[answer].mean().unstack("level")
        if "high" not in per_item or "low" not in per_item:
            continue
        info = g.drop_duplicates("item").set_index("item").loc[per_item.index]
        split = acquiescence_split((per_item["high"] - per_item["low"]).to_numpy(), (info["domain"] == LETTER[t]).to_numpy(),
                                   np.where(info["reverse"].astype(bool), -1.0, 1.0), n_boot, seed)  # fmt: skip
        rows.append({"method": m, "questionnaire": q, "trait": t, **split})
    return pd.DataFrame(rows)


def alpha_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Cronbach's alpha per method, questionnaire and domain; respondents are the (condition, run) answer sets."""
    rows = []
    for (m, q, d), g in scores.groupby(["method", "questionnaire", "domain"], sort=False):
        wide = g.pivot_table(index=["condition", "run"], columns="item", values="score", aggfunc="mean")
        rows.append({"method": m, "questionnaire": q, "domain": d, "alpha": cronbach_alpha(wide.to_numpy()), "respondents": len(wide)})
    return pd.DataFrame(rows)


def _condition_matrix(domains: pd.DataFrame, method: str, questionnaire: str) -> pd.DataFrame | None:
    d = domains[(domains["method"] == method) & (domains["questionnaire"] == questionnaire) & (domains["trait"] != "")]
    if d.empty:
        return None
    wide = d.pivot_table(index="condition", columns="domain", values="mean")
    return correlation_matrix(wide.reindex(columns=list(DOMAINS)))


def paper_matrices(questionnaire: str, paper_model: str | None) -> tuple[str, dict[str, pd.DataFrame]]:
    """The paper's model matrices for ``questionnaire``: of ``paper_model`` when ``data/paper/`` has it (the same
    model size as ours), else of its largest model (70B; a reference, not a like-for-like comparison)."""
    from big5chat.reporting import paper

    p = paper.questionnaires()
    p = p[(p["questionnaire"] == questionnaire) & (p["trait"] != "") & (p["model"] != "crowd")]
    models = sorted(p["model"].unique(), key=lambda m: int(paper.model_size_label(m)[:-1]))
    if not models:
        return "", {}
    model = paper_model if paper_model in models else models[-1]
    out = {}
    for m, g in p[p["model"] == model].groupby("method"):
        wide = g.assign(condition=g["trait"] + ":" + g["level"]).pivot_table(index="condition", columns="domain", values="mean")
        out[m] = correlation_matrix(wide.reindex(columns=list(DOMAINS)))
    return model, out


def correlations(domains: pd.DataFrame, human: HumanReference | None, paper_model: str | None = None) -> dict[str, Any]:
    """Per questionnaire: our model matrices (domain scores correlated across the 10 conditions, one per method),
    the paper's (``paper_matrices``), and each one's Frobenius distance to the human matrix (``human``: people's
    domain scores; None = no human reference, no distances)."""
    hmat = correlation_matrix(human.people) if human is not None else None
    out: dict[str, Any] = {"human": hmat, "human_n": human.n if human else 0, "human_source": human.source if human else "",
                           "instruments": {}}  # fmt: skip
    for q in domains["questionnaire"].unique():
        block: dict[str, Any] = {"models": {}, "frobenius": {}}
        for m in domains["method"].unique():
            mat = _condition_matrix(domains, m, q) if METHODS[m].conditioned else None
            if mat is not None:
                block["models"][m] = mat
        block["paper_model"], block["paper"] = paper_matrices(q, paper_model)
        if hmat is not None:
            for m, mat in block["models"].items():
                block["frobenius"][m] = frobenius(hmat, mat.fillna(0.0))
            for m, mat in block["paper"].items():
                block["frobenius"][f"paper_{m}"] = frobenius(hmat, mat.fillna(0.0))
        out["instruments"][q] = block
    return out


def correlations_json(corr: dict[str, Any]) -> dict[str, Any]:
    """The correlations result as JSON (matrices as nested dicts), the table make_figures reads."""

    def d(m: pd.DataFrame | None) -> Any:
        return (
            None
            if m is None
            else {r: {c: (None if np.isnan(v) else round(float(v), 6)) for c, v in row.items()} for r, row in m.to_dict("index").items()}
        )

    return {"human": d(corr["human"]), "human_n": corr["human_n"], "human_source": corr["human_source"],
            "instruments": {q: {"models": {k: d(v) for k, v in b["models"].items()}, "paper_model": b["paper_model"],
                                "paper": {k: d(v) for k, v in b["paper"].items()},
                                "frobenius": {k: round(float(v), 6) for k, v in b["frobenius"].items()}}
                            for q, b in corr["instruments"].items()}}  # fmt: skip


def metrics(
    summary: pd.DataFrame,
    separation: pd.DataFrame,
    alpha: pd.DataFrame,
    parse: pd.DataFrame,
    corr: dict[str, Any],
    mode: str,
    acquiescence: pd.DataFrame | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "mode": mode,
        "summary": {},
        "separation": {},
        "alpha": {},
        "unparsed": {},
        "frobenius": {q: {k: rounded(v) for k, v in b["frobenius"].items()} for q, b in corr["instruments"].items()},
        "human_source": corr["human_source"],
    }
    for row in summary.itertuples():
        out["summary"].setdefault(row.method, {})[row.questionnaire] = {
            "avg_high": rounded(row.avg_high),
            "avg_low": rounded(row.avg_low),
            "gap": rounded(row.gap),
        }
    for row in separation.itertuples():
        out["separation"].setdefault(row.method, {}).setdefault(row.questionnaire, {})[row.trait] = {
            "diff": rounded(row.diff),
            "lo": rounded(row.lo),
            "hi": rounded(row.hi),
        }
    for row in alpha.itertuples():
        out["alpha"].setdefault(row.method, {}).setdefault(row.questionnaire, {})[row.domain] = rounded(row.alpha)
    for row in parse.itertuples():
        out["unparsed"][row.method] = {"answers": int(row.answers), "unparsed": int(row.unparsed)}
    out["human_n"] = corr["human_n"]
    if acquiescence is not None:
        out["acquiescence"] = {}
        for row in acquiescence.to_dict("records"):
            vals = {
                k: rounded(row[k]) for k in ("gap", "gap_lo", "gap_hi", "common", "common_lo", "common_hi", "specific", "specific_lo", "specific_hi")
            }
            out["acquiescence"].setdefault(row["method"], {}).setdefault(row["questionnaire"], {})[row["trait"]] = vals
    return out


# ---------------------------------------------------------------- figures


def _theme() -> None:
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", font_scale=0.9)


def size_label(model_dir: str | Path) -> str:
    """A model's size as people write it, from its card's parameter count ("135M", "8B", "70B"), for legends; the
    folder name when the card has no count."""
    from big5chat.models.loading import read_card, resolve_alias

    n = read_card(resolve_alias(model_dir)).get("parameters")
    if not isinstance(n, (int, float)) or n <= 0:
        return Path(model_dir).name
    return f"{int(n // 1e9)}B" if n >= 1e9 else f"{round(n / 1e6)}M"


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

    from big5chat.reporting.paper import model_size_label

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


def paper_model_of(model_dir: str | Path) -> str | None:
    """The paper's model of the same size as the model in ``model_dir`` (by its card's name), or None."""
    from big5chat.models.loading import read_card, resolve_alias
    from big5chat.reporting.paper import paper_model_for

    return paper_model_for(str(read_card(resolve_alias(model_dir)).get("name", "")))
