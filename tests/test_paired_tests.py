"""The significance of level-accuracy comparisons (evaluation.paired_tests, computed by big5chat.statistics) and how the
report page reads it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from big5chat.evaluation.paired_tests import compare_methods
from big5chat.reporting import page
from big5chat.statistics import binomial_p, mcnemar_exact, wilson_interval


@pytest.mark.parametrize(("hits", "n"), [(67, 100), (0, 12), (12, 12), (3, 40)])
def test_wilson_interval_is_the_inverted_score_test(hits: int, n: int) -> None:
    """The Wilson interval is every p0 whose score test |p - p0| / sqrt(p0 (1 - p0) / n) stays within 1.96."""
    grid = np.linspace(1e-6, 1 - 1e-6, 200_001)
    inside = grid[np.abs(hits / n - grid) / np.sqrt(grid * (1 - grid) / n) <= 1.959964]
    lo, hi = wilson_interval(hits, n)
    assert lo == pytest.approx(inside.min(), abs=1e-4)
    assert hi == pytest.approx(inside.max(), abs=1e-4)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_mcnemar_counts_only_the_discordant_items() -> None:
    # 10 items only a hits, 2 only b hits, 30 both, 8 neither: p = 2 * P(X <= 2 | 12, 1/2) = 2 * (1 + 12 + 66) / 4096
    a = [True] * 10 + [False] * 2 + [True] * 30 + [False] * 8
    b = [False] * 10 + [True] * 2 + [True] * 30 + [False] * 8
    out = mcnemar_exact(a, b)
    assert (out["n"], out["a_only"], out["b_only"]) == (50, 10, 2)
    assert out["p"] == pytest.approx(2 * 79 / 4096)
    assert mcnemar_exact(a, a)["p"] == 1.0  # nothing discordant: no evidence either way
    with pytest.raises(ValueError, match="differ in length"):
        mcnemar_exact(a, b[:-1])


def test_compare_methods_reports_both_accuracies_and_the_paired_test() -> None:
    a = np.r_[np.ones(67), np.zeros(33)].astype(bool)
    b = np.r_[np.ones(52), np.zeros(48)].astype(bool)
    out = compare_methods("expert", a, "prompting", b)
    assert out["expert"]["accuracy"] == 0.67 and out["prompting"]["accuracy"] == 0.52
    assert out["expert"]["p_vs_chance"] == round(binomial_p(67, 100), 4) < 0.001
    assert (out["expert_only"], out["prompting_only"]) == (15, 0)
    assert out["mcnemar_p"] == round(2 * 0.5**15, 4)
    # the metrics files' 4-digit intervals, as the hand-written Wilson interval (z = 1.959964) gave them before scipy's
    assert out["expert"]["ci95"] == [0.5731, 0.7544] and out["prompting"]["ci95"] == [0.4232, 0.6154]
    edge = compare_methods("a", np.r_[np.ones(12), np.zeros(0)].astype(bool), "b", np.zeros(12, bool))
    assert edge["a"]["ci95"] == [0.7575, 1.0] and edge["b"]["ci95"] == [0.0, 0.2425] and edge["b"]["accuracy"] == 0.0
    empty = compare_methods("a", [], "b", [])
    assert empty["a"] == {"accuracy": None, "ci95": [None, None], "p_vs_chance": None} and empty["mcnemar_p"] == 1.0


def _metrics(expert: float, prompting: float, p: float, n: int = 100) -> dict:
    sig = {"expert": {"ci95": [expert - 0.1, expert + 0.1]}, "prompting": {"ci95": [prompting - 0.1, prompting + 0.1]}, "n": n, "mcnemar_p": p}
    return {"eval_experts": {"accuracy": {"overall": {"expert": expert, "prompting": prompting}}, "significance": sig}}


def test_a_lead_counts_only_when_the_paired_test_shows_it() -> None:
    found = {row[0][:20]: row[1:] for row in page.findings(_metrics(0.67, 0.52, 0.024))}
    nums, v = found["Expert generators be"]
    assert v == "reproduced" and "McNemar p = 0.024 over 100 items" in nums and "[57%, 77%]" in nums
    nums, v = {row[0][:20]: row[1:] for row in page.findings(_metrics(0.68, 0.50, 0.0, n=200))}["Expert generators be"]
    assert v == "reproduced" and "McNemar p < 0.0001 over 200 items" in nums  # the metrics round a tiny p to 0
    _, v = {row[0][:20]: row[1:] for row in page.findings(_metrics(0.60, 0.52, 0.2))}["Expert generators be"]
    assert v.startswith("no effect at this scale (McNemar p = 0.2 >= 0.05 over 100 items")
    _, v = {row[0][:20]: row[1:] for row in page.findings(_metrics(0.50, 0.55, 0.4))}["Expert generators be"]
    assert v == "not reproduced"


def test_the_study_protocol_row_reads_the_prefixes_of_the_target_level() -> None:
    """With by_prefix_lean recorded, the page adds the study's protocol (prefixes from a post of the target level)
    beside the stricter every-prefix check, with the turned-around half in its numbers."""
    m = _metrics(0.67, 0.52, 0.024, n=200)

    def side(e: float, p: float, mp: float) -> dict:
        return {
            "expert": {"accuracy": e, "ci95": [e - 0.1, e + 0.1]},
            "prompting": {"accuracy": p, "ci95": [p - 0.1, p + 0.1]},
            "n": 100,
            "mcnemar_p": mp,
        }

    m["eval_experts"]["by_prefix_lean"] = {"target_level": side(0.74, 0.72, 0.8), "other_level": side(0.60, 0.32, 0.001)}
    rows = {row[0][:20]: row for row in page.findings(m)}
    assert "stricter than the study" in rows["Expert generators be"][0] and rows["Expert generators be"][2] == "reproduced"
    f, nums, v = rows["... on prefixes from"]
    assert "the study's protocol" in f and "expert 74.0% [64%, 84%] vs prompting 72.0%" in nums
    assert "other level: expert 60.0% vs prompting 32.0%, McNemar p = 0.001" in nums
    assert v.startswith("no effect at this scale (difference below")
