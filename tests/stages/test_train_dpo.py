"""The train_dpo stage: its preview, summary and metrics, and run() on a tiny model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from big5chat import paths
from big5chat.alignment import stage as shared
from big5chat.config import ComputeConfig, RuntimeConfig, TrainDpoConfig
from big5chat.stages import train_dpo as stage


def _pair(i: int) -> dict:
    return {"prompt": [{"role": "user", "content": f"prompt {i} " + "p" * 200}], "chosen": [{"role": "assistant", "content": "c" * 100}],
            "rejected": [{"role": "assistant", "content": "r" * 100}]}  # fmt: skip


def test_preview_summary_and_metrics_of_dpo() -> None:
    preview = shared.preview("dpo", [_pair(i) for i in range(2)])
    assert list(preview.columns) == ["prompt", "chosen", "rejected"] and len(preview) == 2
    assert preview.iloc[0].str.len().tolist() == [120, 80, 80]
    ev = {"eval_loss": 0.69, "eval_rewards/accuracies": 0.75, "eval_rewards/margins": 0.012345}
    result = {"steps": 2, "train": {"train_loss": 0.7}, "eval": ev, "world_size": 2}
    summary = shared.summary("dpo", result, pd.DataFrame({"loss": [0.7, 0.6]}), 3.0)
    assert summary == "2 steps in 3.0 s; loss 0.700 -> 0.650; eval reward accuracy 0.75, margin 0.012345"
    metrics = shared.alignment_metrics("dpo", {"groups": 3}, 2, result)
    assert list(metrics) == ["pairs", "steps", "train_loss", "eval_loss", "eval_reward_accuracy", "eval_reward_margin", "world_size"]
    assert metrics["pairs"] == {"groups": 3, "used": 2} and metrics["eval_reward_margin"] == 0.0123 and metrics["world_size"] == 2
    assert pd.isna(shared.alignment_metrics("dpo", {}, 0, result | {"eval": {}})["eval_reward_accuracy"]), "no eval split: NaN"


def test_run_trains_the_adapter_and_reports_rewards(tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, sub in {"DATA": "data", "MODELS": "data/models", "SCRATCH": ".scratch", "REPORTS": "reports", "METRICS": "reports/metrics"}.items():
        monkeypatch.setattr(paths, name, tmp_path / sub)
    shutil.copytree(tiny_models["base"], tmp_path / "data/models/base")
    rows = [{"original_index": i, "trait": "openness", "level": lvl, "train_input": f"What shall we do on day {i}?",
             "train_output": f"Let's {'try the strange new place' if lvl == 'high' else 'stay home as usual'} on day {i}."}
            for i in range(8) for lvl in ("high", "low")]  # fmt: skip
    (tmp_path / "data/generated").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(tmp_path / "data/generated/big5chat.csv", index=False)
    cfg = {
        "traits": ["openness"],
        "train_dpo": TrainDpoConfig(max_steps=2, max_records=6, bf16=False),
        "compute": ComputeConfig(),
        "runtime": RuntimeConfig(),
    }
    result = stage.run(cfg)
    assert (tmp_path / "data/models/dpo/adapter_model.safetensors").is_file()
    assert result.counts["groups"] == 8 and result.metrics["pairs"]["used"] == 6 and result.metrics["steps"] == 2
    assert result.metrics == json.loads((tmp_path / "reports/metrics/train_dpo.json").read_text())
    assert 0.0 <= result.metrics["eval_reward_accuracy"] <= 1.0, "the held-out scenarios give reward accuracy"
    assert {"rewards/accuracies", "rewards/margins"} <= set(result.curve.columns) and len(result.curve) == 2
    assert set(json.loads((tmp_path / "reports/runs/train_dpo.json").read_text())) >= {"train_s", "train_samples_per_second"}
