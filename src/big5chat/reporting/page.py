"""reports/README.md: one page with every figure, the run's settings and wall times, and the paper's findings
checked against this run's metrics (each verdict computed, never written by hand)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from big5chat import paths


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


# A finding counts as reproduced only when the ordering holds by a margin, not by noise at the third decimal.
MIN_ACCURACY_DIFF = 0.05  # classifier accuracy (share of texts at the target level)
MIN_GAP = 0.25  # questionnaire high-minus-low gap on the 1-5 scale that counts as an induced trait
MIN_GAP_DIFF = 0.1  # how much larger SFT's/DPO's gap must be than Prompt-Inst's
MIN_FROBENIUS_DIFF = 0.1
STEER_GOAL = 0.70  # issue 15: steered replies at the target level, judged by the classifier
MAX_EXTRA_DEGENERATE = 0.10  # steered replies stay fluent: at most 10 points more empty or looping replies than prompting's


def verdict(holds: bool, meaningful: bool, why_not: str) -> str:
    if not meaningful:
        return f"no effect at this scale ({why_not})"
    return "reproduced" if holds else "not reproduced"


def p_text(p: float) -> str:
    """A p-value as the page writes it after "p": "< 0.0001" where the metrics' 4-digit rounding left 0."""
    return "< 0.0001" if p < 1e-4 else f"= {p:.3g}"


def paired_comparison(
    a_name: str, a: float, b_name: str, b: float, sig: dict[str, Any] | None, shown: dict[str, str] | None = None
) -> tuple[str, str]:
    """(numbers, verdict) of "method a carries the target level better than b" on the same items.

    ``sig`` is `evaluation.paired_tests.compare_methods(a_name, ..., b_name, ...)` where the stage recorded it: then
    the numbers carry each accuracy's 95% interval and the exact McNemar p-value, and a lead counts only when that
    p-value is below ``ALPHA``, besides being at least ``MIN_ACCURACY_DIFF``. ``shown``: display names of the methods.
    """
    from big5chat.evaluation.paired_tests import ALPHA

    shown = shown or {}
    if not sig:
        nums = f"{shown.get(a_name, a_name)} {a:.1%} vs {shown.get(b_name, b_name)} {b:.1%}"
        return nums, verdict(a > b, abs(a - b) >= MIN_ACCURACY_DIFF or a <= b, f"difference below {MIN_ACCURACY_DIFF:.0%}")

    def with_ci(name: str, acc: float) -> str:
        lo, hi = sig[name]["ci95"]
        return f"{shown.get(name, name)} {acc:.1%} [{lo:.0%}, {hi:.0%}]"

    p = sig["mcnemar_p"]
    nums = f"{with_ci(a_name, a)} vs {with_ci(b_name, b)} (95% intervals); paired exact McNemar p {p_text(p)} over {sig['n']} items"
    if a <= b:
        return nums, verdict(False, True, "")
    if a - b < MIN_ACCURACY_DIFF:
        return nums, verdict(True, False, f"difference below {MIN_ACCURACY_DIFF:.0%}")
    return nums, verdict(p < ALPHA, p < ALPHA, f"McNemar p {p_text(p)} >= {ALPHA} over {sig['n']} items: a lead this sample cannot tell from chance")


def findings(m: dict[str, dict[str, Any] | None]) -> list[tuple[str, str, str]]:
    """(paper's finding, this run's numbers, verdict) for the findings whose metrics exist."""
    out: list[tuple[str, str, str]] = []
    ev = m.get("eval_experts")
    if ev:
        from big5chat.paper import findings as paper_findings

        stated = paper_findings()
        e, p = ev["accuracy"]["overall"]["expert"], ev["accuracy"]["overall"]["prompting"]
        paper = f"paper: {stated['expert_accuracy']:.1%} vs {stated['prompting_accuracy']:.1%}"
        lean = ev.get("by_prefix_lean")
        out.append((f"Expert generators beat prompting at writing a target trait level ({'every prefix completed at both levels, stricter than the study; ' if lean else ''}{paper})",
                    *paired_comparison("expert", e, "prompting", p, ev.get("significance"))))  # fmt: skip
        if lean:  # the study's protocol: each prefix completed at the level of the post it comes from
            same, other = lean["target_level"], lean["other_level"]
            nums, v = paired_comparison("expert", same["expert"]["accuracy"], "prompting", same["prompting"]["accuracy"], same)
            turned = (
                f"expert {other['expert']['accuracy']:.1%} vs prompting {other['prompting']['accuracy']:.1%}, McNemar p {p_text(other['mcnemar_p'])}"
            )
            out.append((f"... on prefixes from a post of the target level, the study's protocol ({paper})",
                        f"{nums}; on the prefixes from a post of the other level: {turned}", v))  # fmt: skip
    ed = m.get("eval_dialogues")
    if ed and "prompting" in ed:
        d, p = ed["dexperts_on_baseline_scenarios"]["overall"], ed["prompting"]["accuracy"]["overall"]
        nums, v = paired_comparison(
            "dexperts", d, "prompting", p, (ed.get("significance") or {}).get("dexperts_vs_prompting"), {"dexperts": "DExperts"}
        )
        out.append(("DExperts replies carry the target level better than prompting alone", f"{nums} (the same scenarios)", v))
    ap = m.get("assess_personality")
    if ap and ap.get("summary"):
        s = ap["summary"]
        for q in dict.fromkeys(q for v in s.values() for q in v):  # the questionnaires of the run, in their order
            gaps = questionnaire_gaps(s, q)
            if {"sft", "prompt_inst"} <= set(gaps):
                out.append((f"{q}: SFT and DPO separate high from low more than Prompt-Inst (paper, 70B: they do)",
                            "high-minus-low gap " + ", ".join(f"{k} {v:+.2f}" for k, v in gaps.items()), gap_verdict(gaps)))  # fmt: skip
        for q, fro in (ap.get("frobenius") or {}).items():
            if "sft" in fro and "prompt_inst" in fro:
                out.append((f"{q}: SFT's intra-trait correlations are closer to humans' than prompting's (Frobenius distance)",
                            f"SFT {fro['sft']:.2f}, Prompt-Inst {fro['prompt_inst']:.2f}" + (f", DPO {fro['dpo']:.2f}" if "dpo" in fro else ""),
                            frobenius_verdict(fro, questionnaire_gaps(s, q))))  # fmt: skip
    er = m.get("evaluate_reasoning")
    if er and er.get("domains"):
        sign = {"high": "+", "low": "-"}
        for trait, better, worse, b, w, v in reasoning_contrasts(er):
            label = trait[0].upper()
            out.append((f"{'Higher' if better == 'high' else 'Lower'} {trait} goes with better reasoning",
                        f"mean domain accuracy {label}{sign[better]} {b:.3f} vs {label}{sign[worse]} {w:.3f}", v))  # fmt: skip
    return out


def gap_verdict(gaps: dict[str, float]) -> str:
    """The verdict on "SFT and DPO separate high from low more than Prompt-Inst": ``gaps`` are the methods'
    high-minus-low gaps on one questionnaire (``sft`` and ``prompt_inst`` among them; a missing ``dpo`` does not hold)."""
    dpo = gaps.get("dpo", float("-inf"))
    holds = min(gaps["sft"], dpo) > gaps["prompt_inst"] + MIN_GAP_DIFF
    induced = max(abs(g) for g in gaps.values()) >= MIN_GAP
    return verdict(holds, induced, f"every gap below {MIN_GAP} points: no method induced the trait")


def frobenius_verdict(fro: dict[str, float], gaps: dict[str, float]) -> str:
    """The verdict on "SFT's intra-trait correlations are closer to humans' than prompting's" (``fro``: Frobenius
    distances to the human matrix by method; ``gaps``: the same questionnaire's high-minus-low gaps by method).

    A correlation matrix of answers that no condition moves is noise: the comparison is read only where some method
    induces the trait on this questionnaire (a gap of at least ``MIN_GAP``)."""
    responds = any(abs(g) >= MIN_GAP for g in gaps.values())
    why_not = f"every gap below {MIN_GAP} points: the questionnaire does not respond, its correlations are noise"
    return verdict(fro["sft"] < fro["prompt_inst"] - MIN_FROBENIUS_DIFF, responds, why_not)


def questionnaire_gaps(summary: dict[str, Any], questionnaire: str) -> dict[str, float]:
    """Each method's high-minus-low gap of the induced trait on one questionnaire (assess_personality's summary)."""
    return {k: v[questionnaire]["gap"] for k, v in summary.items() if questionnaire in v and v[questionnaire]["gap"] is not None}


def reasoning_contrasts(er: dict[str, Any]) -> list[tuple[str, str, str, float, float, str]]:
    """(trait, better level, worse level, mean domain accuracy at the better, at the worse, verdict) for the paper's
    "higher conscientiousness and lower neuroticism go with better reasoning", from evaluate_reasoning's metrics."""
    doms = er["domains"]

    def avg(trait: str, level: str) -> float:
        vals = [v for k, d in doms.items() if f":{trait}:{level}" in k for v in d.values() if v == v]
        return sum(vals) / len(vals) if vals else float("nan")

    n_items = max(er["items"].values()) if er.get("items") else None
    small = n_items is not None and n_items < 50
    out = []
    for trait, better, worse in (("conscientiousness", "high", "low"), ("neuroticism", "low", "high")):
        b, w = avg(trait, better), avg(trait, worse)
        if b == b and w == w:
            out.append((trait, better, worse, b, w, verdict(b > w, not small, f"at most {n_items} items per task: too few to tell")))
    return out


def steer_goal(st: dict[str, Any], pr: dict[str, Any]) -> tuple[bool, bool]:
    """(the steered replies reach ``STEER_GOAL``, they are fluent): eval_dialogues' ``steer`` and ``prompting``
    metrics. Fluency is relative to prompting's: the same model unsteered loops too at this size."""
    reference = pr.get("degenerate_rate") or 0.0
    fluent = (st.get("degenerate_rate") or 0.0) <= reference + MAX_EXTRA_DEGENERATE
    return st["accuracy"]["overall"] >= STEER_GOAL, fluent


def steering_section(m: dict[str, dict[str, Any] | None]) -> list[str]:
    """Method steer in free replies (beside prompting on the same scenarios) and every method's questionnaire gap split
    into the shift common to all items (acquiescence) and the trait-specific rest."""
    from big5chat.methods import LABELS

    ed, ap = m.get("eval_dialogues") or {}, m.get("assess_personality") or {}
    if "steer" not in ed and not ap.get("acquiescence"):
        return []
    lines = ["## Activation steering, and questionnaire gaps net of acquiescence", ""]
    if "steer" in ed:
        st, pr = ed["steer"], ed.get("prompting") or {}
        acc, p_acc = st["accuracy"]["overall"], (pr.get("accuracy") or {}).get("overall")
        reached, fluent = steer_goal(st, pr)
        lines += [f"Steered free replies (the base model without the trait description, its trait vector x{st['multiplier']:g} in the residual",
                  f"stream; {st['n']} replies) carry the target level in **{acc:.1%}** of replies, judged by the classifier"
                  + (f"; prompting on the same scenarios: {p_acc:.1%}" if p_acc is not None else "")
                  + (f" (paired exact McNemar p {p_text(sig['mcnemar_p'])})." if (sig := (ed.get("significance") or {}).get("steer_vs_prompting")) else "."),
                  f"Fluency: distinct-2 {st['distinct_2']:.2f}" + (f" (prompting {pr['distinct_2']:.2f})" if "distinct_2" in pr else "")
                  + f", degenerate (empty or looping) replies {st['degenerate_rate']:.0%}"
                  + (f" (prompting {pr['degenerate_rate']:.0%})" if "degenerate_rate" in pr else "") + ".",
                  f"Goal (at least {STEER_GOAL:.0%} at fluent replies: at most {MAX_EXTRA_DEGENERATE * 100:.0f} points more degenerate than prompting's): "
                  + ("**met**." if reached and fluent else "**not met**" + ("" if fluent else " (the replies are not fluent)") + "."), ""]  # fmt: skip
    acq = ap.get("acquiescence") or {}
    if acq:
        lines += ["Questionnaire gap (high minus low, induced trait's domain, 1-5 scale; mean over traits) split into the shift common to",
                  "every item whatever its keying (acquiescence; its size, as its sign differs between traits) and the trait-specific",
                  "rest; the last column counts the traits whose trait-specific part has a 95% bootstrap interval (over items) above 0.", "",
                  "| method | questionnaire | gap | common shift (mean of its size) | trait-specific | traits specific > 0 |", "|---|---|---|---|---|---|"]  # fmt: skip
        specific: set[str] = set()
        for method, per_q in acq.items():
            for q, per_t in per_q.items():
                vals = [v for v in per_t.values() if v.get("gap") is not None]
                if not vals:
                    continue

                gap, size, rest = (
                    sum(f(v) for v in vals) / len(vals) for f in (lambda v: v["gap"], lambda v: abs(v["common"]), lambda v: v["specific"])
                )
                above = sum(1 for v in vals if (v.get("specific_lo") or 0.0) > 0)
                if above > len(vals) / 2:
                    specific.add(LABELS.get(method, method))
                lines.append(f"| {LABELS.get(method, method)} | {q} | {gap:+.3f} | {size:.3f} | {rest:+.3f} | {above} of {len(vals)} |")
        lines += ["", "A questionnaire effect counts as trait-specific when the trait-specific part is above 0 for most traits: "
                  + (f"here for {', '.join(sorted(specific))}." if specific else "here for **no method**; what moves, moves every item alike."), ""]  # fmt: skip
    return lines


def mode_section(m: dict[str, dict[str, Any] | None]) -> list[str]:
    """The same items in both administration modes: how often the parsed reply is the option log-prob mode reads as
    most likely, what fails to parse, and how far domain scores move between the modes."""
    from big5chat.methods import LABELS

    ma = (m.get("assess_personality") or {}).get("mode_agreement") or {}
    if not ma.get("by_method"):
        return []
    items = ", ".join(f"{n} {q}" for q, n in ma["items"].items())
    lines = ["## Mode agreement: option probabilities vs sampled replies", "",
             f"The first items of each questionnaire ({items} items) answered both ways under every condition: the",
             "study's sampled reply (parsed for its leading number; unparsed replies and refusals counted, never imputed) against",
             "the option log-prob mode reads as most likely. Domain difference: generated minus log-prob domain score on the same",
             "items, mean of its size over conditions and domains (1-5 scale).", "",
             "| method | questionnaire | answers | parsed | refusals | agree (parsed) | agree (all) | within 1 (parsed) | domain difference |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip

    def pct(x: Any) -> str:
        return "" if x is None else f"{x:.0%}"

    for method, per_q in ma["by_method"].items():
        for q, v in per_q.items():
            dd = "" if v.get("domain_abs_diff") is None else f"{v['domain_abs_diff']:.2f}"
            lines.append(f"| {LABELS.get(method, method)} | {q} | {v['answers']} | {pct(v['parsed'])} | {v['refusals']} | {pct(v['agreement'])} | "
                         f"{pct(v['agreement_all'])} | {pct(v['within_1'])} | {dd} |")  # fmt: skip
    return [*lines, ""]


def variants_section(m: dict[str, dict[str, Any] | None]) -> list[str]:
    """The same items under other wordings of the questionnaire turn: gap, mean score and alpha per wording, and their
    spread."""
    from big5chat.methods import LABELS

    pv = (m.get("assess_personality") or {}).get("prompt_variants") or {}
    if not pv.get("variants"):
        return []

    def f(x: Any, fmt: str) -> str:
        return "n/a" if x is None else format(x, fmt)

    items = ", ".join(f"{n} {q}" for q, n in pv["items"].items())
    lines = ["## Prompt variation: other wordings of the questionnaire turn", "",
             f"The first items of each questionnaire ({items} items) under each wording (`psychometrics.variants`; the first is the",
             "run's own). Gap: the induced trait's domain score at high minus at low (mean over traits); alpha: Cronbach's alpha",
             "over the conditions, mean over domains (unstable, even outside [0, 1], where the conditions answer alike, as a small",
             "model's do). Item order is not varied: each item is its own chat.", "",
             "| wording | method | questionnaire | gap | mean item score | alpha |", "|---|---|---|---|---|---|"]  # fmt: skip
    for variant, per_m in pv["variants"].items():
        for method, per_q in per_m.items():
            for q, v in per_q.items():
                lines.append(
                    f"| {variant} | {LABELS.get(method, method)} | {q} | {f(v['gap'], '+.3f')} | {f(v['mean_score'], '.2f')} | {f(v['alpha'], '.2f')} |"
                )
    lines += ["", "Spread over wordings (range): " + "; ".join(
        f"{LABELS.get(method, method)} {q}: gap {f(v.get('gap_range'), '.3f')}, mean score {f(v.get('mean_score_range'), '.2f')}, alpha {f(v.get('alpha_range'), '.2f')}"
        for method, per_q in pv["spread"].items() for q, v in per_q.items()) + ".", ""]  # fmt: skip
    return lines


def behaviour_section(m: dict[str, dict[str, Any] | None]) -> list[str]:
    """The questionnaire-taking model's free replies judged per method (accuracy at high and low) and the pooled
    questionnaire-vs-judge correlation per trait; the human reference the intra-trait correlations used."""
    from big5chat.methods import LABELS

    bv, ap = m.get("behavioural_validity") or {}, m.get("assess_personality") or {}
    lines: list[str] = []
    if bv.get("accuracy"):
        n_rep = sum(v["all"]["n"] for v in bv["accuracy"].values() if "all" in v)
        lines += ["## Behavioural validity: the questionnaire-taking model's free replies", "",
                  f"Each method's model state (prompt, adapter or steering vector) answered {bv['scenarios']} held-out scenarios under every",
                  f"condition ({n_rep} conditioned replies, greedy); the trait classifier judged each. Accuracy: replies on the side of the",
                  "target level (chance 50%; 95% Wilson interval). Separation: the judged score of the induced trait at high minus",
                  "at low, paired by trait and scenario (95% t interval): free of the judge's base rate, which pushes accuracy at",
                  "high and at low in opposite directions. Degenerate: empty or looping replies.", "",
                  "| method | high | low | all | separation (high - low) | degenerate |", "|---|---|---|---|---|---|"]  # fmt: skip
        sep = bv.get("separation") or {}
        for method, per in bv["accuracy"].items():
            cells = [f"{per[lv]['accuracy']:.0%} [{per[lv]['lo']:.0%}, {per[lv]['hi']:.0%}]" if lv in per else "" for lv in ("high", "low", "all")]
            s_ = sep.get(method) or {}
            cells.append(f"{s_['diff']:+.2f} [{s_['lo']:+.2f}, {s_['hi']:+.2f}]" if s_.get("lo") is not None else "")
            deg = (bv.get("text") or {}).get(method, {}).get("degenerate_rate")
            lines.append(f"| {LABELS.get(method, method)} | {' | '.join(cells)} | {'' if deg is None else f'{deg:.0%}'} |")
        shown = [LABELS.get(k, k) for k, v in sep.items() if (v.get("lo") or 0.0) > 0]
        above = [LABELS.get(k, k) for k, v in bv["accuracy"].items() if (v.get("all", {}).get("lo") or 0.0) > 0.5]
        lines += ["", "The induced trait shows in the replies (separation interval above 0) for "
                  + (", ".join(shown) if shown else "**no method**") + "; judged accuracy above chance (interval above 50%) for "
                  + (", ".join(above) if above else "**no method**") + " at this sample size.", ""]  # fmt: skip
        for q, per_m in (bv.get("validity") or {}).items():
            pooled = per_m.get("all") or {}
            if not pooled:
                continue
            cells = [f"{t} {v['r']:+.2f} [{v['lo']:+.2f}, {v['hi']:+.2f}]" if v.get("r") is not None and v.get("lo") is not None else f"{t} n/a"
                     for t, v in pooled.items()]  # fmt: skip
            n = max(v["n"] for v in pooled.values())
            lines += [f"{q} score vs judged score of the replies, across conditions (all conditioned methods pooled, n = {n}; r, 95% CI): "
                      + "; ".join(cells) + ".", ""]  # fmt: skip
    if ap.get("human_source") or "human_n" in ap:
        lines += [f"Human reference for the intra-trait correlations: {ap.get('human_source') or 'none'} (n = {ap.get('human_n', 0)}).", ""]
    return lines


def build(figures: list[Path], params: dict[str, Any]) -> str:
    m = {p.stem: _load(p) for p in sorted(paths.METRICS.glob("*.json"))}
    runs = {p.stem: _load(p) for p in sorted((paths.REPORTS / "runs").glob("*.json"))}
    cards = {r: _load(paths.MODELS / r / "card.json") for r in ("base", "encoder")}
    lines = ["# BIG5-CHAT replication: this run", ""]
    lines += [f"Profile **{params.get('profile')}**. Regenerated by `dvc repro` (stage `make_figures`); every number below comes from",
              "the metrics of this run or from the paper's published result files (`data/paper/`).", ""]  # fmt: skip
    if params.get("profile") in ("default", "smoke"):
        lines += ["> On the project's sample data and a 135M model this run demonstrates the pipeline, not the science.", ""]
    lines += ["## Settings", "", "| what | value |", "|---|---|"]
    for role, c in cards.items():
        if c:
            lines.append(f"| {role} model | {c['name']} ({c['kind']}, {c['parameters']:,} parameters, {c['dtype']}) |")
    pd_ = m.get("prepare_data") or {}
    if pd_:
        lines.append(
            f"| posts | {pd_['posts']['used']} used ({pd_['posts']['test']} in test), split {params.get('prepare_data', {}).get('split_method')} |"
        )
        lines.append(f"| scenarios | {pd_['scenarios']['sampled']} sampled of {pd_['scenarios']['available']} |")
    tc = m.get("train_classifier") or {}
    if tc:
        judged = [f"test {tc['test']['mean_accuracy']:.1%} (AUC {tc['test']['mean_auc']:.2f}, {tc['test']['n_test']} posts)"]
        for key, name in (("heldout", "out-of-topic held-out"), ("reference", "real reference posts")):
            if key in tc:
                judged.append(f"{name} {tc[key]['mean_accuracy']:.1%} (AUC {tc[key]['mean_auc']:.2f}, {tc[key]['n']} posts)")
        lines.append(f"| trait judge (mean accuracy over traits, {tc.get('labels', 'z')} labels) | {'; '.join(judged)} |")
    ev = m.get("eval_experts") or {}
    if ev.get("design"):
        designs = sorted(set(ev["design"].values()))
        what = {"per_level": "one adapter per trait x level (DExperts' expert and anti-expert)",
                "single": "one expert per trait, the level a word in its instruction (the study's design)"}  # fmt: skip
        lines.append(f"| expert generators | {'; '.join(what.get(d, d) for d in designs)} |")
    gd = m.get("generate_dialogues") or {}
    if gd:
        lines.append(f"| dialogue dataset | {gd['rows']} replies from {gd['scenarios']} scenarios ({gd['source']}) |")
    seeds = {k: v.get("seed") for k, v in params.items() if isinstance(v, dict) and "seed" in v}
    lines.append(f"| seeds | {', '.join(f'{k} {v}' for k, v in seeds.items())} |")
    lines += ["", "## Wall time and peak memory per stage", "", "| stage | wall (s) | peak RSS (MiB) |", "|---|---|---|"]
    total = 0.0
    for name, r in runs.items():
        if not r:
            continue
        wall = sum(v for k, v in r.items() if k.endswith("_s") and isinstance(v, (int, float)))
        total += wall
        lines.append(f"| {name} | {wall:.0f} | {r.get('peak_rss_mib', '')} |")
    lines += [f"| **total (timed work, without kernel start-up)** | **{total:.0f}** | |", ""]
    lines += ["## The paper's findings, checked", "", "| finding | this run | verdict |", "|---|---|---|"]
    for f, nums, v in findings(m):
        lines.append(f"| {f} | {nums} | {v} |")
    lines += ["", *steering_section(m), *behaviour_section(m), *mode_section(m), *variants_section(m), "## Figures", ""]
    for f in figures:
        if f.is_file():
            rel = f.relative_to(paths.REPORTS).as_posix()
            lines += [f"### {f.stem.replace('_', ' ')}", "", f"![{f.stem}]({rel})", ""]
    nbs = sorted((paths.REPORTS / "notebooks").glob("*.ipynb"))
    lines += ["## Executed notebooks", ""] + [f"- [{n.stem}](notebooks/{n.name})" for n in nbs] + [""]
    return "\n".join(lines)
