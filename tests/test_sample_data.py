"""The sample data the project wrote itself: sizes, balance, the corpus rules, honest labels, exact rebuilds."""

from __future__ import annotations

from collections import Counter

from big5chat import paths
from big5chat.data import loaders
from big5chat.data.authored_rules import HELDOUT_TOPICS, TRAINING_TOPICS, folder_problems, record_problems
from big5chat.data.sample_corpus import HELDOUT_FILE, POSTS_FILE, build_sample_posts, read_authored
from big5chat.traits import LEVEL_COLUMN, TRAITS


def test_authored_posts_are_balanced_over_the_ten_arms() -> None:
    authored = read_authored(paths.SAMPLE / "authored")
    arms = Counter((r["trait"], r["level"]) for r in authored)
    assert len(arms) == 10 and min(arms.values()) >= 150, arms
    assert len({r["message"] for r in authored}) == len(authored), "duplicate posts"
    heldout = read_authored(paths.SAMPLE / "heldout")
    arms = Counter((r["trait"], r["level"]) for r in heldout)
    assert len(arms) == 10 and min(arms.values()) >= 25, arms
    assert not {r["message"] for r in heldout} & {r["message"] for r in authored}, "a held-out post is also a training post"


def test_authored_posts_follow_the_corpus_rules() -> None:
    problems = folder_problems(paths.SAMPLE / "authored", heldout=False) + folder_problems(paths.SAMPLE / "heldout", heldout=True)
    assert not problems, "\n".join(problems[:20])
    assert not set(TRAINING_TOPICS) & set(HELDOUT_TOPICS)
    for folder, topics in (("authored", TRAINING_TOPICS), ("heldout", HELDOUT_TOPICS)):
        used = Counter((r["topic"], r["level"]) for r in read_authored(paths.SAMPLE / folder))
        assert {t for t, _ in used} == set(topics), f"{folder}: every topic is used"
    lengths = [len(r["message"].split()) for r in read_authored(paths.SAMPLE / "authored")]
    assert sum(n <= 12 for n in lengths) > 0.2 * len(lengths) and sum(n >= 30 for n in lengths) > 0.2 * len(lengths)


def test_the_rules_catch_trait_words_lengths_and_topics() -> None:
    ok = {"trait": "extraversion", "level": "high", "topic": "friends", "message": "Stayed at the karaoke bar until close again"}
    assert record_problems(ok, heldout=False) == []
    assert "forbidden word(s) ['outgoing']" in record_problems(ok | {"message": "I am so outgoing at every party lately"}, heldout=False)[0]
    assert "forbidden word(s) ['introverted']" in record_problems(ok | {"message": "Introverted me skipped the party tonight"}, heldout=False)[0]
    assert "3 words" in record_problems(ok | {"message": "party all night"}, heldout=False)[0]
    assert "not a held-out topic" in record_problems(ok, heldout=True)[0]
    # A word that merely contains a forbidden one is fine ("calmer" is not, "shyly" is not "shy"...; "kindle" is fine).
    assert record_problems(ok | {"message": "Read three chapters on my kindle before the party"}, heldout=False) == []


def test_sample_csvs_are_the_seeded_build_of_the_authored_posts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    for folder in ("authored", "heldout"):
        shutil.copytree(paths.SAMPLE / folder, tmp_path / folder)
    build_sample_posts(tmp_path)
    for name in (POSTS_FILE, HELDOUT_FILE):
        assert (tmp_path / name).read_text() == (paths.SAMPLE / name).read_text(), "run `python -m big5chat build-sample`"


def test_each_post_is_labelled_only_for_the_trait_it_expresses() -> None:
    for name, folder in ((POSTS_FILE, "authored"), (HELDOUT_FILE, "heldout")):
        authored = {r["message"]: r for r in read_authored(paths.SAMPLE / folder)}
        table = loaders.load_posts(paths.SAMPLE / name)
        assert len(table) == len(authored)
        for row in table.rows:
            arm = authored[row["message"]]
            assert row[LEVEL_COLUMN[arm["trait"]]] == arm["level"]
            assert all(row[LEVEL_COLUMN[t]] is None for t in TRAITS if t != arm["trait"]), "an invented label"


def test_scenarios_and_benchmarks_are_big_enough() -> None:
    scen = loaders.load_scenarios(paths.SAMPLE / "soda_scenarios.jsonl")
    assert len(scen) >= 60
    assert all(r["PersonX"] != r["PersonY"] for r in scen.rows)
    for task in ("gsm8k", "mathqa", "commonsense_qa", "piqa", "social_iqa", "truthfulqa_mc", "mmlu", "gpqa"):
        assert len(loaders.load_benchmark(task, paths.SAMPLE / "benchmarks" / f"{task}.jsonl")) >= 25
