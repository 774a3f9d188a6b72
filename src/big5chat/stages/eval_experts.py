"""The eval_experts stage: the study's check of its expert generators (the paper, §2.3).

Held-out post prefixes (the first 5 words of test posts labelled for the trait, half high and half low) are completed
by the trait's expert(s) at high and at low, and by a prompting-only baseline (the experts' base model given the same
instruction, adapters off); the trait classifier scores every completed post and a completion is a hit when its
predicted level is the target. The real test posts' own classifier accuracy is the reference. Writes
reports/eval_experts/completions.csv, the figure, the metrics and the run record.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from big5chat import paths, storage
from big5chat import runtime as rt
from big5chat.classifier.scoring import TraitScorer
from big5chat.evaluation.paired_tests import compare_methods
from big5chat.evaluation.text_metrics import level_hits, target_scores
from big5chat.experts.evaluation import PREFIX_LEANS, accuracy_table, by_prefix_lean, choose_prefixes, completion_jobs, paired_separation
from big5chat.experts.layout import adapter_folders, adapter_name, design_of
from big5chat.generation.chat import generate_chat
from big5chat.models.adapters import load_adapters
from big5chat.models.loading import load_chat_model
from big5chat.paper import findings
from big5chat.reporting.expert_figures import expert_vs_prompting

METHODS = ("expert", "prompting")
BASE = "expert_base"  # below paths.MODELS: the experts' own base (the 70B profile: 8B)
FIGURE = ("eval_experts", "expert_vs_prompting.png")  # below paths.FIGURES


@dataclass(frozen=True)
class EvalExpertsResult:
    jobs: pd.DataFrame  # one row per (trait, level, prefix): the chat, both methods' completions and their scores
    table: pd.DataFrame  # level accuracy per trait and method, the real posts' beside them, an 'overall' row
    separation: pd.DataFrame  # the threshold-free view: high vs low completion of the same prefix
    significance: pd.DataFrame  # compare_methods on every prefix and on each side of PREFIX_LEANS
    metrics: dict[str, Any]
    figures: list[Path]
    outputs: dict[str, Path]

    @property
    def completions(self) -> pd.DataFrame:
        """The completions as ``completions.csv`` holds them (without the chat)."""
        return self.jobs.drop(columns=["conversation"])


def read_posts() -> pd.DataFrame:
    return pd.read_csv(paths.PROCESSED / "posts.csv", keep_default_na=False, dtype={"message_id": str})


def complete(jobs: pd.DataFrame, trait_list: list[str], ev: Any, record: dict[str, Any]) -> dict[str, str]:
    """Fill ``jobs["prompting"]`` (the base model, adapters off) and ``jobs["expert"]`` (each (trait, level) by its
    own expert, per_level, or the trait's one expert, single); returns each trait's design."""
    base, tok = load_chat_model(paths.MODELS / BASE, dtype=ev.dtype)
    trait_dirs = {t: paths.MODELS / "experts" / t for t in trait_list}
    designs = {t: design_of(d) for t, d in trait_dirs.items()}
    model = load_adapters(base, adapter_folders(trait_dirs))
    convs = jobs["conversation"].tolist()
    with rt.timed(record, "baseline_s"), model.disable_adapter():
        jobs["prompting"] = generate_chat(model, tok, convs, max_new_tokens=ev.max_new_tokens, batch_size=ev.batch_size, progress_desc="prompting")
    expert_out = [""] * len(jobs)
    with rt.timed(record, "experts_s"):
        for t in trait_list:
            for lvl in ("high", "low"):
                model.set_adapter(adapter_name(t, lvl, designs[t]))
                idx = np.flatnonzero((jobs["trait"].to_numpy() == t) & (jobs["level"].to_numpy() == lvl))
                outs = generate_chat(model, tok, [convs[i] for i in idx], max_new_tokens=ev.max_new_tokens, batch_size=ev.batch_size,
                                     progress_desc=f"expert {t} {lvl}")  # fmt: skip
                for i, r in zip(idx, outs):
                    expert_out[i] = r
    jobs["expert"] = expert_out
    return designs


def add_scores(jobs: pd.DataFrame, scorer: Any) -> None:
    """``jobs[f"{method}_score"]``: the classifier's score of each completed post (prefix + completion) for its trait."""
    for method in METHODS:
        completed = jobs.assign(completed=jobs["prefix"] + " " + jobs[method])
        jobs[f"{method}_score"] = target_scores(scorer, completed, "completed").to_numpy()


def real_post_accuracy(test: pd.DataFrame, real_scores: pd.DataFrame, trait_list: list[str]) -> pd.DataFrame:
    """Per trait, the classifier's level accuracy on the real held-out posts labelled high or low (score > 0.5 = high)."""
    rows = []
    for t in trait_list:
        lvl = test[f"{t}_level"].to_numpy()
        keep = (lvl == "high") | (lvl == "low")
        hits = (real_scores[t].to_numpy()[keep] > 0.5) == (lvl[keep] == "high")
        rows.append({"trait": t, "real_posts": float(np.mean(hits)), "n_real": int(keep.sum())})
    return pd.DataFrame(rows)


def significance_table(significance: dict[str, Any], by_lean: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row for every prefix, one for each side of ``PREFIX_LEANS``."""
    return pd.DataFrame({"all prefixes": significance, **{PREFIX_LEANS[k]: v for k, v in by_lean.items()}}).T


def identical_high_low(jobs: pd.DataFrame) -> dict[str, int]:
    """Per method, how many prefixes were completed identically at high and at low (a level that is ignored)."""
    return {m: int(sum(
        (g[g["level"] == "high"][m].to_numpy() == g[g["level"] == "low"][m].to_numpy()).sum() for _, g in jobs.groupby("trait", sort=False)))
        for m in METHODS}  # fmt: skip


def experts_metrics(jobs: pd.DataFrame, table: pd.DataFrame, separation: pd.DataFrame, significance: dict[str, Any], by_lean: dict[str, Any],
                    paper: dict[str, float], prefixes: dict[str, Any], designs: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    """The stage's metrics file."""
    return {
        "accuracy": {r["trait"]: {"expert": round(r["expert"], 4), "prompting": round(r["prompting"], 4),
                                  "real_posts": (round(r["real_posts"], 4) if pd.notna(r["real_posts"]) else None)} for r in table.to_dict("records")},
        "separation": {r["trait"]: {k: round(v, 4) for k, v in r.items() if k not in ("trait", "n_pairs")} for r in separation.to_dict("records")},
        "significance": significance,  # expert vs prompting on the same items: 95% intervals, exact tests (McNemar, vs chance)
        "by_prefix_lean": by_lean,  # the same, on the prefixes from a post of the target level (the study's protocol) and of the other
        "paper": {"expert": paper["expert_accuracy"], "prompting": paper["prompting_accuracy"]},
        "n_prefixes": {t: len(p) for t, p in prefixes.items()},
        "design": designs,
        "identical_high_low": identical_high_low(jobs),  # a prefix completed identically at high and at low
        "n_completions": int(len(jobs)),
        "empty_completions": {m: int((jobs[m].str.strip() == "").sum()) for m in METHODS},
    }  # fmt: skip


def run(cfg: dict[str, Any]) -> EvalExpertsResult:
    """The stage: ``cfg`` holds the ``traits``, ``eval_experts`` and ``runtime`` sections (``config.stage_config``)."""
    import matplotlib

    matplotlib.use("Agg")  # the figure is saved and shown as a PNG, never drawn by the notebook's backend
    import matplotlib.pyplot as plt

    ev, trait_list = cfg["eval_experts"], list(cfg["traits"])
    env = rt.setup(cfg["runtime"].threads, seed=ev.seed)
    posts = read_posts()
    test = posts[posts["split"] == "test"]
    prefixes = {t: choose_prefixes(posts, t, ev.n_prefixes, ev.seed) for t in trait_list}  # per trait, half high, half low
    jobs = completion_jobs(prefixes, trait_list)
    per_trait = {t: len(p) for t, p in prefixes.items()}
    print(f"held-out prefixes per trait {per_trait} x 2 levels = {len(jobs)} completions per method")
    record: dict[str, Any] = {}
    designs = complete(jobs, trait_list, ev, record)
    scorer = TraitScorer(paths.MODELS / "classifier")
    with rt.timed(record, "scoring_s"):
        add_scores(jobs, scorer)
    real = real_post_accuracy(test, scorer(test["message"].tolist()), trait_list)  # the classifier's accuracy on real text
    table = accuracy_table(jobs, list(METHODS)).merge(real, on="trait", how="left")
    separation = paired_separation(jobs, list(METHODS))
    hits = {m: level_hits(jobs[f"{m}_score"], jobs["level"]) for m in METHODS}
    significance = compare_methods("expert", hits["expert"], "prompting", hits["prompting"])
    by_lean = by_prefix_lean(jobs, hits)
    paper = findings()  # data/paper/findings.csv
    fig = expert_vs_prompting(table, by_lean, paper)
    figure = storage.save_figure(fig, paths.FIGURES.joinpath(*FIGURE))
    plt.close(fig)
    completions_csv = storage.write_csv(paths.REPORTS / "eval_experts" / "completions.csv", jobs.drop(columns=["conversation"]))
    metrics = experts_metrics(jobs, table, separation, significance, by_lean, paper, prefixes, designs)
    metrics_file = storage.write_json(paths.METRICS / "eval_experts.json", metrics)
    run_record = rt.write_run_record("eval_experts", record, env)
    return EvalExpertsResult(jobs, table, separation, significance_table(significance, by_lean), metrics, [figure],
                             {"completions": completions_csv, "figure": figure, "metrics": metrics_file, "run_record": run_record})  # fmt: skip
