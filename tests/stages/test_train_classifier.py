"""The train_classifier stage: the classifier card, the tables and metrics from the experiment's summaries, the
calibration bins, and run() on a tiny encoder (with a reference table and the split by author)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from big5chat import paths
from big5chat.classifier import metrics as cm
from big5chat.config import RuntimeConfig, TrainClassifierConfig
from big5chat.stages import train_classifier as stage
from big5chat.traits import TRAITS


def _summary(acc: float) -> dict:
    return {"n": 4, "mean_accuracy": acc, "mean_auc": 0.5, "traits": {t: {"accuracy": acc} for t in TRAITS}}


def test_the_card_names_targets_by_label_kind() -> None:
    c = TrainClassifierConfig(max_length=32)
    z, level = stage.classifier_card(c, "z", "enc"), stage.classifier_card(c, "level", "enc")
    assert z == {"max_length": 32, "long_texts": c.long_texts, "labels": "z", "encoder": "enc", "target": "norm.cdf(z)", "threshold": 0.5}
    assert level["target"] == "1 = high, 0 = low" and level["labels"] == "level"


def test_tables_and_metrics_from_the_summaries() -> None:
    c = TrainClassifierConfig()
    test, external = _summary(0.8), {"heldout": _summary(0.7), "reference": _summary(0.6)}
    table = stage.external_table(external)
    assert list(table.index) == ["heldout", "reference"] and list(table.columns) == ["n", "mean_accuracy", "mean_auc"]
    assert table.loc["reference", "mean_accuracy"] == 0.6
    assert stage.external_table({}).empty
    assert list(stage.accuracy_bars(test, external)) == ["test posts", "out-of-topic held-out posts", "real reference posts"]
    metrics = stage.classifier_metrics("level", c, test, external, None)
    assert list(metrics) == ["labels", "long_texts", "test", "heldout", "reference"]
    assert stage.classifier_metrics("z", c, test, {}, _summary(0.5))["test_by_author"]["mean_accuracy"] == 0.5


def test_authors_count_only_when_every_post_has_one() -> None:
    assert stage.has_authors(pd.DataFrame({"author_id": ["a", "b"]}))
    assert not stage.has_authors(pd.DataFrame({"author_id": ["a", ""]})) and not stage.has_authors(pd.DataFrame({"message": ["x"]}))


def test_calibration_bins_per_trait() -> None:
    rng = np.random.default_rng(0)
    pred, y = rng.uniform(size=(50, 2)), (rng.uniform(size=(50, 2)) > 0.5).astype(float)
    got = stage.calibration(pred, y, ("openness", "neuroticism"), bins=4)
    assert list(got) == ["openness", "neuroticism"] and got["neuroticism"] == cm.calibration_bins(pred[:, 1], y[:, 1], bins=4)


LOUD, QUIET = "a loud party with all my friends tonight", "a quiet evening alone with a book"


@pytest.fixture
def project(tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny encoder and 40 level-labelled posts by 8 authors, split by post; a 4-post reference table."""
    for name, sub in {"MODELS": "data/models", "PROCESSED": "data/processed", "REPORTS": "reports", "METRICS": "reports/metrics",
                      "FIGURES": "reports/figures"}.items():  # fmt: skip
        monkeypatch.setattr(paths, name, tmp_path / sub)
    shutil.copytree(tiny_models["encoder"], tmp_path / "data/models/encoder")
    n = 40
    level = ["high" if i % 2 else "low" for i in range(n)]
    posts = pd.DataFrame({"message_id": [f"{i:03d}" for i in range(n)], "message": [f"{LOUD if i % 2 else QUIET} {i}" for i in range(n)],
                          "author_id": [f"a{i % 8}" for i in range(n)], "split": ["train"] * 30 + ["test"] * 10})  # fmt: skip
    for t in TRAITS:
        posts[f"{t}_level"] = level if t == "extraversion" else ""
        posts[f"{t}_target"] = [1.0 if lvl == "high" else 0.0 for lvl in level] if t == "extraversion" else np.nan
    (tmp_path / "data/processed").mkdir(parents=True)
    posts.to_csv(tmp_path / "data/processed/posts.csv", index=False)
    manifest = {"split": {"labels": "level", "by_author": False, "test_size": 0.25}}
    (tmp_path / "data/processed/manifest.json").write_text(json.dumps(manifest))
    reference = {"message": [LOUD, QUIET, LOUD, QUIET], "ext_level": ["high", "low", "high", "low"]}
    pd.DataFrame(reference | {c: "" for c in ("ope_level", "con_level", "agr_level", "neu_level")}).to_csv(tmp_path / "reference.csv", index=False)
    return tmp_path


def test_run_trains_saves_and_judges_the_classifier(project: Path) -> None:
    c = TrainClassifierConfig(max_length=16, batch_size=8, epochs=1, frozen_layers=0, reference_posts=str(project / "reference.csv"))
    result = stage.run({"traits": list(TRAITS), "train_classifier": c, "runtime": RuntimeConfig(), "data.heldout_posts": None})
    saved = json.loads((project / "data/models/classifier/classifier.json").read_text())
    assert saved["labels"] == "level" and saved["encoder"] == "tiny-bert" and saved["traits"] == list(TRAITS)
    assert (project / "data/models/classifier/heads.safetensors").is_file()
    assert result.label_kind == "level" and list(result.external.index) == ["reference"] and result.external.loc["reference", "n"] == 4
    assert result.test.loc["extraversion", "n"] == 10 and len(result.epochs) == 1
    m = result.metrics
    written = json.loads((project / "reports/metrics/train_classifier.json").read_text())  # NaN (traits with no labels) as null
    assert list(m) == list(written) == ["labels", "long_texts", "test", "reference", "test_by_author"]  # posts carry authors, split by post
    assert written["test"]["traits"]["extraversion"] == m["test"]["traits"]["extraversion"]
    assert written["test"]["traits"]["openness"]["accuracy"] is None
    assert m["test"]["split"] == "by_post" and m["test_by_author"]["split"] == "by_author" and m["test"]["n_train"] + m["test"]["n_val"] == 30
    assert result.mean_accuracy == {"test": m["test"]["mean_accuracy"], "reference": m["reference"]["mean_accuracy"]}
    curve = pd.read_csv(project / "reports/plots/train_classifier/loss.csv")
    assert len(curve) == len(result.curve) > 0
    assert result.figures == [project / "reports/figures/train_classifier/accuracy_calibration.png"] and result.figures[0].is_file()
    record = json.loads((project / "reports/runs/train_classifier.json").read_text())
    assert {"train_s", "external_s", "train_by_author_s"} <= set(record)
