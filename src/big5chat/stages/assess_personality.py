"""The assess_personality stage: BFI-44 and IPIP-NEO-120 for each method at the 10 trait x level conditions (and
unconditioned), docs/paper.md §2.8-2.9.

Each item is its own chat turn (the condition's prefix, the questionnaire's prompt, the item), administered in
log-prob or generation mode (``psychometrics.administer``) to each method's model state (``method_models``). Then:
the same first items in the other mode (``psychometrics.modes``), the first items under other wordings of the turn
(``psychometrics.variants``), and the scores (``psychometrics.report``): domain means, the targeted-trait summary,
high-vs-low separation with bootstrap CIs, each gap split into acquiescence and its trait-specific part, Cronbach's
alpha, and intra-trait correlations against human data. Writes the CSVs and JSON below ``reports/assess_personality``,
the figures, the metrics and the run record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from big5chat import paths, storage
from big5chat import runtime as rt
from big5chat.data.loaders import load_questionnaires
from big5chat.method_models import MethodModels, is_steered, placements
from big5chat.models.loading import check_model_dir
from big5chat.progress import progress
from big5chat.psychometrics import modes, report, variants
from big5chat.psychometrics.administer import administer, sampler_for, score_answers
from big5chat.psychometrics.conditions import Condition, conditions, demo_sets
from big5chat.psychometrics.human_reference import human_reference
from big5chat.psychometrics.modes import first_items
from big5chat.reporting import questionnaire_figures as qf
from big5chat.reporting.figures import plot_mode_agreement, plot_prompt_variants

STAGE = "assess_personality"
DIALOGUES = ("generated", "big5chat.csv")  # below paths.DATA: generate_dialogues' output, Prompt-Demo's examples


@dataclass(frozen=True)
class AssessPersonalityResult:
    scores: pd.DataFrame  # one row per method x condition x questionnaire x run x item (scores.csv)
    domains: pd.DataFrame  # domain score per condition (domains.csv)
    summary: pd.DataFrame  # per method and questionnaire: the targeted score at high, at low, and the gap
    paper: pd.DataFrame  # the same summary from the paper's published numbers
    separation: pd.DataFrame  # high minus low per method, questionnaire and trait, bootstrap CIs over items
    acquiescence: pd.DataFrame  # each gap split into the shift common to every item and the trait-specific rest
    alpha: pd.DataFrame  # Cronbach's alpha per method, questionnaire and domain
    agreement: pd.DataFrame  # mode agreement per method and questionnaire (empty with mode_agreement_items 0)
    variants: pd.DataFrame  # per wording, method and questionnaire (empty with one wording)
    variant_spread: pd.DataFrame  # the spread of gap, mean score and alpha over the wordings
    corr: dict[str, Any]  # the intra-trait correlation matrices and their Frobenius distances to the human one
    figures: list[Path]
    metrics: dict[str, Any]
    record: dict[str, Any]  # wall times (the run record)
    outputs: dict[str, Path]

    @property
    def summary_beside_paper(self) -> pd.DataFrame:
        """Our summary (model "ours (<size>)") above the paper's (its 70B and 8B models), one table."""
        ours = self.summary.assign(model=f"ours ({self.metrics['model_size']})")
        return pd.concat([ours, self.paper], ignore_index=True)[["model", *self.summary.columns]]

    @property
    def specific_gaps(self) -> pd.DataFrame:
        """The trait-specific part of each gap (acquiescence taken out), methods x (questionnaire, trait)."""
        return specific_gaps(self.acquiescence)

    @property
    def frobenius(self) -> pd.DataFrame:
        """Frobenius distance of each correlation matrix to the human one, per questionnaire."""
        return frobenius_table(self.corr)


def out_dir() -> Path:
    return paths.REPORTS / STAGE


def answer_column(a: Any) -> str:
    """The answer each item is scored by: the most likely option for log-prob mode with ``logprob_score: argmax``,
    else the raw answer (the expected answer in log-prob mode, the parsed reply in generation mode)."""
    return "argmax" if a.mode == "logprob" and a.logprob_score == "argmax" else "raw"


def administer_methods(models: MethodModels, conds: list[Condition], instruments: dict[str, dict[str, Any]], demos: dict[tuple[str, str], list[str]],
                       a: Any, *, mode: str, runs: int, desc: str, only_items: dict[str, list[int]] | None = None, variant: str | None = None,
                       methods: list[str] | None = None) -> pd.DataFrame:  # fmt: skip
    """Every condition of ``methods`` (default: ``a.methods``) in ``mode``, the model in each method's state: once per
    method, or per condition for steer (its trait's vector, signed by level). ``variant``: the turn's wording (default:
    the first of ``a.prompt_variants``); ``a``: the stage's params (rendering, sampling, batch size, seed)."""
    methods = list(a.methods) if methods is None else methods
    variant = a.prompt_variants[0] if variant is None else variant
    bar = progress(total=sum(c.method in methods for c in conds) * len(instruments), desc=desc)
    frames = []
    for method in methods:
        mc = [c for c in conds if c.method == method]
        kw = dict(mode=mode, demos=demos, placement=models.placement_of(method), rendering=a.item_rendering, only_items=only_items, variant=variant,
                  runs=runs, temperature=a.temperature, max_new_tokens=a.max_new_tokens, batch_size=a.batch_size, seed=a.seed, progress=bar)  # fmt: skip
        if a.backend == "vllm":  # vLLM loads the base and the method's adapter itself
            kw["sampler"] = sampler_for("vllm", model=None, tok=models.tok, model_dir=check_model_dir(models.base_dir), adapter_dir=models.adapters.get(method),
                                        temperature=a.temperature, max_new_tokens=a.max_new_tokens, batch_size=a.batch_size)  # fmt: skip
            frames.append(administer(None, models.tok, mc, instruments, **kw))
            continue
        for group in ([c] for c in mc) if is_steered(method) else [mc]:
            with models.state(group[0]):
                frames.append(administer(models.model, models.tok, group, instruments, **kw))
    bar.close()
    return pd.concat(frames, ignore_index=True)


def variant_rows(scores: pd.DataFrame, methods: list[str], items: dict[str, list[int]]) -> pd.DataFrame:
    """The run's own answers (its first wording) of ``methods`` to ``items`` (per questionnaire): the baseline the
    other wordings are compared with."""
    own = scores[scores["method"].isin(methods)]
    return own[[i in items[q] for q, i in zip(own["questionnaire"], own["item"])]]


def parse_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Per method: the answers and how many of them did not parse (always 0 in log-prob mode)."""
    return scores.groupby("method")["parsed"].agg(answers="size", unparsed=lambda s: int((~s).sum())).reset_index()


def specific_gaps(acquiescence: pd.DataFrame) -> pd.DataFrame:
    return acquiescence.pivot_table(index="method", columns=["questionnaire", "trait"], values="specific").round(3)


def frobenius_table(corr: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame({q: b["frobenius"] for q, b in corr["instruments"].items()}).round(3)


Administer = Callable[..., pd.DataFrame]  # administer_methods with the stage's models, conditions and params bound


@dataclass(frozen=True)
class ModeAgreement:
    pairs: pd.DataFrame = field(default_factory=pd.DataFrame)  # each answer of the other mode beside the run's own reading
    agreement: pd.DataFrame = field(default_factory=pd.DataFrame)  # per method and questionnaire
    domains: pd.DataFrame = field(default_factory=pd.DataFrame)  # domain score differences, generated minus log-prob
    items: dict[str, list[int]] = field(default_factory=dict)  # the items administered both ways

    def tables(self) -> dict[str, pd.DataFrame]:
        """The CSVs it is written as (empty with ``mode_agreement_items`` 0), by name."""
        return {"mode_pairs": self.pairs, "mode_agreement": self.agreement, "mode_domains": self.domains}


def mode_agreement(administer_in: Administer, scores: pd.DataFrame, instruments: dict[str, dict[str, Any]], mode: str, n_items: int,
                   record: dict[str, Any]) -> ModeAgreement:  # fmt: skip
    """The first ``n_items`` items of each questionnaire in the other mode (generation: one sampled run; log-prob: one
    forward) under every condition, paired with the run's own answers."""
    other = "generate" if mode == "logprob" else "logprob"
    subset = first_items(instruments, n_items)
    with rt.timed(record, "mode_agreement_s"):
        other_scores = score_answers(administer_in(mode=other, runs=1, desc=f"mode agreement ({other})", only_items=subset), instruments)
    logprob_scores, generated = (scores, other_scores) if mode == "logprob" else (other_scores, scores)
    pairs = modes.paired_answers(logprob_scores, generated)
    return ModeAgreement(pairs, modes.agreement_table(pairs), modes.domain_differences(pairs), subset)


def prompt_variation(administer_in: Administer, scores: pd.DataFrame, instruments: dict[str, dict[str, Any]], a: Any, answer: str, traits: list[str],
                     record: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, list[int]]]:  # fmt: skip
    """The first ``a.variant_items`` items of each questionnaire, for ``a.variant_methods``, under each other wording of
    ``a.prompt_variants``, beside the run's own answers to them: (variant table, spread over wordings, the items)."""
    items = first_items(instruments, a.variant_items)
    frames = [variant_rows(scores, list(a.variant_methods), items)]  # the run's own wording, same items
    with rt.timed(record, "prompt_variants_s"):
        for v in a.prompt_variants[1:]:
            frames.append(score_answers(administer_in(mode=a.mode, runs=a.runs, desc=f"prompt variant {v}", only_items=items, variant=v,
                                                      methods=a.variant_methods), instruments, answer))  # fmt: skip
    table = variants.variant_table(pd.concat(frames, ignore_index=True), traits)
    return table, variants.spread_table(table), items


def questionnaire_figures(summary: pd.DataFrame, paper: pd.DataFrame, domains: pd.DataFrame, corr: dict[str, Any], acquiescence: pd.DataFrame,
                          questionnaires: list[str], traits: list[str], ours: str) -> list[Path]:  # fmt: skip
    """The summary beside the paper's, the domain scores per condition (one per questionnaire), the correlation
    matrices and the acquiescence split, saved below the stage's figures folder."""
    figs = paths.FIGURES / STAGE
    saved = [storage.save_figure(qf.plot_summary(summary, paper, ours), figs / "questionnaire_summary.png")]
    saved += [storage.save_figure(qf.plot_conditions(domains, q, traits), figs / f"conditions_{q}.png") for q in questionnaires]
    saved.append(storage.save_figure(qf.plot_correlations(corr), figs / "correlations.png"))
    saved.append(storage.save_figure(qf.plot_acquiescence(acquiescence), figs / "acquiescence.png"))
    return saved


def run(cfg: dict[str, Any]) -> AssessPersonalityResult:
    """The stage: ``cfg`` holds the ``traits``, ``data``, ``assess_personality``, ``train_sft``, ``train_dpo``, ``steer``
    and ``runtime`` sections (``config.stage_config``)."""
    import matplotlib

    matplotlib.use("Agg")  # figures are saved as PNGs and shown from them, not drawn by the notebook's backend
    a, traits = cfg["assess_personality"], list(cfg["traits"])
    env = rt.setup(cfg["runtime"].threads, seed=a.seed)
    instruments = load_questionnaires(cfg["data"].instruments_dir, list(a.questionnaires))
    dialogues = pd.read_csv(paths.DATA.joinpath(*DIALOGUES), keep_default_na=False)
    demos = demo_sets(dialogues, a.n_demos, a.demo_seed)
    conds = conditions(a.methods, traits)
    print(f"{len(conds)} conditions x {len(instruments)} questionnaires, mode {a.mode}, backend {a.backend}")

    record: dict[str, Any] = {}
    models = MethodModels.load(list(a.methods), dtype=a.dtype, multiplier=cfg["steer"].multiplier, placement=placements(cfg), backend=a.backend)
    administer_in = partial(administer_methods, models, conds, instruments, demos, a)
    with rt.timed(record, "administer_s"):
        scores = administer_in(mode=a.mode, runs=a.runs, desc=STAGE)
    answer = answer_column(a)
    scores = score_answers(scores, instruments, answer)
    record["items_per_s"] = round(len(scores) / record["administer_s"], 1)
    outputs = {"scores": storage.write_csv(out_dir() / "scores.csv", scores)}
    print(f"{len(scores)} item answers, {record['items_per_s']} items/s")

    figures: list[Path] = []
    agreement = ModeAgreement()  # written empty when mode_agreement_items is 0
    if a.mode_agreement_items:
        agreement = mode_agreement(administer_in, scores, instruments, a.mode, a.mode_agreement_items, record)
        figures.append(storage.save_figure(plot_mode_agreement(agreement.agreement, agreement.domains), paths.FIGURES / STAGE / "mode_agreement.png"))
    for name, frame in agreement.tables().items():
        outputs[name] = storage.write_csv(out_dir() / f"{name}.csv", frame)

    variant_table, variant_spread, v_items = pd.DataFrame(), pd.DataFrame(), {}  # written empty with a single wording
    if len(a.prompt_variants) > 1:
        variant_table, variant_spread, v_items = prompt_variation(administer_in, scores, instruments, a, answer, traits, record)
        figures.append(storage.save_figure(plot_prompt_variants(variant_table), paths.FIGURES / STAGE / "prompt_variants.png"))
    outputs["prompt_variants"] = storage.write_csv(out_dir() / "prompt_variants.csv", variant_table)

    domains = report.domain_table(scores)
    outputs["domains"] = storage.write_csv(out_dir() / "domains.csv", domains)
    summary = report.method_summary(report.target_table(domains, traits))
    paper = report.paper_summary()

    separation = report.separation_table(scores, traits, a.bootstrap, a.seed)
    alpha = report.alpha_table(scores)
    acquiescence = report.acquiescence_table(scores, traits, a.bootstrap, a.seed, answer=answer)
    outputs["acquiescence"] = storage.write_csv(out_dir() / "acquiescence.csv", acquiescence)
    parse = parse_table(scores)
    print(separation.pivot_table(index="method", columns=["questionnaire", "trait"], values="diff").round(2))

    human = human_reference(a.human_responses)
    corr = report.correlations(domains, human, report.paper_model_of(models.base_dir))
    outputs["correlations"] = storage.write_json(out_dir() / "correlations.json", report.correlations_json(corr))
    print(f"human reference: {corr['human_source'] or 'none'} (n = {corr['human_n']})")

    size = report.size_label(models.base_dir)
    figures += questionnaire_figures(summary, paper, domains, corr, acquiescence, list(instruments), traits, f"ours ({size})")

    metrics = report.metrics(summary, separation, alpha, parse, corr, a.mode, acquiescence) | {"model_size": size}
    if len(agreement.agreement):
        metrics["mode_agreement"] = modes.metrics(agreement.agreement, agreement.items)
    if len(variant_table):
        metrics["prompt_variants"] = variants.metrics(variant_table, variant_spread, v_items)
    if models.vectors is not None:
        metrics["steer"] = {"multiplier": cfg["steer"].multiplier, "layers": models.vectors.layers}
    outputs["metrics"] = storage.write_json(paths.METRICS / f"{STAGE}.json", metrics)
    outputs["run_record"] = rt.write_run_record(STAGE, record | {"answers": len(scores)}, env)
    return AssessPersonalityResult(scores, domains, summary, paper, separation, acquiescence, alpha, agreement.agreement, variant_table, variant_spread,
                                   corr, figures, metrics, record, outputs)  # fmt: skip
