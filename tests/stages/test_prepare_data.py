"""The prepare_data stage: the split tables and metrics from a split summary, the seeded subset, the instrument
summary, and run() on the sample data (a seeded 300 of its posts)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from big5chat import paths
from big5chat.config import PrepareDataConfig, RuntimeConfig, stage_config
from big5chat.data.corpus import label_corpus
from big5chat.data.tables import Table
from big5chat.stages import prepare_data as stage
from big5chat.traits import TRAITS, Z_COLUMN


def _z_posts(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    posts = pd.DataFrame({"message_id": [f"m{i}" for i in range(n)], "message": [f"post {i}" for i in range(n)]})
    for t in TRAITS:
        posts[Z_COLUMN[t]] = rng.normal(size=n)
    return posts


def test_split_tables_and_metrics_from_a_tercile_summary() -> None:
    labelled, summary = label_corpus(_z_posts(), method="tercile", test_size=0.25, seed=3)
    counts = stage.split_counts(summary)
    assert list(counts.index) == list(TRAITS)
    levels = ["train_high", "train_low", "test_high", "test_low"]
    assert list(counts.columns) == [*levels, "labelled", "missing", "dropped_middle", "low_max", "high_min"]
    o = summary["traits"]["openness"]
    assert stage.level_counts(o) == {"train_high": o["counts"]["train"]["high"], "train_low": o["counts"]["train"]["low"],
                                     "test_high": o["counts"]["test"]["high"], "test_low": o["counts"]["test"]["low"]}  # fmt: skip
    levels = labelled["openness_level"]
    assert counts.loc["openness", "train_high"] == ((levels == "high") & (labelled["split"] == "train")).sum()
    assert counts.loc["openness", "dropped_middle"] > 0  # the tercile split leaves out the middle third
    split = stage.split_metrics(summary)
    assert "counts" not in split["openness"] and split["openness"]["test_low"] == o["counts"]["test"]["low"]
    assert split["openness"]["low_max"] == o["low_max"] and split["openness"]["high_min"] == o["high_min"]


def test_level_labels_have_no_thresholds_in_the_table() -> None:
    posts = pd.DataFrame({"message": [f"post {i}" for i in range(12)], "ope_level": ["high", "low", "median", None] * 3,
                          "con_level": ["high", None, None, "low"] * 3})  # fmt: skip
    for t in TRAITS[2:]:
        posts[f"{t[:3]}_level"] = None
    _, summary = label_corpus(posts, method="median", test_size=0.25, seed=0)
    counts = stage.split_counts(summary)
    assert "low_max" not in counts.columns
    assert counts.loc["openness", ["labelled", "missing", "dropped_middle"]].tolist() == [9, 3, 3]  # the median rows are left out
    assert counts.loc["openness", ["train_high", "train_low", "test_high", "test_low"]].sum() == 6
    assert counts.loc["extraversion"].tolist() == [0, 0, 0, 0, 0, 12, 0]


def test_subsample_is_seeded_and_keeps_a_small_corpus_whole() -> None:
    posts = _z_posts(30)
    a, b = stage.subsample(posts, 10, 5), stage.subsample(posts, 10, 5)
    assert a.equals(b) and len(a) == 10 and list(a.index) == list(range(10))
    assert a["message_id"].tolist() == posts.sample(n=10, random_state=5)["message_id"].tolist()
    assert stage.subsample(posts, None, 5) is posts and stage.subsample(posts, 30, 5) is posts


def test_instrument_summary_counts_items_and_reverse_keyed_ones() -> None:
    items = Table("bfi.csv", "items", [{"reverse": True}, {"reverse": False}, {"reverse": True}])
    assert stage.instrument_summary({"BFI": {"items": items}}) == {"BFI": {"items": 3, "reverse": 2}}


@pytest.fixture
def outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, sub in {"PROCESSED": "data/processed", "REPORTS": "reports", "METRICS": "reports/metrics", "FIGURES": "reports/figures"}.items():
        monkeypatch.setattr(paths, name, tmp_path / sub)
    return tmp_path


def test_run_on_the_sample_data_writes_the_processed_files(outputs: Path) -> None:
    cfg = stage_config(traits=None, data=None) | {"prepare_data": PrepareDataConfig(max_posts=300, n_scenarios=5), "runtime": RuntimeConfig()}
    result = stage.run(cfg)
    posts = pd.read_csv(outputs / "data/processed/posts.csv", keep_default_na=False)
    m = result.metrics
    assert m["posts"]["used"] == len(posts) <= 300 < m["posts"]["loaded"] and m["posts"]["test"] == (posts["split"] == "test").sum()
    assert m == json.loads((outputs / "reports/metrics/prepare_data.json").read_text())
    assert m["scenarios"]["sampled"] == 5 and m["scenarios"]["available"] > 5
    assert len(result.scenarios) == 5 and result.scenario_preview.shape == (3, 5)
    written = [json.loads(line) for line in (outputs / "data/processed/scenarios.jsonl").read_text().splitlines()]
    assert [r["original_index"] for r in written] == result.scenarios["original_index"].tolist()
    manifest = json.loads((outputs / "data/processed/manifest.json").read_text())
    assert manifest["inputs"][1]["rows"] == m["scenarios"]["available"] and manifest["inputs"][0]["rows"] == m["posts"]["loaded"]
    assert [i["input"] for i in manifest["inputs"]][:2] == ["posts", "scenarios"] and len(manifest["inputs"]) == len(result.inputs)
    assert len(manifest["inputs"]) == 2 + len(cfg["data"].benchmarks) + len(result.instruments) and all(i["sha256"] for i in manifest["inputs"])
    assert manifest["split"]["n_posts"] == len(posts) and manifest["scenario_seed"] == 42
    assert set(result.benchmarks) == set(cfg["data"].benchmarks) and result.instruments["BFI"]["items"] == 44
    assert result.figures == [outputs / "reports/figures/prepare_data/labels.png"] and result.figures[0].stat().st_size > 0
    assert list(result.counts.index) == list(cfg["traits"]) and (outputs / "reports/runs/prepare_data.json").is_file()
