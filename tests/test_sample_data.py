"""The sample data the project wrote itself: sizes, balance, schemas, and that posts.csv is rebuilt exactly."""

from __future__ import annotations

from collections import Counter

from big5chat import paths
from big5chat.data import loaders
from big5chat.data.sample_corpus import build_rows, read_authored, write_csv
from big5chat.traits import TRAITS, Z_COLUMN


def test_authored_posts_are_balanced_over_the_ten_arms() -> None:
    authored = read_authored(paths.SAMPLE / "authored")
    arms = Counter((r["trait"], r["level"]) for r in authored)
    assert len(arms) == 10 and min(arms.values()) >= 50, arms
    assert len({r["message"] for r in authored}) == len(authored), "duplicate posts"
    assert all(len(r["message"].split()) > 5 for r in authored), "posts of <= 5 words are dropped by the expert data"


def test_posts_csv_is_the_seeded_build_of_the_authored_posts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "posts.csv"
    write_csv(build_rows(read_authored(paths.SAMPLE / "authored")), out)
    assert out.read_text() == (paths.SAMPLE / "posts.csv").read_text(), "run `python -m big5chat build-sample`"


def test_z_scores_follow_the_expressed_trait() -> None:
    authored = {r["message"]: r for r in read_authored(paths.SAMPLE / "authored")}
    for row in loaders.load_posts(paths.SAMPLE / "posts.csv").rows:
        arm = authored[row["message"]]
        z = row[Z_COLUMN[arm["trait"]]]
        assert (z > 0.5) if arm["level"] == "high" else (z < -0.5)
        others = [abs(row[Z_COLUMN[t]]) for t in TRAITS if t != arm["trait"]]
        assert max(others) < 1.5


def test_scenarios_and_benchmarks_are_big_enough() -> None:
    scen = loaders.load_scenarios(paths.SAMPLE / "soda_scenarios.jsonl")
    assert len(scen) >= 60
    assert all(r["PersonX"] != r["PersonY"] for r in scen.rows)
    for task in ("gsm8k", "mathqa", "commonsense_qa", "piqa", "social_iqa", "truthfulqa_mc", "mmlu", "gpqa"):
        assert len(loaders.load_benchmark(task, paths.SAMPLE / "benchmarks" / f"{task}.jsonl")) >= 25
