"""The eval_dialogues stage: how well the generated replies carry their target trait level, judged by the trait classifier.

Each reply of the dataset (data/generated/big5chat.csv) gets the classifier's score for its own trait; a reply hits
when the score lies on the side of its target level (above 0.5 = high). Against that:

- the prompting-only baseline (``generation.baseline``): on the first ``baseline_scenarios`` scenarios, the base
  model alone (alpha = 0) given the same prompt, trait description included;
- with ``steer: true``, the method steer on the same scenarios: the base model without the trait description, its
  trait vector (learn_steering) added to the residual stream (``steering.replies``);
- the released BIG5-CHAT replies (when ``reference_csv`` exists), the real dataset's reference;
- the study's own alpha sweep (when ``study_alpha_sweep_dir`` exists): accuracy against alpha from its 70B generations.

Also reply length, distinct-1/2, the refusal rate and the share of degenerate replies (``evaluation.text_metrics``),
and on the paired items 95% intervals and exact tests (``evaluation.paired_tests``). Writes
reports/eval_dialogues/baseline.csv, the figure, the metrics and the run record.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from big5chat import paths, storage
from big5chat import runtime as rt
from big5chat.classifier.scoring import TraitScorer
from big5chat.data.sampling import per_group
from big5chat.evaluation.paired_tests import compare_methods
from big5chat.evaluation.study_sweep import accuracy_by_alpha, accuracy_by_trait_and_alpha, read_study_alpha_sweep
from big5chat.evaluation.text_metrics import level_hits, per_trait_accuracy, reply_stats, target_scores
from big5chat.generation import dialogues as dlg
from big5chat.traits import normalize_level, normalize_trait

DATASET_CSV = ("generated", "big5chat.csv")  # below paths.DATA: generate_dialogues' output
BASELINE_CSV = ("eval_dialogues", "baseline.csv")  # below paths.REPORTS
FIGURE = ("eval_dialogues", "accuracy.png")  # below paths.FIGURES
SCORER_BATCH_SIZE = 64
# the methods judged on the same (scenario, trait, level) items: name -> the baseline table's score column
PAIRED = (("dexperts", "score"), ("prompting", "baseline_score"), ("steer", "steer_score"))


@dataclass(frozen=True)
class EvalDialoguesResult:
    data: pd.DataFrame  # the dataset with each reply's classifier score for its trait (``score``)
    baseline: pd.DataFrame  # the baseline scenarios' rows with the prompting (and steer) replies and scores; empty without
    reference: dict[str, Any] | None  # the released replies' accuracy and text metrics, None without the CSV
    summary: pd.DataFrame  # per method: accuracy per trait and overall, and the text metrics
    sweep: pd.DataFrame  # the study's alpha-sweep replies, scored (empty when not at hand)
    sweep_table: pd.DataFrame  # alpha, accuracy over all traits (empty when not at hand)
    figures: list[Path]
    metrics: dict[str, Any]
    outputs: dict[str, Path]

    @property
    def shown_metrics(self) -> dict[str, Any]:
        """The metrics without the reference's (printed while it was scored)."""
        return {k: v for k, v in self.metrics.items() if k != "reference"}


def baseline_rows(data: pd.DataFrame, n_scenarios: int) -> pd.DataFrame:
    """The rows (every trait x level) of the dataset's first ``n_scenarios`` scenarios, in the dataset's order."""
    chosen = data["original_index"].drop_duplicates().head(n_scenarios)
    return data[data["original_index"].isin(chosen)].copy().reset_index(drop=True)


def plain_conversations(rows: pd.DataFrame, scenarios: dict[int, dict[str, Any]]) -> list[list[dict[str, str]]]:
    """Per row, PersonY's turn-1 prompt without the personality description (what steered replies answer)."""
    from big5chat.generation.dialogue_prompts import turn1_prompt

    return [[{"role": "user", "content": turn1_prompt(dlg.scenario_of(scenarios[r.original_index]), r.train_input, None, None)}]
            for r in rows.itertuples()]  # fmt: skip


def answer_baseline(data: pd.DataFrame, g: Any, ev: Any, multiplier: float, scorer: Any, record: dict[str, Any]) -> pd.DataFrame:
    """The first ``ev.baseline_scenarios`` scenarios' rows answered by the prompting baseline (and, with
    ``ev.steer``, by steer at ``multiplier``), each reply scored; wall times in ``record``."""
    from big5chat.generation.baseline import baseline_prompts, prompting_replies
    from big5chat.generation.dexperts import Sampling
    from big5chat.models.loading import load_chat_model

    baseline = baseline_rows(data, ev.baseline_scenarios)
    scen = {int(s["original_index"]): s for s in storage.read_jsonl(paths.PROCESSED / "scenarios.jsonl")}
    base, tok = load_chat_model(paths.MODELS / "base", dtype=g.dtype)
    prompts = baseline_prompts(tok, baseline, scen)
    with rt.timed(record, "baseline_s"):
        baseline["baseline_output"] = prompting_replies(base, tok, prompts, baseline["original_index"].tolist(), sampling=Sampling(g.do_sample, g.temperature, g.top_p),
                                                        max_new_tokens=g.max_new_tokens, batch_size=ev.batch_size, seed=ev.seed, prefix_reuse=g.prefix_reuse)  # fmt: skip
    baseline["baseline_score"] = target_scores(scorer, baseline, "baseline_output")
    if ev.steer:  # method steer: the same scenarios without the personality description, the trait vector doing the work
        from big5chat.steering.replies import steered_replies
        from big5chat.steering.vectors import TraitVectors

        vectors = TraitVectors.load(paths.MODELS / "steering" / "vectors.safetensors")
        plain = plain_conversations(baseline, scen)
        with rt.timed(record, "steer_s"):
            out = steered_replies(base, tok, plain, list(zip(baseline["trait"], baseline["level"])), vectors, multiplier,
                                  max_new_tokens=g.max_new_tokens, batch_size=ev.batch_size, do_sample=g.do_sample, temperature=g.temperature,
                                  top_p=g.top_p, seed=ev.seed)  # fmt: skip
        baseline["steer_output"] = [dlg.postprocess(r)[0] for r in out]
        baseline["steer_score"] = target_scores(scorer, baseline, "steer_output")
    return baseline


def reference_sample(ref: pd.DataFrame, traits: list[str], per_arm: int, seed: int) -> pd.DataFrame:
    """The released replies of ``traits`` (spellings normalised), ``per_arm`` seeded rows per trait x level."""
    ref = ref.copy()
    ref["trait"] = ref["trait"].map(normalize_trait)
    ref["level"] = ref["level"].map(normalize_level)
    return per_group(ref[ref["trait"].isin(traits)], ["trait", "level"], per_arm, seed).reset_index(drop=True)


def score_reference(csv: str | None, traits: list[str], per_arm: int, seed: int, scorer: Any) -> dict[str, Any] | None:
    """Accuracy and text metrics of a sample of the released BIG5-CHAT replies (column ``big5_chat``), with the
    file's name and hash; None when ``csv`` is not given or not there."""
    if not (csv and paths.resolve(csv).is_file()):
        print("no reference CSV at", csv)
        return None
    ref = reference_sample(pd.read_csv(paths.resolve(csv)), traits, per_arm, seed)
    ref["score"] = target_scores(scorer, ref, "big5_chat")
    reference = {"accuracy": per_trait_accuracy(ref), "text": reply_stats(ref["big5_chat"].tolist()),
                 "source": str(csv), "sha256": storage.sha256_file(paths.resolve(csv))}  # fmt: skip
    print("reference:", reference["accuracy"])
    return reference


def summary_table(data: pd.DataFrame, baseline: pd.DataFrame, reference: dict[str, Any] | None, multiplier: float) -> pd.DataFrame:
    """One row per method that has replies: accuracy per trait and overall, then the text metrics."""
    rows = []
    for name, frame, score, text in [("dexperts (all)", data, "score", "train_output"),
                                     ("dexperts (baseline scenarios)", baseline, "score", "train_output"),
                                     ("prompting baseline", baseline, "baseline_score", "baseline_output"),
                                     (f"steer (x{multiplier:g}, no description)", baseline, "steer_score", "steer_output")]:  # fmt: skip
        if len(frame) and score in frame:
            rows.append({"method": name, **per_trait_accuracy(frame, score), **reply_stats(frame[text].tolist())})
    if reference:
        rows.append({"method": "released BIG5-CHAT (reference)", **reference["accuracy"], **reference["text"]})
    return pd.DataFrame(rows)


def scored_sweep(folder: str | None, scorer: Any) -> pd.DataFrame:
    """The study's alpha-sweep replies, each scored for its induced trait; empty when ``folder`` is not there."""
    sweep_dir = paths.resolve(folder) if folder else None
    if sweep_dir is None or not sweep_dir.is_dir():
        return pd.DataFrame()
    sweep = read_study_alpha_sweep(sweep_dir)
    sweep["score"] = target_scores(scorer, sweep, "text")
    return sweep


def paired_significance(baseline: pd.DataFrame) -> dict[str, Any]:
    """Each method against prompting on the same items: 95% intervals, tests against chance and exact McNemar."""
    hits = {m: level_hits(baseline[col], baseline["level"]) for m, col in PAIRED if col in baseline}
    return {f"{m}_vs_prompting": compare_methods(m, hits[m], "prompting", hits["prompting"]) for m in hits if m != "prompting"}


def eval_metrics(alpha: float, data: pd.DataFrame, baseline: pd.DataFrame, reference: dict[str, Any] | None,
                 sweep_table: pd.DataFrame | None, multiplier: float) -> dict[str, Any]:  # fmt: skip
    """The metrics file: DExperts on every reply; with the baseline, DExperts, prompting (and steer) on the paired
    scenarios and their tests; the reference; the study's sweep (``sweep_table`` None when not at hand)."""
    metrics: dict[str, Any] = {"alpha": alpha, "dexperts": {"accuracy": per_trait_accuracy(data), **reply_stats(data["train_output"].tolist())}}
    if len(baseline):
        metrics["paired_scenarios"] = int(baseline["original_index"].nunique())
        metrics["dexperts_on_baseline_scenarios"] = per_trait_accuracy(baseline)
        metrics["prompting"] = {"accuracy": per_trait_accuracy(baseline, "baseline_score"), **reply_stats(baseline["baseline_output"].tolist())}
        metrics["significance"] = paired_significance(baseline)
        if "steer_output" in baseline:
            metrics["steer"] = {"multiplier": multiplier, "accuracy": per_trait_accuracy(baseline, "steer_score"),
                                **reply_stats(baseline["steer_output"].tolist())}  # fmt: skip
    if reference:
        metrics["reference"] = reference
    if sweep_table is not None:
        metrics["study_alpha_sweep"] = {str(a): round(v, 4) for a, v in zip(sweep_table["alpha"], sweep_table["accuracy"])}
    return metrics


def run(cfg: dict[str, Any]) -> EvalDialoguesResult:
    """The stage: ``cfg`` holds the ``traits``, ``generate_dialogues``, ``eval_dialogues``, ``steer`` and ``runtime``
    sections (``config.stage_config``)."""
    import matplotlib

    matplotlib.use("Agg")  # the figure is saved as a PNG (and shown from it), not drawn by the kernel's backend
    import matplotlib.pyplot as plt

    from big5chat.reporting.dialogue_figures import accuracy_figure

    g, ev, traits, multiplier = cfg["generate_dialogues"], cfg["eval_dialogues"], list(cfg["traits"]), cfg["steer"].multiplier
    env = rt.setup(cfg["runtime"].threads, seed=ev.seed)
    data = pd.read_csv(paths.DATA.joinpath(*DATASET_CSV), keep_default_na=False)
    scorer = TraitScorer(paths.MODELS / "classifier", batch_size=SCORER_BATCH_SIZE)
    record: dict[str, Any] = {}
    data["score"] = target_scores(scorer, data, "train_output")
    print(f"{len(data)} replies from {data['original_index'].nunique()} scenarios")

    baseline = pd.DataFrame()
    if ev.baseline_scenarios and g.source == "generate":
        baseline = answer_baseline(data, g, ev, multiplier, scorer, record)
        baseline_file = storage.write_csv(paths.REPORTS.joinpath(*BASELINE_CSV), baseline)
    else:
        baseline_file = storage.write_csv(paths.REPORTS.joinpath(*BASELINE_CSV), pd.DataFrame(columns=["original_index", "trait", "level"]))
    reference = score_reference(ev.reference_csv, traits, ev.reference_per_arm, ev.seed, scorer)
    summary = summary_table(data, baseline, reference, multiplier)

    sweep = scored_sweep(ev.study_alpha_sweep_dir, scorer)
    sweep_table = accuracy_by_alpha(sweep) if len(sweep) else pd.DataFrame(columns=["alpha", "accuracy"])
    fig = accuracy_figure(summary, traits, g.alpha, accuracy_by_trait_and_alpha(sweep) if len(sweep) else {}, sweep_table)
    figure = storage.save_figure(fig, paths.FIGURES.joinpath(*FIGURE))
    plt.close(fig)

    metrics = eval_metrics(g.alpha, data, baseline, reference, sweep_table if len(sweep) else None, multiplier)
    metrics_file = storage.write_json(paths.METRICS / "eval_dialogues.json", metrics)
    run_record = rt.write_run_record("eval_dialogues", record, env)
    return EvalDialoguesResult(data, baseline, reference, summary, sweep, sweep_table, [figure], metrics,
                               {"baseline": baseline_file, "figure": figure, "metrics": metrics_file, "run_record": run_record})  # fmt: skip
