"""The train_sft stage (and what it shares with train_dpo in alignment.stage): the examples, the preview, the
metrics, and run() on a tiny model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from big5chat import paths
from big5chat.alignment import stage as shared
from big5chat.config import ComputeConfig, RuntimeConfig, TrainSftConfig
from big5chat.prompts import trait_system_prompt
from big5chat.stages import train_sft as stage


def _record(turn0: str, placement: str) -> dict:
    instruction = trait_system_prompt("openness", "high")
    prompt = [{"role": "user", "content": f"{instruction}\n{turn0}"}] if placement == "user" else [
        {"role": "system", "content": instruction}, {"role": "user", "content": turn0}]  # fmt: skip
    return {"prompt": prompt, "completion": [{"role": "assistant", "content": f"A reply to {turn0}"}]}


@pytest.mark.parametrize("placement", ["user", "system"])
def test_example_turn0s_are_the_first_distinct_turn0s_without_the_instruction(placement: str) -> None:
    evals = [_record(t, placement) for t in ("Hi there!\nHow are you?", "Hi there!\nHow are you?", "Lunch?")]
    assert stage.example_turn0s(evals, placement) == ["Hi there!\nHow are you?"]  # a turn 0 may hold newlines itself
    assert stage.example_turn0s(evals, placement, n=5) == ["Hi there!\nHow are you?", "Lunch?"]


def test_example_jobs_and_table() -> None:
    jobs = stage.example_jobs(["openness", "neuroticism"], ["a", "b"])
    assert jobs[:4] == [("openness", "high", "a"), ("openness", "low", "a"), ("openness", "high", "b"), ("openness", "low", "b")]
    assert len(jobs) == 8
    table = stage.examples_table([("openness", "high", "x" * 100)], ["Sure!"])
    assert table.to_dict("records") == [{"trait": "openness", "level": "high", "turn0": "x" * 80, "reply": "Sure!"}]


def test_preview_summary_and_metrics_of_sft() -> None:
    train = [_record(f"turn {i} " + "y" * 200, "user") for i in range(5)]
    preview = shared.preview("sft", train)
    assert list(preview.columns) == ["prompt", "reply"] and len(preview) == 3 and preview["prompt"].str.len().max() == 160
    result = {"steps": 3, "train": {"train_loss": 1.234567}, "eval": {"eval_loss": 1.5}, "world_size": 1}
    curve = pd.DataFrame({"loss": [3.0, 2.0, 1.0]})
    assert shared.summary("sft", result, curve, 1.5) == "3 steps in 1.5 s; loss 3.000 -> 2.000; eval loss 1.5"
    metrics = shared.alignment_metrics("sft", {"train": 5, "eval": 1}, 4, result)
    assert metrics == {"records": {"train": 5, "eval": 1, "used": 4}, "steps": 3, "train_loss": 1.2346, "eval_loss": 1.5, "world_size": 1}
    assert list(metrics) == ["records", "steps", "train_loss", "eval_loss", "world_size"]  # the metrics file's order


def dialogues_project(tiny_models: dict[str, Path], root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with the tiny model as the base and 6 scenarios x 2 traits x 2 levels of dialogues."""
    for name, sub in {"DATA": "data", "MODELS": "data/models", "SCRATCH": ".scratch", "REPORTS": "reports", "METRICS": "reports/metrics"}.items():
        monkeypatch.setattr(paths, name, root / sub)
    shutil.copytree(tiny_models["base"], root / "data/models/base")
    rows = [{"original_index": i, "trait": t, "level": lvl, "train_input": f"What shall we do on day {i}?",
             "train_output": f"*smiles* For {t} the {lvl} answer is plan {i}{'!' if lvl == 'high' else '.'} {lvl} {lvl}"}
            for i in range(6) for t in ("openness", "neuroticism", "extraversion") for lvl in ("high", "low")]  # fmt: skip
    (root / "data/generated").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(root / "data/generated/big5chat.csv", index=False)
    return root


def test_run_trains_the_adapter_and_writes_examples_and_metrics(
    tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = dialogues_project(tiny_models, tmp_path, monkeypatch)
    p = TrainSftConfig(max_steps=2, max_records=8, bf16=False)
    cfg = {"traits": ["openness", "neuroticism"], "train_sft": p, "compute": ComputeConfig(), "runtime": RuntimeConfig()}
    result = stage.run(cfg)
    assert (project / "data/models/sft/adapter_model.safetensors").is_file()
    assert result.counts["rows"] == 24 and result.counts["actions_stripped_rows"] == 24, "the other trait's rows are left out"
    assert result.metrics == json.loads((project / "reports/metrics/train_sft.json").read_text())
    assert result.metrics["steps"] == 2 and result.metrics["records"]["used"] == 8 and result.metrics["world_size"] == 1
    assert list(pd.read_csv(project / "reports/plots/train_sft/loss.csv")["step"]) == [1, 2]
    examples = pd.read_csv(project / "reports/train_sft/examples.csv", keep_default_na=False, dtype=str)
    assert list(examples[["trait", "level"]].itertuples(index=False, name=None)) == [
        ("openness", "high"), ("openness", "low"), ("neuroticism", "high"), ("neuroticism", "low")]  # fmt: skip
    assert examples["turn0"].nunique() == 1 and examples["turn0"].iloc[0].startswith("What shall we do")
    assert list(result.examples["reply"]) == list(examples["reply"])
    record = json.loads((project / "reports/runs/train_sft.json").read_text())
    assert {"train_s", "examples_s", "train_samples_per_second"} <= set(record)
    assert json.loads((project / "data/models/sft/train_config.json").read_text())["kind"] == "sft"
