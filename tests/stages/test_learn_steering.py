"""The learn_steering stage: the tables and metrics from known vectors, the sources read only when used, and run()
on the tiny model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from big5chat import paths
from big5chat.config import RuntimeConfig, SteerConfig
from big5chat.stages import learn_steering as stage
from big5chat.steering.vectors import TraitVectors

TRAITS = ["openness", "extraversion"]


def _vectors() -> TraitVectors:
    directions = {"openness": torch.tensor([[1.0, 0.0], [0.0, 1.0]]), "extraversion": torch.tensor([[0.6, 0.8], [1.0, 0.0]])}
    meta = {"n_texts": {t: [3, 3] for t in TRAITS}, "separation_sd": {"openness": [1.5, 0.5], "extraversion": [2.0, 1.0]}}
    return TraitVectors([4, 7], directions, torch.tensor([10.12345, 20.0]), meta)


def test_tables_and_metrics_from_known_vectors() -> None:
    v = _vectors()
    norms = stage.layer_norms(v, v.layers)
    assert norms == {4: 10.123, 7: 20.0}
    sep = stage.separation_table(v, v.layers)
    assert list(sep.index) == TRAITS and list(sep.columns) == [4, 7] and sep.loc["extraversion", 7] == 1.0
    cos = stage.first_layer_cosine(v, TRAITS)
    assert cos.loc["openness", "extraversion"] == pytest.approx(0.6) and cos.loc["extraversion", "extraversion"] == pytest.approx(1.0)
    m = stage.steering_metrics(SteerConfig(layers=[4, 7], seed=3), v, norms, cos, TRAITS)
    assert list(m) == ["layers", "source", "n_texts", "residual_norm", "separation_sd", "cosine_first_layer", "seed"]
    assert m["residual_norm"] == {"4": 10.123, "7": 20.0} and m["cosine_first_layer"]["openness"] == {"openness": 1.0, "extraversion": 0.6}
    assert m["layers"] == [4, 7] and m["seed"] == 3


HIGH = ["I threw a party for thirty friends last night.", "Met five new people at the gym today!", "Organised the office karaoke again."]
LOW = ["Stayed home alone with a book.", "Skipped the party to be by myself.", "Ate lunch in my car to avoid everyone."]


@pytest.fixture
def project(tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny base model and six posts labelled for extraversion and openness (no generated dialogues)."""
    for name, sub in {"DATA": "data", "MODELS": "data/models", "PROCESSED": "data/processed", "REPORTS": "reports",
                      "METRICS": "reports/metrics", "FIGURES": "reports/figures"}.items():  # fmt: skip
        monkeypatch.setattr(paths, name, tmp_path / sub)
    shutil.copytree(tiny_models["base"], tmp_path / "data/models/base")
    levels = ["high"] * 3 + ["low"] * 3
    posts = pd.DataFrame({"message_id": ["001", "002", "003", "004", "005", "006"], "message": HIGH + LOW, "split": "train",
                          "extraversion_level": levels, "openness_level": levels[::-1]})  # fmt: skip
    (tmp_path / "data/processed").mkdir(parents=True)
    posts.to_csv(tmp_path / "data/processed/posts.csv", index=False)
    return tmp_path


def test_sources_are_read_only_when_used(project: Path) -> None:
    texts = stage.labelled_sources("corpus", TRAITS, paths.PROCESSED, paths.DATA)  # no dialogues file: not read
    assert len(texts) == 12 and set(texts["trait"]) == set(TRAITS)
    with pytest.raises(FileNotFoundError, match="big5chat.csv"):
        stage.labelled_sources("both", TRAITS, paths.PROCESSED, paths.DATA)


def test_run_learns_saves_and_draws_the_vectors(project: Path) -> None:
    s = SteerConfig(layers=[0, 1], n_pairs=2, batch_size=4, max_length=32, seed=5)
    result = stage.run({"traits": TRAITS, "steer": s, "runtime": RuntimeConfig()})
    saved = TraitVectors.load(project / "data/models/steering/vectors.safetensors")
    assert saved.layers == [0, 1] and torch.equal(saved.directions["openness"], result.vectors.directions["openness"])
    assert saved.meta["n_texts"] == {t: [2, 2] for t in TRAITS} and saved.meta["seed"] == 5
    assert [p.name for p in (project / "data/models/steering").iterdir()] == ["vectors.safetensors"]  # no partial file left
    assert result.metrics == json.loads((project / "reports/metrics/learn_steering.json").read_text())
    assert result.separation.shape == (2, 2) and result.cosine.shape == (2, 2) and list(result.norms) == [0, 1]
    assert result.figures == [project / "reports/figures/learn_steering/vectors.png"] and result.figures[0].is_file()
    again = stage.run({"traits": TRAITS, "steer": s, "runtime": RuntimeConfig()})
    assert torch.equal(again.vectors.directions["extraversion"], result.vectors.directions["extraversion"])  # seeded
    assert "learn_s" in json.loads((project / "reports/runs/learn_steering.json").read_text())
