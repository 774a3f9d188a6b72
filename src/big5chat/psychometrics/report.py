"""Tables and metrics of the questionnaire study, from the long table of item answers (its figures:
``reporting.questionnaire_figures``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from big5chat import paper
from big5chat.formatting import rounded
from big5chat.methods import METHODS
from big5chat.psychometrics.human_reference import HumanReference
from big5chat.psychometrics.scoring import (
    DOMAINS,
    acquiescence_split,
    bootstrap_separation,
    correlation_matrix,
    cronbach_alpha,
    frobenius,
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


# ---------------------------------------------------------------- the base model's size


def size_label(model_dir: str | Path) -> str:
    """A model's size as people write it, from its card's parameter count ("135M", "8B", "70B"), for legends; the
    folder name when the card has no count."""
    from big5chat.models.loading import read_card, resolve_alias

    n = read_card(resolve_alias(model_dir)).get("parameters")
    if not isinstance(n, (int, float)) or n <= 0:
        return Path(model_dir).name
    return f"{int(n // 1e9)}B" if n >= 1e9 else f"{round(n / 1e6)}M"


def paper_model_of(model_dir: str | Path) -> str | None:
    """The paper's model of the same size as the model in ``model_dir`` (by its card's name), or None."""
    from big5chat.models.loading import read_card, resolve_alias

    return paper.paper_model_for(str(read_card(resolve_alias(model_dir)).get("name", "")))
