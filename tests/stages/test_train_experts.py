"""The train_experts stage: one run per expert by design, the curve metrics, and run() on a tiny model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from big5chat import paths
from big5chat.config import ComputeConfig, RuntimeConfig, TrainExpertsConfig
from big5chat.stages import train_experts as stage

RECORDS = [{"level": lvl, "input": f"post {i}", "output": "rest"} for i, lvl in enumerate(["high", "low", "high", "low", "low"])]


def test_one_run_per_expert_by_design() -> None:
    assert stage.expert_runs(RECORDS, "single") == {None: RECORDS}
    per_level = stage.expert_runs(RECORDS, "per_level")
    assert list(per_level) == ["high", "low"]
    assert [r["input"] for r in per_level["high"]] == ["post 0", "post 2"] and [r["input"] for r in per_level["low"]] == [
        "post 1",
        "post 3",
        "post 4",
    ]
    assert [stage.expert_key(lvl) for lvl in (None, "high")] == ["all", "high"]
    assert [stage.expert_name("openness", lvl) for lvl in (None, "low")] == ["openness", "openness_low"]


def test_curve_metrics_on_a_known_curve() -> None:
    curve = pd.DataFrame({"step": range(1, 7), "loss": [4.0, 3.0, 2.0, 1.0, 1.0, 1.0]})
    got = stage.curve_metrics(curve, {"steps": 6, "train": {"train_loss": 2.123456}})
    assert got == {"steps": 6, "loss_first": 4.0, "loss_last": 1.6, "train_loss": 2.1235}  # the last 5: (3 + 2 + 1 + 1 + 1) / 5
    assert stage.curve_metrics(curve.head(2), {"steps": 2, "train": {}})["loss_last"] == 3.5  # fewer than 5: all of them
    assert pd.isna(stage.curve_metrics(curve, {"steps": 6, "train": {}})["train_loss"])


def test_experts_metrics_keep_the_layout_of_each_design() -> None:
    curve = pd.DataFrame({"loss": [2.0, 1.0]})
    result = {"steps": 2, "train": {"train_loss": 1.5}, "world_size": 1}
    single = stage.experts_metrics("single", {"records": 4}, {"all": curve}, {"all": result})
    assert list(single) == ["design", "records", "steps", "loss_first", "loss_last", "train_loss", "world_size"]
    per = stage.experts_metrics("per_level", {"records": 4}, {"high": curve, "low": curve}, {"high": result, "low": result | {"world_size": 2}})
    assert list(per) == ["design", "records", "high", "low", "world_size"] and per["world_size"] == 2 and per["low"]["loss_first"] == 2.0


@pytest.fixture
def project(tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with the tiny model as the experts' base and 16 labelled posts."""
    for name, sub in {
        "MODELS": "data/models",
        "PROCESSED": "data/processed",
        "SCRATCH": ".scratch",
        "REPORTS": "reports",
        "METRICS": "reports/metrics",
    }.items():
        monkeypatch.setattr(paths, name, tmp_path / sub)
    shutil.copytree(tiny_models["base"], tmp_path / "data/models" / stage.BASE)
    posts = [{"message_id": f"p{i}", "message": f"I keep finding strange and wonderful ideas in book number {i}", "split": "train",
              "openness_level": ["high", "low"][i % 2], "ope_z": [1.0, -1.0][i % 2]} for i in range(16)]  # fmt: skip
    (tmp_path / "data/processed").mkdir(parents=True)
    pd.DataFrame(posts).to_csv(tmp_path / "data/processed/posts.csv", index=False)
    return tmp_path


def _cfg(**over: object) -> dict:
    e = TrainExpertsConfig(max_records=8, epochs=1.0, batch_size=2, bf16=False, **over)  # type: ignore[arg-type]
    return {"item": "O", "train_experts": e, "compute": ComputeConfig(), "runtime": RuntimeConfig()}


def test_run_trains_an_expert_per_level_then_the_single_design_replaces_them(project: Path) -> None:
    result = stage.run(_cfg())
    out = project / "data/models/experts/openness"
    assert result.trait == "openness" and result.outputs["experts"] == out
    assert (out / "high" / "adapter_model.safetensors").is_file() and (out / "low" / "adapter_model.safetensors").is_file()
    assert result.counts["records"] == 8 and list(result.records.columns) == ["level", "input", "output"]
    assert result.records["input"].str.split().str.len().eq(5).all()
    assert result.metrics == json.loads((project / "reports/metrics/train_experts/openness.json").read_text())
    assert result.metrics["design"] == "per_level" and result.metrics["high"]["steps"] == result.metrics["low"]["steps"] == 2
    curve = pd.read_csv(project / "reports/plots/train_experts/openness.csv")
    assert list(curve["expert"]) == ["high", "high", "low", "low"] and curve["loss"].gt(0).all()
    config = json.loads((out / "train_config.json").read_text())
    assert config["design"] == "per_level" and config["counts"] == result.counts and config["world_size"] == 1
    record = json.loads((project / "reports/runs/train_experts@openness.json").read_text())
    assert {"train_high_s", "train_low_s", "train_s", "train_samples_per_second"} <= set(record)

    single = stage.run(_cfg(design="single"))
    assert (out / "adapter_model.safetensors").is_file() and not (out / "high").exists(), "a design switch leaves no old experts"
    assert list(single.metrics)[:3] == ["design", "records", "steps"] and single.metrics["steps"] == 4
    assert set(single.curve["expert"]) == {"all"}
