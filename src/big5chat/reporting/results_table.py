"""The front page's results table: the default run's headline numbers, computed from the committed ``results/``.

``python -m big5chat results-table`` prints it; ``--write-readme`` puts it into README.md between the lines
``<!-- results:start -->`` and ``<!-- results:end -->``. ``tests/test_results_table.py`` checks that README's table
is the one ``results/`` gives, so a new default run that is committed without its table fails the tests.

Every number comes from ``results/metrics/`` (the paper's from ``data/paper/``), and every verdict from the same
rules as the report page's (``reporting.page``), shortened to its first words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from big5chat.methods import LABELS
from big5chat.paper import findings
from big5chat.psychometrics.report import paper_summary
from big5chat.reporting import page
from big5chat.reporting import results as res

START = "<!-- results:start -->"
END = "<!-- results:end -->"
PAPER_MODEL = "llama3_70b"  # the paper's headline model, whose gaps the table shows


class MarkersMissing(ValueError):
    """README.md has no results section to rewrite."""


def _pct(x: float) -> str:
    return f"{x:.1%}"


def _short(verdict: str) -> str:
    """A page verdict without its reason: "no effect at this scale (McNemar p ...)" -> "no effect at this scale"."""
    return verdict.split(" (")[0]


def _paired(a: float, b: float, sig: dict[str, Any] | None) -> str:
    """Two accuracies on the same items and their paired test: "74.0% vs 48.5% (McNemar p < 0.0001, 200 items)";
    the accuracies alone where the stage recorded no test."""
    nums = f"{_pct(a)} vs {_pct(b)}"
    return f"{nums} (McNemar p {page.p_text(sig['mcnemar_p'])}, {sig['n']} items)" if sig else nums


def _by_method(values: dict[str, float], fmt: str) -> str:
    """Values by method as "Prompt-Inst +0.12, SFT +0.40", the methods in the registry's order."""
    order = {m: i for i, m in enumerate(LABELS)}
    return ", ".join(f"{LABELS.get(k, k)} {format(values[k], fmt)}" for k in sorted(values, key=lambda k: order.get(k, len(order))))


def judge_row(tc: dict[str, Any], stated: dict[str, float]) -> list[str]:
    """The trait classifier that judges every generated text: its accuracy on the test posts and, where the run has
    them, on out-of-topic held-out posts."""
    sets = [("test", tc["test"])]
    if "heldout" in tc:
        sets.append(("out-of-topic", tc["heldout"]))
    return [f"Trait judge: mean accuracy over traits ({' / '.join(n for n, _ in sets)} posts)", " / ".join(_pct(s["mean_accuracy"]) for _, s in sets),
            f"{_pct(stated['classifier_accuracy'])} (test posts)", ""]  # fmt: skip


def experts_row(ev: dict[str, Any], stated: dict[str, float]) -> list[str]:
    e, p = ev["accuracy"]["overall"]["expert"], ev["accuracy"]["overall"]["prompting"]
    _, verdict = page.paired_comparison("expert", e, "prompting", p, ev.get("significance"))
    return ["Expert generators vs prompting: completions judged at the target level", _paired(e, p, ev.get("significance")),
            f"{_pct(stated['expert_accuracy'])} vs {_pct(stated['prompting_accuracy'])}", _short(verdict)]  # fmt: skip


def dialogue_rows(ed: dict[str, Any]) -> list[list[str]]:
    """DExperts and steered replies against prompting alone on the same scenarios."""
    sig = ed.get("significance") or {}
    p = ed["prompting"]["accuracy"]["overall"]
    d = ed["dexperts_on_baseline_scenarios"]["overall"]
    _, verdict = page.paired_comparison("dexperts", d, "prompting", p, sig.get("dexperts_vs_prompting"))
    rows = [["DExperts vs prompting: replies judged at the target level", _paired(d, p, sig.get("dexperts_vs_prompting")), "", _short(verdict)]]
    if "steer" in ed:
        st = ed["steer"]
        reached, fluent = page.steer_goal(st, ed["prompting"])
        outcome = "met" if reached and fluent else "not met" + ("" if fluent else ": replies not fluent")
        goal = f"goal ({page.STEER_GOAL:.0%} at fluent replies) {outcome}"
        rows.append(["Activation steering vs prompting: replies judged at the target level",
                     _paired(st["accuracy"]["overall"], p, sig.get("steer_vs_prompting")), "", goal])  # fmt: skip
    return rows


def questionnaire_rows(ap: dict[str, Any], paper_gaps: dict[tuple[str, str], float]) -> list[list[str]]:
    """Per questionnaire: each method's high-minus-low gap of the induced trait (the paper's 70B beside it), then its
    intra-trait correlations' distance to humans'."""
    rows = []
    s = ap.get("summary") or {}
    for q in dict.fromkeys(q for v in s.values() for q in v):
        gaps = page.questionnaire_gaps(s, q)
        theirs = {k: paper_gaps[(k, q)] for k in gaps if (k, q) in paper_gaps}
        verdict = _short(page.gap_verdict(gaps)) if {"sft", "prompt_inst"} <= set(gaps) else ""
        rows.append([f"{q}: high-minus-low gap of the induced trait (1-5 scale)", _by_method(gaps, "+.2f"),
                     f"70B: {_by_method(theirs, '+.2f')}" if theirs else "", verdict])  # fmt: skip
    for q, fro in (ap.get("frobenius") or {}).items():
        ours = {k: v for k, v in fro.items() if not k.startswith("paper_")}
        theirs = {k.removeprefix("paper_"): v for k, v in fro.items() if k.startswith("paper_")}
        verdict = _short(page.frobenius_verdict(fro, page.questionnaire_gaps(s, q))) if {"sft", "prompt_inst"} <= set(fro) else ""
        rows.append([f"{q}: Frobenius distance of the intra-trait correlations to humans'", _by_method(ours, ".2f"),
                     _by_method(theirs, ".2f"), verdict])  # fmt: skip
    return rows


def behaviour_row(bv: dict[str, Any]) -> list[str]:
    acc = {k: v["all"]["accuracy"] for k, v in bv["accuracy"].items() if "all" in v}
    return ["Questionnaire-taking model's free replies judged at the target level", _by_method(acc, ".0%"), "", ""]


def reasoning_rows(er: dict[str, Any]) -> list[list[str]]:
    sign = {"high": "+", "low": "-"}
    rows = []
    for trait, better, worse, b, w, verdict in page.reasoning_contrasts(er):
        label = trait[0].upper()
        rows.append([f"{'Higher' if better == 'high' else 'Lower'} {trait}, better reasoning (mean domain accuracy)",
                     f"{label}{sign[better]} {b:.3f} vs {label}{sign[worse]} {w:.3f}", "", _short(verdict)])  # fmt: skip
    return rows


def rows(m: dict[str, dict[str, Any]]) -> list[list[str]]:
    """The table's rows (result, this run, paper, verdict) for the metrics ``m`` has, by stage."""
    stated = findings()
    out = []
    if m.get("train_classifier"):
        out.append(judge_row(m["train_classifier"], stated))
    if m.get("eval_experts"):
        out.append(experts_row(m["eval_experts"], stated))
    if (m.get("eval_dialogues") or {}).get("prompting"):
        out += dialogue_rows(m["eval_dialogues"])
    if m.get("assess_personality"):
        p = paper_summary()
        p = p[p["model"] == PAPER_MODEL]
        out += questionnaire_rows(m["assess_personality"], {(r.method, r.questionnaire): r.gap for r in p.itertuples()})
    if (m.get("behavioural_validity") or {}).get("accuracy"):
        out.append(behaviour_row(m["behavioural_validity"]))
    if (m.get("evaluate_reasoning") or {}).get("domains"):
        out += reasoning_rows(m["evaluate_reasoning"])
    return out


def render(results: Path) -> str:
    """The markdown table of ``results`` (a ``results/`` folder) and a line that says where it comes from."""
    m = res.read_metrics(results)
    if not m:
        raise FileNotFoundError(f"{results / res.METRICS}: no metrics (run the pipeline: make_figures writes them)")
    base = ((m.get("prepare_models") or {}).get("base") or {}).get("name")
    model = f" (base model {base})" if base else ""
    lines = ["| result | this run | paper | verdict |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows(m)]
    lines += ["", f"Computed from `results/metrics/`{model} by `python -m big5chat results-table --write-readme`;",
              "verdicts by the report page's rules, shortened."]  # fmt: skip
    return "\n".join(lines)


def section(readme: str) -> str:
    """The text between the marker lines of ``readme`` (without them)."""
    lines = readme.split("\n")
    if START not in lines or END not in lines or lines.index(END) < lines.index(START):
        raise MarkersMissing(f"no results section: a line {START!r} and, below it, a line {END!r}")
    return "\n".join(lines[lines.index(START) + 1 : lines.index(END)])


def with_table(readme: str, table: str) -> str:
    """``readme`` with the text between its marker lines replaced by ``table``."""
    section(readme)  # the markers are there
    lines = readme.split("\n")
    return "\n".join(lines[: lines.index(START) + 1] + table.split("\n") + lines[lines.index(END) :])


def write_readme(readme: Path, results: Path) -> bool:
    """Rewrite ``readme``'s results section from ``results``; whether the file changed. Raises ``MarkersMissing``
    (and leaves the file alone) when it has no section."""
    from big5chat import storage

    old = readme.read_text(encoding="utf-8")
    new = with_table(old, render(results))
    if new != old:
        storage.write_text(readme, new)
    return new != old
