"""The behavioural_validity stage: does the questionnaire-taking model act as it answers?

For each method x condition of assess_personality, the same model state (the prompt, the SFT/DPO adapter, the
steering vector: ``method_models``) writes a greedy free reply to each of a few held-out SODA scenarios (PersonY's
reply to PersonX's opening line, without the personality description), and the trait classifier judges every reply
for every trait. ``psychometrics.behaviour`` turns the judged replies into the judged accuracy, the high-minus-low
separation and the correlation with the questionnaire's domain scores (assess_personality's ``domains.csv``). Writes
the replies and the tables below ``reports/behavioural_validity``, the figure, the metrics and the run record.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from big5chat import paths, storage
from big5chat import runtime as rt
from big5chat.evaluation.text_metrics import reply_stats
from big5chat.generation.dialogue_prompts import postprocess
from big5chat.method_models import MethodModels, placements
from big5chat.psychometrics import behaviour as bv
from big5chat.psychometrics.conditions import Condition, conditions, demo_sets
from big5chat.reporting.figures import plot_behaviour

STAGE = "behavioural_validity"
DIALOGUES = ("generated", "big5chat.csv")  # below paths.DATA: the dialogue dataset (its scenarios are not held out)
SCENARIOS = ("scenarios.jsonl",)  # below paths.PROCESSED: every sampled SODA scenario
DOMAINS = ("assess_personality", "domains.csv")  # below paths.REPORTS: the questionnaire's domain scores


@dataclass(frozen=True)
class BehaviouralValidityResult:
    replies: pd.DataFrame  # one row per condition x scenario: the reply and the judge's score of it for every trait
    accuracy: pd.DataFrame  # judged accuracy per method and level, Wilson intervals
    separation: pd.DataFrame  # judged target score at high minus at low per method, t intervals
    validity: pd.DataFrame  # questionnaire vs judge correlation per questionnaire, trait and method, Fisher-z intervals
    text: pd.DataFrame  # reply statistics per method (length, distinct words, ...)
    figures: list[Path]
    metrics: dict[str, Any]
    record: dict[str, Any]  # wall times (the run record)
    outputs: dict[str, Path]

    @property
    def first_replies(self) -> pd.Series:
        """Each method's first reply."""
        return self.replies.groupby("method", sort=False)["reply"].first()

    @property
    def accuracy_and_separation(self) -> pd.DataFrame:
        """Judged accuracy per method and level beside the method's separation (``_separation`` columns)."""
        return self.accuracy.merge(self.separation, on="method", suffixes=("", "_separation")).round(3)

    @property
    def pooled_validity(self) -> pd.DataFrame:
        """The correlations with every conditioned method pooled."""
        return self.validity[self.validity["method"] == "all"].round(3)


def out_dir() -> Path:
    return paths.REPORTS / STAGE


def replies_by_method(models: MethodModels, conds: list[Condition], jobs: pd.DataFrame, demos: dict[tuple[str, str], list[str]], b: Any) -> list[str]:
    """The raw reply to each row of ``jobs``, each method's rows in its model state (``bv.free_replies``); ``b``: the
    stage's params (max_new_tokens, batch_size, seed)."""

    def generate(chats: list[list[dict[str, str]]], cs: list[Condition]) -> list[str]:
        return models.free_replies(chats, cs, max_new_tokens=b.max_new_tokens, batch_size=b.batch_size, seed=b.seed,
                                   progress_desc=f"{STAGE} {cs[0].method}")  # fmt: skip

    def model_for(c: Condition) -> Any:  # the method's adapter (SFT/DPO) or none; steer's vectors are added per row in generate
        return models.state(c, steer_per_row=True)

    return bv.free_replies(conds, jobs, generate=generate, model_for=model_for, demos=demos, placement=models.placement)


def validity_questionnaire(validity: pd.DataFrame) -> str:
    """The questionnaire the figure's validity panel shows: IPIP-NEO when there, else the first."""
    return "IPIP-NEO" if "IPIP-NEO" in set(validity["questionnaire"]) else str(validity["questionnaire"].iloc[0])


def text_stats(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    """``reply_stats`` of each method's replies."""
    return {m: reply_stats(g["reply"].tolist()) for m, g in frame.groupby("method", sort=False)}


def run(cfg: dict[str, Any]) -> BehaviouralValidityResult:
    """The stage: ``cfg`` holds the ``traits``, ``behavioural_validity``, ``assess_personality`` (Prompt-Demo's
    ``n_demos`` and ``demo_seed``), ``train_sft``, ``train_dpo`` (placement), ``steer`` (multiplier) and ``runtime``
    sections (``config.stage_config``)."""
    import matplotlib

    from big5chat.classifier.scoring import TraitScorer

    matplotlib.use("Agg")  # the figure is saved as a PNG and shown from it, not drawn by the notebook's backend
    b, a, traits = cfg["behavioural_validity"], cfg["assess_personality"], list(cfg["traits"])
    env = rt.setup(cfg["runtime"].threads, seed=b.seed)
    record: dict[str, Any] = {}
    dialogues = pd.read_csv(paths.DATA.joinpath(*DIALOGUES), keep_default_na=False)
    demos = demo_sets(dialogues, a.n_demos, a.demo_seed)  # Prompt-Demo's demonstrations, as assess_personality drew them
    used = set(dialogues["original_index"].astype(int))
    scenarios = bv.held_out_scenarios(storage.read_jsonl(paths.PROCESSED.joinpath(*SCENARIOS)), used, b.scenarios)
    conds = conditions(b.methods, traits)
    jobs = bv.reply_jobs(conds, scenarios)
    held_out = ", ".join(str(s["original_index"]) for s in scenarios)
    print(f"{len(jobs)} replies: {len(conds)} conditions x {len(scenarios)} held-out scenarios ({held_out})")

    multiplier = cfg["steer"].multiplier
    models = MethodModels.load(list(b.methods), dtype=b.dtype, multiplier=multiplier, placement=placements(cfg))
    with rt.timed(record, "generate_s"):
        raw = replies_by_method(models, conds, jobs, demos, b)
    jobs["reply"] = [postprocess(r)[0] for r in raw]
    scorer = TraitScorer(paths.MODELS / "classifier", batch_size=64)
    frame = bv.judged(jobs, scorer(jobs["reply"].tolist())[traits])
    outputs = {"replies": storage.write_csv(out_dir() / "replies.csv", frame)}

    domains = pd.read_csv(paths.REPORTS.joinpath(*DOMAINS))  # numbers; the unconditioned rows' empty trait is not used
    acc = bv.accuracy_table(frame)
    separation = bv.separation_table(frame)
    validity = bv.validity_table(frame, domains, traits)
    outputs["accuracy"] = storage.write_csv(out_dir() / "accuracy.csv", acc)
    outputs["separation"] = storage.write_csv(out_dir() / "separation.csv", separation)
    outputs["validity"] = storage.write_csv(out_dir() / "validity.csv", validity)
    figure = plot_behaviour(acc, separation, validity, validity_questionnaire(validity))
    figures = [storage.save_figure(figure, paths.FIGURES / STAGE / "behaviour.png")]

    stats = text_stats(frame)
    metrics = bv.metrics(acc, separation, validity, len(scenarios), stats) | {"multiplier": multiplier}
    outputs["metrics"] = storage.write_json(paths.METRICS / f"{STAGE}.json", metrics)
    outputs["run_record"] = rt.write_run_record(STAGE, record | {"replies": len(frame)}, env)
    return BehaviouralValidityResult(frame, acc, separation, validity, pd.DataFrame(stats).T, figures, metrics, record, outputs)
