"""High/low labels, the seeded train/test split and scenario sampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from big5chat.data import corpus


def _posts(n: int = 200, seed: int = 0, authors: int | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"message_id": [f"p{i}" for i in range(n)], "message": ["text"] * n})
    for col in ("ope_z", "con_z", "ext_z", "agr_z", "neu_z"):
        df[col] = rng.normal(size=n)
    if authors:
        df["author_id"] = [f"a{i % authors}" for i in range(n)]
    return df


def test_median_split_labels_above_median_high() -> None:
    z = np.array([-2.0, -1.0, 0.0, 1.0, 2.0, 3.0])
    th = corpus.level_thresholds(z, "median")
    assert th.low_max == th.high_min == 0.5
    assert list(corpus.assign_levels(z, th)) == ["low", "low", "low", "high", "high", "high"]


def test_tercile_split_drops_the_middle() -> None:
    z = np.arange(9, dtype=float)
    levels = corpus.assign_levels(z, corpus.level_thresholds(z, "tercile"))
    assert list(levels) == ["low"] * 3 + [""] * 3 + ["high"] * 3


def test_label_corpus_is_seeded_and_sized() -> None:
    df = _posts()
    a, summary = corpus.label_corpus(df, method="median", test_size=0.05, seed=42)
    b, _ = corpus.label_corpus(df, method="median", test_size=0.05, seed=42)
    c, _ = corpus.label_corpus(df, method="median", test_size=0.05, seed=7)
    assert (a["split"] == b["split"]).all() and not (a["split"] == c["split"]).all()
    assert summary["n_test"] == 10
    for t in ("openness", "neuroticism"):
        counts = summary["traits"][t]["counts"]
        assert sum(counts["train"].values()) + sum(counts["test"].values()) == 200
        assert (a[f"{t}_level"] != "").all()


def test_split_by_author_keeps_authors_together() -> None:
    df = _posts(authors=40)
    out, _ = corpus.label_corpus(df, method="median", test_size=0.1, seed=42, by_author=True)
    per_author = out.groupby("author_id")["split"].nunique()
    assert (per_author == 1).all()
    assert 0 < (out["split"] == "test").sum() < len(out)


def test_split_by_author_needs_author_ids() -> None:
    with pytest.raises(ValueError, match="needs an author_id"):
        corpus.label_corpus(_posts(), method="median", test_size=0.1, seed=1, by_author=True)


def test_scenario_sampling_matches_pandas_and_refuses_too_many() -> None:
    df = pd.DataFrame({"original_index": range(100)})
    s = corpus.sample_scenarios(df, 10, 42)
    assert list(s["original_index"]) == list(df.sample(10, replace=False, random_state=42)["original_index"])
    with pytest.raises(ValueError, match="asked for 101 scenarios but the source has only 100"):
        corpus.sample_scenarios(df, 101, 42)


def test_level_corpus_labels_come_from_the_levels_and_missing_stays_missing() -> None:
    df = pd.DataFrame({
        "message_id": [f"p{i}" for i in range(8)], "message": ["text"] * 8,
        "ope_level": ["high", "low", None, "median", None, None, None, None],
        "con_level": [None, None, "high", None, "low", None, None, None],
        "ext_level": [None] * 5 + ["high", None, None],
        "agr_level": [None] * 6 + ["low", None],
        "neu_level": [None] * 8,  # the last post is labelled for nothing: dropped and counted
    })  # fmt: skip
    out, summary = corpus.label_corpus(df, method="median", test_size=0.25, seed=0)
    assert summary["labels"] == "level" and summary["unlabelled_dropped"] == 1 and len(out) == 7
    assert list(out["openness_level"]) == ["high", "low", "", "", "", "", ""]
    np.testing.assert_array_equal(out["openness_target"].to_numpy(), [1.0, 0.0, np.nan, np.nan, np.nan, np.nan, np.nan])
    assert summary["traits"]["openness"]["labelled"] == 3 and summary["traits"]["openness"]["dropped_middle"] == 1
    assert summary["traits"]["neuroticism"]["labelled"] == 0
    assert np.isnan(out["neuroticism_target"]).all()


def test_z_corpus_with_missing_values_labels_only_the_present_ones() -> None:
    df = _posts(20)
    df.loc[:9, "ope_z"] = np.nan
    out, summary = corpus.label_corpus(df, method="median", test_size=0.2, seed=0)
    assert summary["labels"] == "z" and summary["traits"]["openness"]["labelled"] == 10
    assert (out.loc[:9, "openness_level"] == "").all() and out.loc[:9, "openness_target"].isna().all()
    present = df["ope_z"].iloc[10:].to_numpy()
    assert sorted(out["openness_level"].iloc[10:]) == ["high"] * 5 + ["low"] * 5  # the median of the labelled ones
    from scipy.stats import norm

    np.testing.assert_allclose(out["openness_target"].iloc[10:].to_numpy(), norm.cdf(present))
