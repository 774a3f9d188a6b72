"""Mode agreement: the same items scored by option probabilities and by parsed sampled replies, on hand-made answers;
the first-items subset covers every domain; the figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from big5chat.data.loaders import load_questionnaires
from big5chat.psychometrics import modes


def _answers() -> tuple[pd.DataFrame, pd.DataFrame]:
    base = {"method": "sft", "condition": "sft:openness:high", "trait": "openness", "level": "high", "questionnaire": "BFI"}
    lp = pd.DataFrame([{**base, "item": i, "domain": d, "argmax": a, "raw": e, "score": s}
                       for i, d, a, e, s in [(1, "E", 4, 3.8, 3.8), (2, "A", 2, 2.4, 3.6), (3, "C", 3, 3.0, 3.0), (4, "N", 5, 4.6, 4.6)]])  # fmt: skip
    gen = pd.DataFrame([{**base, "item": i, "domain": d, "run": 0, "raw": r, "parsed": not np.isnan(r), "reply": t, "score": s}
                        for i, d, r, t, s in [(1, "E", 4.0, "4", 4.0), (2, "A", 3.0, "3", 3.0), (3, "C", np.nan, "I'm sorry, I cannot answer that.", np.nan),
                                              (4, "N", 1.0, "1", 1.0)]])  # fmt: skip
    return lp, gen


def test_agreement_counts_unparsed_and_refusals_and_never_imputes() -> None:
    lp, gen = _answers()
    pairs = modes.paired_answers(lp, gen)
    assert list(pairs["agree"]) == [True, False, False, False] and list(pairs["within_1"]) == [True, True, False, False]
    assert list(pairs["refusal"]) == [False, False, True, False]
    t = modes.agreement_table(pairs).iloc[0]
    assert (t["answers"], t["unparsed"], t["refusals"]) == (4, 1, 1)
    assert t["parsed"] == 0.75 and t["agreement"] == pytest.approx(1 / 3) and t["agreement_all"] == 0.25 and t["within_1"] == pytest.approx(2 / 3)
    dom = modes.domain_differences(pairs).set_index("domain")
    assert "C" not in dom.index  # the unparsed item has no generated score: left out, not imputed
    assert dom.loc["A", "diff"] == pytest.approx(3.0 - 3.6) and dom.loc["N", "diff"] == pytest.approx(1.0 - 4.6)
    assert t["domain_abs_diff"] == pytest.approx((0.2 + 0.6 + 3.6) / 3)
    m = modes.metrics(modes.agreement_table(pairs), {"BFI": [1, 2, 3, 4]})
    assert m["items"] == {"BFI": 4} and m["by_method"]["sft"]["BFI"]["unparsed"] == 1


def test_first_items_cover_every_domain() -> None:
    inst = load_questionnaires("data/instruments")
    subset = modes.first_items(inst, 5)
    for q, items in subset.items():
        domains = {r["domain"] for r in inst[q]["items"].rows if r["item"] in items}
        assert items == [1, 2, 3, 4, 5] and domains == set("OCEAN"), q


def test_administer_takes_an_item_subset_in_both_modes() -> None:
    from big5chat.psychometrics.administer import administer
    from big5chat.psychometrics.conditions import Condition

    inst = {"BFI": load_questionnaires("data/instruments")["BFI"]}
    calls: list[int] = []

    def sample(groups: list) -> list[list[str]]:
        calls.extend(len(convs) for convs, _ in groups)
        return [["4"] * len(convs) for convs, _ in groups]

    out = administer(None, None, [Condition("direct")], inst, mode="generate", runs=1, only_items={"BFI": [1, 2, 3]}, sampler=sample)
    assert list(out["item"]) == [1, 2, 3] and calls == [3] and list(out["raw"]) == [4, 4, 4]


def test_mode_agreement_figure(tmp_path: Path) -> None:
    from big5chat.reporting.figures import plot_mode_agreement

    lp, gen = _answers()
    pairs = modes.paired_answers(lp, gen)
    fig = plot_mode_agreement(modes.agreement_table(pairs), modes.domain_differences(pairs))
    fig.savefig(tmp_path / "m.png")
    assert (tmp_path / "m.png").stat().st_size > 10_000


def test_prompt_variants_render_and_summarise(tmp_path: Path) -> None:
    from big5chat.psychometrics import variants
    from big5chat.psychometrics.conditions import Condition, messages
    from big5chat.reporting import page
    from big5chat.reporting.figures import plot_prompt_variants

    assert messages(Condition("direct"), "Rate it.", "Is talkative.", variant="study")[0]["content"] == "Rate it.\n Is talkative"
    assert messages(Condition("direct"), "Rate it.", "Is talkative.", variant="plain_item")[0]["content"] == "Rate it.\nIs talkative."
    assert (
        messages(Condition("direct"), "Rate it.", "Is talkative.", variant="statement_first")[0]["content"] == 'Statement: "Is talkative."\nRate it.'
    )
    with pytest.raises(ValueError, match="unknown prompt variant 'nope'"):
        variants.body("nope", "p", "i", "t")
    rows = []
    for v, shift in (("study", 0.0), ("answer_cue", 0.5)):
        for t, letter in (("openness", "O"), ("extraversion", "E")):
            for lvl, s in (("high", 4.0), ("low", 2.0)):
                for item, dom in ((1, letter), (2, letter), (3, "N")):
                    rows.append({"variant": v, "method": "prompt_inst", "questionnaire": "BFI", "trait": t, "level": lvl, "condition": f"{t}:{lvl}",
                                 "run": 0, "item": item if dom != "N" else 9, "domain": dom, "score": s + shift + 0.1 * item})  # fmt: skip
    table = variants.variant_table(pd.DataFrame(rows), ["openness", "extraversion"]).set_index("variant")
    assert table.loc["study", "gap"] == pytest.approx(2.0) and table.loc["answer_cue", "gap"] == pytest.approx(2.0)
    assert table.loc["answer_cue", "mean_score"] - table.loc["study", "mean_score"] == pytest.approx(0.5)
    spread = variants.spread_table(table.reset_index())
    assert spread.iloc[0]["mean_score_range"] == pytest.approx(0.5) and spread.iloc[0]["gap_range"] == pytest.approx(0.0)
    m = variants.metrics(table.reset_index(), spread, {"BFI": [1, 2]})
    text = "\n".join(page.variants_section({"assess_personality": {"prompt_variants": m}}))
    assert "| answer_cue | Prompt-Inst | BFI | +2.000 |" in text and "mean score 0.50" in text
    fig = plot_prompt_variants(table.reset_index())
    fig.savefig(tmp_path / "v.png")
    assert (tmp_path / "v.png").stat().st_size > 10_000
